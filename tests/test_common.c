/*
 * test_common.c - shared test helpers: paths and suite registration.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_common.h"

#include <stdio.h>
#include <string.h>
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

int dcmc_test_preset_equal(const dcmc_preset *a, const dcmc_preset *b)
{
    return a->id == b->id && a->channels == b->channels && a->blocks == b->blocks &&
           a->rounds == b->rounds && a->attention == b->attention &&
           a->ca_reduction == b->ca_reduction && a->sa_kernel == b->sa_kernel &&
           a->shift_stem == b->shift_stem && a->shift_conv == b->shift_conv &&
           a->shift_ca == b->shift_ca && a->shift_sa == b->shift_sa;
}

int dcmc_test_kdf_equal(const dcmc_kdf *a, const dcmc_kdf *b)
{
    return a->id == b->id && a->log2_n == b->log2_n && a->r == b->r && a->p == b->p &&
           memcmp(a->salt, b->salt, sizeof a->salt) == 0;
}

int dcmc_test_layout_equal(const dcmc_layout *a, const dcmc_layout *b)
{
    return a->rows == b->rows && a->cols == b->cols && a->samples == b->samples &&
           a->planar == b->planar && a->bits_allocated == b->bits_allocated &&
           a->bits_stored == b->bits_stored && a->high_bit == b->high_bit &&
           a->is_signed == b->is_signed;
}

int dcmc_test_header_equal(const dcmc_header *a, const dcmc_header *b)
{
    return a->version == b->version && a->flags == b->flags &&
           dcmc_test_preset_equal(&a->preset, &b->preset) &&
           dcmc_test_kdf_equal(&a->kdf, &b->kdf) &&
           memcmp(a->nonce, b->nonce, sizeof a->nonce) == 0 &&
           memcmp(a->kcv, b->kcv, sizeof a->kcv) == 0 &&
           dcmc_test_layout_equal(&a->layout, &b->layout) && a->frames == b->frames &&
           a->payload_bytes == b->payload_bytes && memcmp(a->mac, b->mac, sizeof a->mac) == 0;
}
