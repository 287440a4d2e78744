/*
 * kernels.h - the hot loops of the integer network: 3x3 convolution over channels-last u8
 * activations with int8 weights and int32 accumulators. One scalar reference and SIMD versions
 * (AVX2, AVX-512 VNNI) that must produce bit-identical results; the path is chosen once at run time.
 */
#ifndef DCMC_NN_KERNELS_H
#define DCMC_NN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "dcmcrypt/dcmcrypt.h"

/* Every 3x3 convolution produces this many output channels (narrower layers pad with zero weights). */
#define DCMCI_CONV_COUT 16u

/*
 * Packed weights of a 3x3 conv with cin inputs (a multiple of 4, at most 64) and 16 outputs:
 *   wp[((t * (cin/4) + g) * 16 + oc) * 4 + j] = W[oc][ky][kx][4g+j],   t = ky*3 + kx
 * i.e. for every tap and group of four input channels, one 64-byte block holding the four
 * weights of each output channel: one zmm for vpdpbusd, two ymm for vpmaddubsw.
 * Weights lie in [-64, 63] so that u8*s8 pair sums fit int16 (vpmaddubsw never saturates).
 */
static inline size_t dcmci_conv_wp_index(unsigned cin, unsigned t, unsigned ic, unsigned oc)
{
    return (((size_t)t * (cin / 4) + ic / 4) * DCMCI_CONV_COUT + oc) * 4 + (ic % 4);
}

/*
 * One output row of a 3x3 convolution, stride 1, on a zero-padded input.
 *   in     points at padded row y-1 column 0 of the input (the row above output row y): rows
 *          y-1, y, y+1 are in, in + stride, in + 2*stride; each row holds (w + 2) pixels of cin
 *          bytes (u8, channels last), pixel 0 and w+1 being the zero padding.
 *   acc    receives w * 16 int32: acc[x*16 + oc] = bias[oc] + sum W * in.
 */
typedef void (*dcmci_conv3x3_row_fn)(const uint8_t *in, size_t stride, size_t w, unsigned cin,
                                    const int8_t *wp, const int32_t *bias, int32_t *acc);

void dcmci_conv3x3_row_scalar(const uint8_t *in, size_t stride, size_t w, unsigned cin,
                             const int8_t *wp, const int32_t *bias, int32_t *acc);
void dcmci_conv3x3_row_avx2(const uint8_t *in, size_t stride, size_t w, unsigned cin,
                           const int8_t *wp, const int32_t *bias, int32_t *acc);
void dcmci_conv3x3_row_avx512vnni(const uint8_t *in, size_t stride, size_t w, unsigned cin,
                                 const int8_t *wp, const int32_t *bias, int32_t *acc);

/*
 * One output row of a 3x3 convolution with 16 inputs and only cout (<= 8) outputs: the head,
 * whose other 12 or more output channels have zero weights (docs/format.md section 7). Weights
 * wn[(oc * 9 + t) * 16 + ic], t = ky*3 + kx; acc[x*16 + oc] = bias[oc] + sum W * in for
 * oc < cout (the other entries are left as they are). Same input layout as the full kernel.
 */
typedef void (*dcmci_conv3x3_narrow_fn)(const uint8_t *in, size_t stride, size_t w,
                                       const int8_t *wn, const int32_t *bias, int32_t *acc,
                                       unsigned cout);
void dcmci_conv3x3_narrow_scalar(const uint8_t *in, size_t stride, size_t w, const int8_t *wn,
                                const int32_t *bias, int32_t *acc, unsigned cout);
void dcmci_conv3x3_narrow_avx2(const uint8_t *in, size_t stride, size_t w, const int8_t *wn,
                              const int32_t *bias, int32_t *acc, unsigned cout);
void dcmci_conv3x3_narrow_avx512vnni(const uint8_t *in, size_t stride, size_t w,
                                    const int8_t *wn, const int32_t *bias, int32_t *acc,
                                    unsigned cout);

/*
 * One row of the spatial attention's KxK convolution over its two pooled maps, which lie
 * interleaved as (mean, max) int16 pairs: acc[x] += sum over taps t = ky*k + kx of
 * mean[ky][x+kx] * wm[t] + max[ky][x+kx] * wx[t], the pair at src[ky * sw + 2 * (x + kx)].
 * wpair[t] packs wm[t] in its low and wx[t] in its high 16 bits, as vpmaddwd reads a pair.
 */
typedef void (*dcmci_sa_conv_row_fn)(const int16_t *src, size_t sw, size_t k,
                                    const int32_t *wpair, int32_t *acc, size_t w);
void dcmci_sa_conv_row_scalar(const int16_t *src, size_t sw, size_t k, const int32_t *wpair,
                             int32_t *acc, size_t w);
void dcmci_sa_conv_row_avx2(const int16_t *src, size_t sw, size_t k, const int32_t *wpair,
                           int32_t *acc, size_t w);
void dcmci_sa_conv_row_avx512(const int16_t *src, size_t sw, size_t k, const int32_t *wpair,
                             int32_t *acc, size_t w);

typedef enum dcmci_simd { DCMCI_SIMD_SCALAR = 0, DCMCI_SIMD_AVX2 = 1, DCMCI_SIMD_AVX512VNNI = 2 } dcmci_simd;

/* The path in use (detected once, or forced by dcmci_simd_force) and its kernel. */
dcmci_simd dcmci_simd_current(void);
int dcmci_simd_supported(dcmci_simd s);
dcmci_conv3x3_row_fn dcmci_conv3x3_row_kernel(void);
dcmci_conv3x3_narrow_fn dcmci_conv3x3_narrow_kernel(void);
dcmci_sa_conv_row_fn dcmci_sa_conv_row_kernel(void);
/* Test and benchmark hook, not public API: force a path ("scalar", "avx2", "avx512-vnni", or
 * "auto" to return to detection). DCMC_ERR_UNSUPPORTED if the CPU lacks it, DCMC_ERR_ARG if the
 * name is unknown. Takes effect for frames started afterwards. */
dcmc_status dcmci_simd_force(const char *name);

#endif
