/*
 * cpu.c - picks the SIMD path once, from what the CPU and OS support (never from compile flags),
 * and lets tests force a path so that every kernel can be compared with the scalar reference.
 */
#include "kernels.h"
#include "dcmcrypt.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define DCMC_X86 1
#endif

static int g_forced = -1;

int dcmc_simd_supported(dcmc_simd s)
{
    switch (s) {
    case DCMC_SIMD_SCALAR:
        return 1;
#if DCMC_X86 && defined(DCMC_HAVE_AVX2_KERNEL)
    case DCMC_SIMD_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
#endif
#if DCMC_X86 && defined(DCMC_HAVE_AVX512_KERNEL)
    case DCMC_SIMD_AVX512VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
    default:
        return 0;
    }
}

static dcmc_simd detect(void)
{
    if (dcmc_simd_supported(DCMC_SIMD_AVX512VNNI))
        return DCMC_SIMD_AVX512VNNI;
    if (dcmc_simd_supported(DCMC_SIMD_AVX2))
        return DCMC_SIMD_AVX2;
    return DCMC_SIMD_SCALAR;
}

dcmc_simd dcmc_simd_current(void)
{
    /* Detection is idempotent, so a benign race between threads gives the same answer. */
    static int detected = -1;
    if (g_forced >= 0)
        return (dcmc_simd)g_forced;
    if (detected < 0)
        detected = (int)detect();
    return (dcmc_simd)detected;
}

dcmc_conv3x3_row_fn dcmc_conv3x3_row_kernel(void)
{
    switch (dcmc_simd_current()) {
#ifdef DCMC_HAVE_AVX512_KERNEL
    case DCMC_SIMD_AVX512VNNI:
        return dcmc_conv3x3_row_avx512vnni;
#endif
#ifdef DCMC_HAVE_AVX2_KERNEL
    case DCMC_SIMD_AVX2:
        return dcmc_conv3x3_row_avx2;
#endif
    default:
        return dcmc_conv3x3_row_scalar;
    }
}

static const char *const k_names[] = {"scalar", "avx2", "avx512-vnni"};

const char *dcmc_simd_path(void)
{
    return k_names[dcmc_simd_current()];
}

dcmc_status dcmc_simd_force(const char *name)
{
    if (name == NULL)
        return DCMC_ERR_ARG;
    if (strcmp(name, "auto") == 0) {
        g_forced = -1;
        return DCMC_OK;
    }
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, k_names[i]) == 0) {
            if (!dcmc_simd_supported((dcmc_simd)i))
                return DCMC_ERR_UNSUPPORTED;
            g_forced = i;
            return DCMC_OK;
        }
    }
    return DCMC_ERR_ARG;
}
