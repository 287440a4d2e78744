/*
 * paper_kernel.h - the one convolution kernel of the paper's float networks, included by
 * paper_conv.c (the default target) and paper_conv_avx2.c (compiled with -mavx2 -mfma), so both
 * paths are the same C; the compiler vectorises the loop over output channels. Two pixels share
 * each weight load; F = 32 (the shipped models) gets constant trip counts so the accumulators
 * stay in registers.
 */
#ifndef DCMC_RESEARCH_PAPER_KERNEL_H
#define DCMC_RESEARCH_PAPER_KERNEL_H

#include <string.h>

#include "research/paper_internal.h"

#define DCMCI_PAPER_PX 2 /* pixels per step: 2 x 32 accumulators fill half the AVX2 registers */

static inline __attribute__((always_inline)) void
paper_conv_row_impl(const float *in, size_t in_stride, size_t ci, const float *wt,
                    const float *bias, size_t co, size_t K, size_t w, float *out)
{
    float acc[DCMCI_PAPER_PX * DCMCI_PAPER_MAX_F];
    size_t x = 0;
    for (; x + DCMCI_PAPER_PX <= w; x += DCMCI_PAPER_PX) {
        for (size_t o = 0; o < co; o++)
            acc[o] = acc[co + o] = bias[o];
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++) {
                const float *s = in + i * in_stride + (x + j) * ci;
                const float *wk = wt + (i * K + j) * ci * co;
                for (size_t c = 0; c < ci; c++) {
                    const float a0 = s[c], a1 = s[ci + c], *wr = wk + c * co;
                    for (size_t o = 0; o < co; o++) {
                        acc[o] += a0 * wr[o];
                        acc[co + o] += a1 * wr[o];
                    }
                }
            }
        memcpy(out + x * co, acc, DCMCI_PAPER_PX * co * sizeof *acc);
    }
    for (; x < w; x++) { /* an odd width's last pixel */
        for (size_t o = 0; o < co; o++)
            acc[o] = bias[o];
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++) {
                const float *s = in + i * in_stride + (x + j) * ci;
                const float *wk = wt + (i * K + j) * ci * co;
                for (size_t c = 0; c < ci; c++)
                    for (size_t o = 0; o < co; o++)
                        acc[o] += s[c] * wk[c * co + o];
            }
        memcpy(out + x * co, acc, co * sizeof *acc);
    }
}

/* Eight floats: GCC and Clang vector extensions, one AVX register on the AVX2 path and two SSE
 * registers on the default one. */
typedef float dcmci_v8 __attribute__((vector_size(32)));

#define DCMCI_PAPER_PX32 3 /* 3 pixels x 4 vectors of accumulators + 3 broadcasts + 1 weight: 16 */

/* co == 32 with the accumulators in registers: each weight vector loaded once for three
 * pixels. The loop order within a pixel (i, j, c) is that of the generic kernel. */
static inline __attribute__((always_inline)) void
paper_conv_row_co32(const float *in, size_t in_stride, size_t ci, const float *wt,
                    const float *bias, size_t K, size_t w, float *out)
{
    size_t x = 0;
    dcmci_v8 b[4];
    memcpy(b, bias, sizeof b);
    for (; x + DCMCI_PAPER_PX32 <= w; x += DCMCI_PAPER_PX32) {
        dcmci_v8 acc[DCMCI_PAPER_PX32][4];
        for (int p = 0; p < DCMCI_PAPER_PX32; p++)
            for (int v = 0; v < 4; v++)
                acc[p][v] = b[v];
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++) {
                const float *s = in + i * in_stride + (x + j) * ci;
                const float *wk = wt + (i * K + j) * ci * 32;
                for (size_t c = 0; c < ci; c++) {
                    dcmci_v8 a[DCMCI_PAPER_PX32];
                    for (int p = 0; p < DCMCI_PAPER_PX32; p++) {
                        const float e = s[p * ci + c];
                        a[p] = (dcmci_v8){e, e, e, e, e, e, e, e};
                    }
                    for (int v = 0; v < 4; v++) {
                        dcmci_v8 wv;
                        memcpy(&wv, wk + c * 32 + 8 * (size_t)v, sizeof wv);
                        for (int p = 0; p < DCMCI_PAPER_PX32; p++)
                            acc[p][v] += a[p] * wv;
                    }
                }
            }
        for (int p = 0; p < DCMCI_PAPER_PX32; p++)
            memcpy(out + (x + p) * 32, acc[p], sizeof acc[p]);
    }
    if (x < w) /* the last one or two pixels of a row */
        paper_conv_row_impl(in + x * ci, in_stride, ci, wt, bias, 32, K, w - x, out + x * 32);
}

/* The kernel with the shipped models' shapes as constants where they occur. */
static inline __attribute__((always_inline)) void
paper_conv_row_dispatch(const float *in, size_t in_stride, size_t ci, const float *wt,
                        const float *bias, size_t co, size_t K, size_t w, float *out)
{
    if (ci == 32 && co == 32 && K == 3)
        paper_conv_row_co32(in, in_stride, 32, wt, bias, 3, w, out);
    else if (co == 32)
        paper_conv_row_co32(in, in_stride, ci, wt, bias, K, w, out);
    else
        paper_conv_row_impl(in, in_stride, ci, wt, bias, co, K, w, out);
}

#endif
