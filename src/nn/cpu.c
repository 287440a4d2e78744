/*
 * cpu.c - picks the SIMD path once, from what the CPU and OS support (never from compile flags),
 * and lets tests force a path so that every kernel can be compared with the scalar reference.
 */
#include "kernels.h"
#include "dcmcrypt/dcmcrypt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define DCMC_X86 1
#endif

/* OpenMP workers read the path while a test may force another one, so both are shared state of
 * defined behaviour: detection runs once under pthread_once (as libsodium's sodium_init), the
 * forced path is an atomic (-1 = none). */
static atomic_int g_forced = -1;
static pthread_once_t g_detect_once = PTHREAD_ONCE_INIT;
static dcmci_simd g_detected = DCMCI_SIMD_SCALAR;

int dcmci_simd_supported(dcmci_simd s)
{
    switch (s) {
    case DCMCI_SIMD_SCALAR:
        return 1;
#if DCMC_X86 && defined(DCMC_HAVE_AVX2_KERNEL)
    case DCMCI_SIMD_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
#endif
#if DCMC_X86 && defined(DCMC_HAVE_AVX512_KERNEL)
    case DCMCI_SIMD_AVX512VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
    default:
        return 0;
    }
}

static void detect(void)
{
    if (dcmci_simd_supported(DCMCI_SIMD_AVX512VNNI))
        g_detected = DCMCI_SIMD_AVX512VNNI;
    else if (dcmci_simd_supported(DCMCI_SIMD_AVX2))
        g_detected = DCMCI_SIMD_AVX2;
    else
        g_detected = DCMCI_SIMD_SCALAR;
}

dcmci_simd dcmci_simd_current(void)
{
    int forced = atomic_load(&g_forced);
    if (forced >= 0)
        return (dcmci_simd)forced;
    pthread_once(&g_detect_once, detect);
    return g_detected;
}

dcmci_conv3x3_row_fn dcmci_conv3x3_row_kernel(void)
{
    switch (dcmci_simd_current()) {
#ifdef DCMC_HAVE_AVX512_KERNEL
    case DCMCI_SIMD_AVX512VNNI:
        return dcmci_conv3x3_row_avx512vnni;
#endif
#ifdef DCMC_HAVE_AVX2_KERNEL
    case DCMCI_SIMD_AVX2:
        return dcmci_conv3x3_row_avx2;
#endif
    default:
        return dcmci_conv3x3_row_scalar;
    }
}

dcmci_conv3x3_narrow_fn dcmci_conv3x3_narrow_kernel(void)
{
    switch (dcmci_simd_current()) {
#ifdef DCMC_HAVE_AVX512_KERNEL
    case DCMCI_SIMD_AVX512VNNI:
        return dcmci_conv3x3_narrow_avx512vnni;
#endif
#ifdef DCMC_HAVE_AVX2_KERNEL
    case DCMCI_SIMD_AVX2:
        return dcmci_conv3x3_narrow_avx2;
#endif
    default:
        return dcmci_conv3x3_narrow_scalar;
    }
}

dcmci_sa_conv_row_fn dcmci_sa_conv_row_kernel(void)
{
    switch (dcmci_simd_current()) {
#ifdef DCMC_HAVE_AVX512_KERNEL
    case DCMCI_SIMD_AVX512VNNI: /* VNNI CPUs have AVX-512BW */
        return dcmci_sa_conv_row_avx512;
#endif
#ifdef DCMC_HAVE_AVX2_KERNEL
    case DCMCI_SIMD_AVX2:
        return dcmci_sa_conv_row_avx2;
#endif
    default:
        return dcmci_sa_conv_row_scalar;
    }
}

static const char *const k_names[] = {"scalar", "avx2", "avx512-vnni"};

const char *dcmc_simd_path(void)
{
    return k_names[dcmci_simd_current()];
}

dcmc_status dcmci_simd_force(const char *name)
{
    if (name == NULL)
        return DCMC_ERR_ARG;
    if (strcmp(name, "auto") == 0) {
        atomic_store(&g_forced, -1);
        return DCMC_OK;
    }
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, k_names[i]) == 0) {
            if (!dcmci_simd_supported((dcmci_simd)i))
                return DCMC_ERR_UNSUPPORTED;
            atomic_store(&g_forced, i);
            return DCMC_OK;
        }
    }
    return DCMC_ERR_ARG;
}
