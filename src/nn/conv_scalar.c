/*
 * conv_scalar.c - the reference kernels: the 3x3 convolution row (full and narrow) and the
 * spatial attention's KxK row. Every SIMD kernel must match them bit for bit (tests/test_nn.c);
 * they are also the path on CPUs without AVX2.
 */
#include "kernels.h"

void dcmci_conv3x3_row_scalar(const uint8_t *in, size_t stride, size_t w, unsigned cin,
                             const int8_t *wp, const int32_t *bias, int32_t *acc)
{
    for (size_t x = 0; x < w; x++) {
        int32_t *a = acc + x * DCMCI_CONV_COUT;
        for (unsigned oc = 0; oc < DCMCI_CONV_COUT; oc++)
            a[oc] = bias[oc];
        for (unsigned ky = 0; ky < 3; ky++) {
            for (unsigned kx = 0; kx < 3; kx++) {
                const uint8_t *px = in + ky * stride + (x + kx) * cin;
                unsigned t = ky * 3 + kx;
                for (unsigned ic = 0; ic < cin; ic++) {
                    int32_t v = px[ic];
                    for (unsigned oc = 0; oc < DCMCI_CONV_COUT; oc++)
                        a[oc] += v * wp[dcmci_conv_wp_index(cin, t, ic, oc)];
                }
            }
        }
    }
}

void dcmci_conv3x3_narrow_scalar(const uint8_t *in, size_t stride, size_t w, const int8_t *wn,
                                const int32_t *bias, int32_t *acc, unsigned cout)
{
    for (size_t x = 0; x < w; x++) {
        for (unsigned oc = 0; oc < cout; oc++) {
            int32_t a = bias[oc];
            for (unsigned t = 0; t < 9; t++) {
                const uint8_t *px = in + (t / 3) * stride + (x + t % 3) * DCMCI_CONV_COUT;
                const int8_t *wt = wn + ((size_t)oc * 9 + t) * DCMCI_CONV_COUT;
                for (unsigned ic = 0; ic < DCMCI_CONV_COUT; ic++)
                    a += px[ic] * wt[ic];
            }
            acc[x * DCMCI_CONV_COUT + oc] = a;
        }
    }
}

void dcmci_sa_conv_row_scalar(const int16_t *src, size_t sw, size_t k, const int32_t *wpair,
                             int32_t *acc, size_t w)
{
    for (size_t ky = 0; ky < k; ky++) {
        for (size_t kx = 0; kx < k; kx++) {
            const uint32_t pr = (uint32_t)wpair[ky * k + kx];
            const int32_t wm = (int16_t)(pr & 0xFFFFu), wx = (int16_t)(pr >> 16);
            const int16_t *r = src + ky * sw + 2 * kx;
            for (size_t x = 0; x < w; x++)
                acc[x] += wm * r[2 * x] + wx * r[2 * x + 1];
        }
    }
}
