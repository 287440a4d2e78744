/*
 * conv_scalar.c - the reference 3x3 convolution row kernel. Every SIMD kernel must match it bit
 * for bit (tests/test_nn.c); it is also the path on CPUs without AVX2.
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
