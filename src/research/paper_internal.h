/*
 * paper_internal.h - what the files of the paper's float networks share: the model as read from
 * its weight file (paper.c), the convolution kernel (paper_kernel.h, built twice: the default
 * target and AVX2 + FMA, picked once at run time from CPUID) and the forward pass (paper_net.c).
 */
#ifndef DCMC_RESEARCH_PAPER_INTERNAL_H
#define DCMC_RESEARCH_PAPER_INTERNAL_H

#include <stddef.h>

#include "dcmcrypt/research.h"

/* Limits a weight file must keep: features (the width of the kernel's accumulators) and the
 * spatial-attention kernel side. The shipped models use 32 and 7. */
#define DCMCI_PAPER_MAX_F 128u
#define DCMCI_PAPER_MAX_K 31u

/* One network's tensors, pointing into the model's weight array. Convolution weights are
 * rearranged at load to [i][j][in][out] (out fastest) for the channels-last kernel. */
typedef struct dcmci_paper_block {
    const float *c1w, *c1b, *c2w, *c2b;
    const float *fc1w, *fc1b, *fc2w, *fc2b; /* [F/r][F], [F/r], [F][F/r], [F]: as in the file */
    const float *sw, *sb;                   /* [k][k][2][1], [1] */
} dcmci_paper_block;

typedef struct dcmci_paper_net {
    const float *stem_w, *stem_b, *head_w, *head_b;
    dcmci_paper_block *blocks;
} dcmci_paper_net;

struct dcmc_paper_model {
    unsigned attention, F, B, r, k, bits;
    float *w;             /* every tensor, convolutions rearranged */
    size_t nw;
    dcmci_paper_net net[2]; /* encoder, decoder */
};

/* One output row of a K x K convolution, stride 1, over a channels-last input with a zero
 * border of K/2 pixels: in points at the padded row of the output row's first tap (row y of
 * the output reads padded rows y..y+K-1), in_stride floats per padded row. out[x * co + o] for
 * x < w. wt: [K][K][ci][co]. */
typedef void (*dcmci_paper_conv_fn)(const float *in, size_t in_stride, size_t ci,
                                    const float *wt, const float *bias, size_t co, size_t K,
                                    size_t w, float *out);
void dcmci_paper_conv_row_default(const float *in, size_t in_stride, size_t ci, const float *wt,
                                  const float *bias, size_t co, size_t K, size_t w, float *out);
void dcmci_paper_conv_row_avx2(const float *in, size_t in_stride, size_t ci, const float *wt,
                               const float *bias, size_t co, size_t K, size_t w, float *out);
/* The kernel for this CPU (AVX2 + FMA when present and built), chosen once. */
dcmci_paper_conv_fn dcmci_paper_conv_row(void);

#endif
