/*
 * util.c - wiping, library-owned memory release, clocks, thread counts and build facts.
 */
#define _POSIX_C_SOURCE 200809L
#include "core/util.h"

#define DCMC_STR2(x) #x
#define DCMC_STR(x) DCMC_STR2(x)

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#ifdef DCMC_HAVE_OPENMP
#include <omp.h>
#endif

void dcmc_wipe(void *p, size_t n)
{
    if (p != NULL && n != 0)
        OPENSSL_cleanse(p, n);
}

void dcmc_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    dcmc_wipe(p, n);
    free(p);
}

uint64_t dcmci_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t dcmci_thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int dcmci_threads_resolve(int n)
{
    if (n > 0)
        return n;
#ifdef DCMC_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

const char *dcmc_build_info(void)
{
    static char buf[256];
    if (buf[0] == '\0') {
#ifdef DCMC_HAVE_OPENMP
        const char *omp = "OpenMP " DCMC_STR(_OPENMP);
#else
        const char *omp = "no OpenMP";
#endif
        snprintf(buf, sizeof buf, "dcmcrypt %s (format %u), %s, %s, %s build, %s", DCMC_VERSION_STRING,
                 DCMC_FORMAT_VERSION, OpenSSL_version(OPENSSL_VERSION), omp, DCMC_BUILD_TYPE,
                 DCMC_COMPILER);
    }
    return buf;
}
