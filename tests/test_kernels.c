/*
 * test_kernels.c - every SIMD convolution kernel the CPU supports against the scalar reference,
 * bit for bit: random and extreme inputs, every input width in use, row widths around the
 * kernels' block sizes.
 */
#include <stdio.h>
#include <string.h>

#include "dcmcrypt/dcmcrypt.h"
#include "nn/kernels.h"
#include "test_common.h"

static void compare_paths(unsigned cin, size_t w, int mode, dcmc_test_rng *r)
{
    size_t stride = (w + 2) * cin, nin = 3 * stride, nw = 9 * (size_t)cin * DCMCI_CONV_COUT;
    uint8_t *in = malloc(nin);
    int8_t *wp = malloc(nw);
    int32_t bias[DCMCI_CONV_COUT];
    int32_t *ref = malloc(w * DCMCI_CONV_COUT * sizeof *ref), *got = malloc(w * DCMCI_CONV_COUT * sizeof *got);
    for (size_t i = 0; i < nin; i++)
        in[i] = mode == 0 ? (uint8_t)dcmc_test_next(r) : 255;
    for (size_t i = 0; i < nw; i++)
        wp[i] = mode == 0 ? (int8_t)((int)(dcmc_test_next(r) % 128) - 64) : (mode == 1 ? -64 : 63);
    for (unsigned o = 0; o < DCMCI_CONV_COUT; o++)
        bias[o] = (int32_t)(dcmc_test_next(r) % 16384) - 8192;
    dcmci_conv3x3_row_scalar(in, stride, w, cin, wp, bias, ref);
    static const dcmci_simd paths[] = {DCMCI_SIMD_AVX2, DCMCI_SIMD_AVX512VNNI};
    static const dcmci_conv3x3_row_fn fns[] = {
#ifdef DCMC_HAVE_AVX2_KERNEL
        dcmci_conv3x3_row_avx2, dcmci_conv3x3_row_avx512vnni,
#else
        NULL, NULL,
#endif
    };
    for (int p = 0; p < 2; p++) {
        if (!fns[p] || !dcmci_simd_supported(paths[p]))
            continue;
        memset(got, 0x55, w * DCMCI_CONV_COUT * sizeof *got);
        fns[p](in, stride, w, cin, wp, bias, got);
        int same = memcmp(ref, got, w * DCMCI_CONV_COUT * sizeof *got) == 0;
        CU_ASSERT(same);
        if (!same)
            fprintf(stderr, "\n  path %d cin %u w %zu mode %d differs", p, cin, w, mode);
    }
    free(in);
    free(wp);
    free(ref);
    free(got);
}

/* The head's narrow kernel and the spatial attention's row kernel, each SIMD path against its
 * scalar reference: random and extreme inputs (mode 1: most negative weights and largest
 * inputs; mode 2: largest). */
static void compare_small_kernels(size_t w, int mode, dcmc_test_rng *r)
{
    enum { K = 7, COUT = 6 };
    const size_t stride = (w + 2) * DCMCI_CONV_COUT, sw = 2 * (w + K - 1);
    uint8_t *in = malloc(3 * stride);
    int8_t wn[COUT * 9 * DCMCI_CONV_COUT];
    int32_t bias[DCMCI_CONV_COUT], wpair[K * K];
    int16_t *maps = malloc(K * sw * sizeof *maps);
    int32_t *ref = malloc(w * DCMCI_CONV_COUT * sizeof *ref), *got = malloc(w * DCMCI_CONV_COUT * sizeof *got);
    for (size_t i = 0; i < 3 * stride; i++)
        in[i] = mode == 0 ? (uint8_t)dcmc_test_next(r) : 255;
    for (size_t i = 0; i < sizeof wn; i++)
        wn[i] = mode == 0 ? (int8_t)((int)(dcmc_test_next(r) % 128) - 64) : (mode == 1 ? -64 : 63);
    for (unsigned o = 0; o < DCMCI_CONV_COUT; o++)
        bias[o] = (int32_t)(dcmc_test_next(r) % 16384) - 8192;
    for (size_t i = 0; i < (size_t)K * sw; i++)
        maps[i] = mode == 0 ? (int16_t)dcmc_test_next(r) : (mode == 1 ? -32768 : 32767);
    for (int t = 0; t < K * K; t++) {
        int16_t wm = mode == 0 ? (int16_t)((int)(dcmc_test_next(r) % 128) - 64) : (mode == 1 ? -64 : 63);
        int16_t wx = mode == 0 ? (int16_t)((int)(dcmc_test_next(r) % 128) - 64) : (mode == 1 ? -64 : 63);
        wpair[t] = (int32_t)((uint32_t)(uint16_t)wx << 16 | (uint16_t)wm);
    }
#ifdef DCMC_HAVE_AVX2_KERNEL
    static const dcmci_conv3x3_narrow_fn narrow[] = {dcmci_conv3x3_narrow_avx2,
                                                    dcmci_conv3x3_narrow_avx512vnni};
    static const dcmci_sa_conv_row_fn sa[] = {dcmci_sa_conv_row_avx2, dcmci_sa_conv_row_avx512};
    static const dcmci_simd paths[] = {DCMCI_SIMD_AVX2, DCMCI_SIMD_AVX512VNNI};
    for (int p = 0; p < 2; p++) {
        if (!dcmci_simd_supported(paths[p]))
            continue;
        memset(ref, 0x55, w * DCMCI_CONV_COUT * sizeof *ref);
        memset(got, 0x55, w * DCMCI_CONV_COUT * sizeof *got);
        dcmci_conv3x3_narrow_scalar(in, stride, w, wn, bias, ref, COUT);
        narrow[p](in, stride, w, wn, bias, got, COUT);
        CU_ASSERT(memcmp(ref, got, w * DCMCI_CONV_COUT * sizeof *got) == 0);
        for (size_t x = 0; x < w; x++)
            ref[x] = got[x] = (int32_t)x - 7;
        dcmci_sa_conv_row_scalar(maps, sw, K, wpair, ref, w);
        sa[p](maps, sw, K, wpair, got, w);
        CU_ASSERT(memcmp(ref, got, w * sizeof *got) == 0);
    }
#else
    (void)bias;
#endif
    free(in);
    free(maps);
    free(ref);
    free(got);
}

static void test_small_kernels_equal_scalar(void)
{
    static const size_t ws[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 255, 256};
    dcmc_test_rng r = {4242};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        for (int mode = 0; mode < 3; mode++)
            compare_small_kernels(ws[i], mode, &r);
}

static void test_kernels_equal_scalar(void)
{
    static const unsigned cins[] = {4, 8, 16, 32};
    static const size_t ws[] = {1, 2, 3, 7, 8, 9, 11, 12, 13, 15, 16, 17, 24, 25, 31, 64, 255, 256, 257};
    dcmc_test_rng r = {31337};
    int any = 0;
    for (int p = DCMCI_SIMD_AVX2; p <= DCMCI_SIMD_AVX512VNNI; p++)
        any |= dcmci_simd_supported((dcmci_simd)p);
    if (!any)
        fprintf(stderr, "(no SIMD path on this CPU: scalar only) ");
    for (size_t c = 0; c < sizeof cins / sizeof cins[0]; c++)
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            for (int mode = 0; mode < 3; mode++)
                compare_paths(cins[c], ws[i], mode, &r);
    CU_PASS("compared");
}

static void test_dispatch(void)
{
    CU_ASSERT_EQUAL(dcmci_simd_force("scalar"), 0);
    CU_ASSERT_EQUAL(dcmci_simd_current(), DCMCI_SIMD_SCALAR);
    CU_ASSERT(dcmci_conv3x3_row_kernel() == dcmci_conv3x3_row_scalar);
    CU_ASSERT_EQUAL(dcmci_simd_force("auto"), 0);
    CU_ASSERT(dcmci_simd_supported(dcmci_simd_current()));
}

int dcmc_test_register_kernels(void)
{
    static const dcmc_test_case cases[] = {
        {"SIMD kernels equal the scalar reference", test_kernels_equal_scalar},
        {"narrow head and spatial attention kernels equal the scalar reference",
         test_small_kernels_equal_scalar},
        {"path dispatch", test_dispatch},
        {NULL, NULL},
    };
    return dcmc_test_add_suite("kernels", cases);
}
