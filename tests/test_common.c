/*
 * test_common.c - shared test helpers: paths and suite registration.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_common.h"

#include <stdio.h>
#include <sys/stat.h>

const char *dcmc_test_source_dir(void)
{
    return DCMC_SOURCE_DIR;
}

const char *dcmc_test_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", DCMC_SOURCE_DIR, rel);
    return buf;
}

const char *dcmc_test_corpus(const char *rel)
{
    static char buf[4096];
    const char *env = getenv("DCMC_CORPUS");
    if (env && *env)
        snprintf(buf, sizeof buf, "%s/%s", env, rel);
    else
        snprintf(buf, sizeof buf, "%s/../shared/corpus/%s", DCMC_SOURCE_DIR, rel);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

int dcmc_test_long(void)
{
    const char *e = getenv("DCMC_TEST_LONG");
    return e && *e && *e != '0';
}

int dcmc_test_add_suite(const char *name, const dcmc_test_case *cases)
{
    CU_pSuite s = CU_add_suite(name, NULL, NULL);
    if (!s)
        return -1;
    for (; cases->name; cases++)
        if (!CU_add_test(s, cases->name, cases->fn))
            return -1;
    return 0;
}
