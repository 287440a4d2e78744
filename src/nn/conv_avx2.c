/*
 * conv_avx2.c - the 3x3 convolution row kernel with AVX2: vpmaddubsw multiplies u8 inputs by s8
 * weights and adds pairs to int16 (weights in [-64, 63] keep 2*255*64 below 32767, so it never
 * saturates), vpmaddwd with ones widens to int32. Equal to the scalar reference bit for bit.
 * Also the narrow kernel (the head: a ymm holds 2 pixels x 16 inputs, one product per tap and
 * output for both) and the spatial attention's row (vpmaddwd on (mean, max) pairs).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

#define NB 4 /* pixels per block: 8 ymm accumulators */

static inline __m256i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

static inline __m256i dot4(__m256i a, __m256i x, __m256i w, __m256i ones)
{
    return _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), ones));
}

void dcmci_conv3x3_row_avx2(const uint8_t *in, size_t stride, size_t w, unsigned cin,
                           const int8_t *wp, const int32_t *bias, int32_t *acc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)bias);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bias + 8));
    const unsigned groups = cin / 4;
    size_t x = 0;
    for (; x + NB <= w; x += NB) {
        __m256i lo[NB], hi[NB];
        for (int p = 0; p < NB; p++) {
            lo[p] = b0;
            hi[p] = b1;
        }
        for (unsigned t = 0; t < 9; t++) {
            const uint8_t *px = in + (t / 3) * stride + (x + t % 3) * cin;
            const int8_t *wt = wp + (size_t)t * groups * 64;
            for (size_t g = 0; g < groups; g++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wt + g * 64));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wt + g * 64 + 32));
                for (int p = 0; p < NB; p++) {
                    const __m256i v = bcast4(px + (size_t)p * cin + 4 * g);
                    lo[p] = dot4(lo[p], v, w0, ones);
                    hi[p] = dot4(hi[p], v, w1, ones);
                }
            }
        }
        for (int p = 0; p < NB; p++) {
            _mm256_storeu_si256((__m256i *)(acc + (x + p) * DCMCI_CONV_COUT), lo[p]);
            _mm256_storeu_si256((__m256i *)(acc + (x + p) * DCMCI_CONV_COUT + 8), hi[p]);
        }
    }
    for (; x < w; x++) {
        __m256i lo = b0, hi = b1;
        for (unsigned t = 0; t < 9; t++) {
            const uint8_t *px = in + (t / 3) * stride + (x + t % 3) * cin;
            const int8_t *wt = wp + (size_t)t * groups * 64;
            for (size_t g = 0; g < groups; g++) {
                const __m256i v = bcast4(px + 4 * g);
                lo = dot4(lo, v, _mm256_loadu_si256((const __m256i *)(wt + g * 64)), ones);
                hi = dot4(hi, v, _mm256_loadu_si256((const __m256i *)(wt + g * 64 + 32)), ones);
            }
        }
        _mm256_storeu_si256((__m256i *)(acc + x * DCMCI_CONV_COUT), lo);
        _mm256_storeu_si256((__m256i *)(acc + x * DCMCI_CONV_COUT + 8), hi);
    }
}

void dcmci_conv3x3_narrow_avx2(const uint8_t *in, size_t stride, size_t w, const int8_t *wn,
                              const int32_t *bias, int32_t *acc, unsigned cout)
{
    const __m256i ones = _mm256_set1_epi16(1);
    int32_t lanes[8];
    size_t x = 0;
    for (; x + 2 <= w; x += 2) {
        for (unsigned oc = 0; oc < cout; oc++) {
            __m256i a = _mm256_setzero_si256();
            for (unsigned t = 0; t < 9; t++) {
                const __m256i px = _mm256_loadu_si256(
                    (const __m256i *)(in + (t / 3) * stride + (x + t % 3) * DCMCI_CONV_COUT));
                const __m256i wv = _mm256_broadcastsi128_si256(_mm_loadu_si128(
                    (const __m128i *)(wn + ((size_t)oc * 9 + t) * DCMCI_CONV_COUT)));
                a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(px, wv), ones));
            }
            /* Lanes 4p..4p+3 hold pixel p's four partial sums. */
            a = _mm256_hadd_epi32(a, a);
            a = _mm256_hadd_epi32(a, a);
            _mm256_storeu_si256((__m256i *)lanes, a);
            acc[x * DCMCI_CONV_COUT + oc] = bias[oc] + lanes[0];
            acc[(x + 1) * DCMCI_CONV_COUT + oc] = bias[oc] + lanes[4];
        }
    }
    if (x < w)
        dcmci_conv3x3_narrow_scalar(in + x * DCMCI_CONV_COUT, stride, w - x, wn, bias,
                                   acc + x * DCMCI_CONV_COUT, cout);
}

void dcmci_sa_conv_row_avx2(const int16_t *src, size_t sw, size_t k, const int32_t *wpair,
                           int32_t *acc, size_t w)
{
    size_t x = 0;
    for (; x + 8 <= w; x += 8) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(acc + x));
        for (size_t ky = 0; ky < k; ky++) {
            const int16_t *r = src + ky * sw + 2 * x;
            for (size_t kx = 0; kx < k; kx++)
                a = _mm256_add_epi32(
                    a, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(r + 2 * kx)),
                                         _mm256_set1_epi32(wpair[ky * k + kx])));
        }
        _mm256_storeu_si256((__m256i *)(acc + x), a);
    }
    if (x < w)
        dcmci_sa_conv_row_scalar(src + 2 * x, sw, k, wpair, acc + x, w - x);
}
