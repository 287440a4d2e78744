/*
 * conv_avx512.c - the 3x3 convolution row kernel with AVX-512 VNNI: one zmm accumulates the 16
 * output channels of a pixel, vpdpbusd adds four u8 x s8 products per lane with no saturation,
 * so the result equals the scalar reference exactly. Blocks of pixels share each weight load.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

#define NB 12 /* pixels per block: 12 accumulators + weights stay in the 32 zmm registers */

static inline __m512i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

void dcmci_conv3x3_row_avx512vnni(const uint8_t *in, size_t stride, size_t w, unsigned cin,
                                 const int8_t *wp, const int32_t *bias, int32_t *acc)
{
    const __m512i b = _mm512_loadu_si512((const void *)bias);
    const unsigned groups = cin / 4;
    size_t x = 0;
    for (; x + NB <= w; x += NB) {
        __m512i a[NB];
        for (int p = 0; p < NB; p++)
            a[p] = b;
        for (size_t ky = 0; ky < 3; ky++) {
            const uint8_t *row = in + ky * stride + x * cin;
            for (size_t kx = 0; kx < 3; kx++) {
                const int8_t *wt = wp + (ky * 3 + kx) * groups * 64;
                const uint8_t *px = row + kx * cin;
                for (size_t g = 0; g < groups; g++) {
                    const __m512i wv = _mm512_loadu_si512((const void *)(wt + g * 64));
                    for (int p = 0; p < NB; p++)
                        a[p] = _mm512_dpbusd_epi32(a[p], bcast4(px + (size_t)p * cin + 4 * g), wv);
                }
            }
        }
        for (int p = 0; p < NB; p++)
            _mm512_storeu_si512((void *)(acc + (x + p) * DCMCI_CONV_COUT), a[p]);
    }
    for (; x < w; x++) {
        __m512i a0 = b;
        for (unsigned t = 0; t < 9; t++) {
            const uint8_t *px = in + (t / 3) * stride + (x + t % 3) * cin;
            const int8_t *wt = wp + (size_t)t * groups * 64;
            for (size_t g = 0; g < groups; g++)
                a0 = _mm512_dpbusd_epi32(a0, bcast4(px + 4 * g),
                                         _mm512_loadu_si512((const void *)(wt + g * 64)));
        }
        _mm512_storeu_si512((void *)(acc + x * DCMCI_CONV_COUT), a0);
    }
}
