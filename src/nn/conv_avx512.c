/*
 * conv_avx512.c - the 3x3 convolution row kernels with AVX-512 VNNI and the spatial attention's
 * row with AVX-512BW. Full kernel: one zmm accumulates the 16 output channels of a pixel,
 * vpdpbusd adds four u8 x s8 products per lane with no saturation, so the result equals the
 * scalar reference exactly; blocks of pixels share each weight load. Narrow kernel (the head's
 * few outputs): one zmm holds 4 pixels x 16 input channels, so one vpdpbusd per tap serves 4
 * pixels of one output, and the four partial sums of a pixel are added at the end.
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

void dcmci_conv3x3_narrow_avx512vnni(const uint8_t *in, size_t stride, size_t w,
                                    const int8_t *wn, const int32_t *bias, int32_t *acc,
                                    unsigned cout)
{
    int32_t lanes[16];
    size_t x = 0;
    for (; x + 4 <= w; x += 4) {
        for (unsigned oc = 0; oc < cout; oc++) {
            __m512i a = _mm512_setzero_si512();
            for (unsigned t = 0; t < 9; t++) {
                const __m512i px = _mm512_loadu_si512(
                    (const void *)(in + (t / 3) * stride + (x + t % 3) * DCMCI_CONV_COUT));
                const __m512i wv = _mm512_broadcast_i32x4(_mm_loadu_si128(
                    (const __m128i *)(wn + ((size_t)oc * 9 + t) * DCMCI_CONV_COUT)));
                a = _mm512_dpbusd_epi32(a, px, wv);
            }
            /* Lanes 4p..4p+3 hold pixel p's four partial sums: add them within each 128 bits. */
            a = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_CDAB));
            a = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_BADC));
            _mm512_storeu_si512((void *)lanes, a);
            for (size_t p = 0; p < 4; p++)
                acc[(x + p) * DCMCI_CONV_COUT + oc] = bias[oc] + lanes[4 * p];
        }
    }
    if (x < w)
        dcmci_conv3x3_narrow_scalar(in + x * DCMCI_CONV_COUT, stride, w - x, wn, bias,
                                   acc + x * DCMCI_CONV_COUT, cout);
}

void dcmci_sa_conv_row_avx512(const int16_t *src, size_t sw, size_t k, const int32_t *wpair,
                             int32_t *acc, size_t w)
{
    size_t x = 0;
    for (; x + 16 <= w; x += 16) {
        __m512i a = _mm512_loadu_si512((const void *)(acc + x));
        for (size_t ky = 0; ky < k; ky++) {
            const int16_t *r = src + ky * sw + 2 * x;
            for (size_t kx = 0; kx < k; kx++)
                a = _mm512_add_epi32(
                    a, _mm512_madd_epi16(_mm512_loadu_si512((const void *)(r + 2 * kx)),
                                         _mm512_set1_epi32(wpair[ky * k + kx])));
        }
        _mm512_storeu_si512((void *)(acc + x), a);
    }
    if (x < w)
        dcmci_sa_conv_row_scalar(src + 2 * x, sw, k, wpair, acc + x, w - x);
}
