/*
 * plan.h - what the network's two halves share (network.c: plans and weights; forward.c: the
 * forward pass): the plan's layout and the fixed-point helpers of docs/format.md section 5.
 * Private to src/nn.
 */
#ifndef DCMC_NN_PLAN_H
#define DCMC_NN_PLAN_H

#include <stdint.h>

#include "core/util.h"
#include "nn/network.h"

#include "core/team.h"

#define THREAD_ID() dcmci_thread_id()

/* The integer loops of forward.c (epilogues, attention) are written once in C, which is their scalar
 * reference; on x86-64 the compiler also builds an AVX-512 (x86-64-v4: F, BW, DQ, VL) and an AVX2
 * clone of each, and the loader picks one from CPUID. Integer C semantics make every clone compute
 * the same bits (`dcmcrypt-bench --digest` is the same whichever runs). */
#if defined(DCMC_HAVE_AVX2_KERNEL) && (defined(__GNUC__) || defined(__clang__))
#define VEC_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define VEC_CLONES
#endif

#define C 16u          /* feature channels: dcmc_preset_check admits only 16 */
#define MAX_BLOCKS 8u  /* dcmc_preset_check bound */
#define MAX_NETS 16u   /* 2 * max rounds */
#define MAX_K 7u

typedef struct block_w {
    int8_t *w1p, *w2p; /* packed, cin = 16 */
    int32_t b1[C], b2[C];
    int8_t a1[C * C]; /* [j][c], j < H */
    int8_t a2[C * C]; /* [c][j] */
    int8_t sa[2 * MAX_K * MAX_K];
    int32_t sa_pair[MAX_K * MAX_K]; /* the same weights, (mean, max) pairs for the row kernel */
    int32_t bsa;
} block_w;

typedef struct net_w {
    int8_t *stem_wp;
    int32_t stem_b[C];
    block_w blocks[MAX_BLOCKS];
    int8_t *head_wp; /* output channels beyond `planes` keep zero weights and bias */
    int8_t head_wn[8 * 9 * C]; /* the first `planes` outputs again, for the narrow kernel */
    int32_t head_b[C];
} net_w;

struct dcmci_net_plan {
    dcmc_preset pr;
    unsigned planes, cin_pad, bits, hid, k, kpad;
    size_t h, w;
    size_t band;        /* rows per band; h: the whole frame at once */
    dcmci_team *team;   /* borrowed (the frame cipher's): threads for each region, at most ->threads */
    uint32_t mask;
    /* Padded buffers ((w + 2) pixels a row, zero border) hold frame rows from an origin row on:
     * frame row y at buffer row y - origin + 1. Only t always holds the whole frame. */
    uint8_t *x0;        /* band + 2 rows x cin_pad: the quantised input rows of one band */
    uint8_t *t;         /* h + 2 rows x 16: the residual stream T */
    uint8_t *u;         /* min(h, band + 2 kpad) + 2 rows x 16: the block's first convolution */
    uint8_t *pend;      /* banded only: 2 x (band + 2) rows x 16, new rows of T not yet committed */
    int16_t *hh;        /* min(h, band + 2 kpad) rows of w x 16 (no border) */
    int16_t *sam;       /* (band + k - 1) x (w + k - 1) pairs (channel mean, max), zero border */
    int32_t *acc;       /* per thread: w x 16 */
    int32_t *sarow;     /* per thread: w */
    int64_t *pool_sum;  /* per thread: 16 */
    int32_t *pool_max;  /* per thread: 16 */
    int8_t *arena;      /* packed 3x3 weights of every network */
    net_w nets[MAX_NETS];
};

/* ---- fixed-point helpers (section 5) ---- */

static inline int32_t sig_q8(int32_t t)
{
    int64_t a = t < 0 ? -(int64_t)t : t;
    int32_t y;
    if (a >= 80)
        y = 256;
    else if (a >= 38)
        y = (int32_t)(a / 2) + 216;
    else if (a >= 16)
        y = (int32_t)(2 * a) + 160;
    else
        y = (int32_t)(4 * a) + 128;
    return t >= 0 ? y : 256 - y;
}

/* b >= 1: the plan's cell count, and plans refuse empty frames. */
static inline int64_t floor_div64(int64_t a, int64_t b)
{
    /* NOLINTNEXTLINE(clang-analyzer-core.DivideZero): b is a plan's h * w, both >= 1 */
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static inline uint8_t quant_in(uint32_t v, unsigned bits)
{
    return (uint8_t)(bits >= 8 ? v >> (bits - 8) : v << (8 - bits));
}

#endif
