/*
 * forward.c - the forward pass of the keyed integer AT-ResNet (docs/format.md section 7): stem,
 * residual blocks with channel and spatial attention, head, on channels-last u8 activations,
 * over the whole frame or band by band. The 3x3 convolutions go through the run-time chosen
 * kernel; everything else is plain C whose integer results do not depend on how the compiler
 * vectorises.
 */
#include <stdlib.h>
#include <string.h>

#include "core/team.h"
#include "nn/kernels.h"
#include "nn/plan.h"

/* ---- forward pass (section 7) ---- */

enum epilogue { EPI_RELU, EPI_S16, EPI_RESIDUAL, EPI_HEAD };

/* One 3x3 convolution over some rows. Inputs and u8 outputs are padded buffers with an origin
 * row (see the plan); hh rows have their own origin. */
typedef struct conv_job {
    const uint8_t *in;
    size_t in_org;
    unsigned cin;
    const int8_t *wp;   /* packed weights, or for EPI_HEAD the narrow kernel's */
    const int32_t *bias;
    enum epilogue epi;
    unsigned shift;
    uint8_t *dst;       /* EPI_RELU, EPI_RESIDUAL: padded, 16 channels */
    size_t dst_org;
    size_t hh_org;      /* EPI_S16 */
    int pool;           /* EPI_S16: also add the rows to the pooled statistics */
    dcmci_net_io target; /* EPI_HEAD */
    int sign;           /* EPI_HEAD */
} conv_job;

/* Epilogues: one output row of accumulators to the next layer's input. Separate functions with
 * restrict pointers so the compiler can vectorise them (u8 stores may alias anything otherwise). */
VEC_CLONES static void epi_relu(const int32_t *restrict acc, uint8_t *restrict d, size_t n, unsigned s)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)dcmci_clamp32(dcmci_rshift_round(acc[i], s), 0, 255);
}

VEC_CLONES static void epi_residual(const int32_t *restrict acc, uint8_t *restrict d, size_t n, unsigned s)
{
    for (size_t i = 0; i < n; i++) {
        int32_t r = dcmci_clamp32(dcmci_rshift_round(acc[i], s), -32768, 32767);
        d[i] = (uint8_t)dcmci_clamp32(d[i] + r, 0, 255);
    }
}

VEC_CLONES static void epi_s16(const int32_t *restrict acc, int16_t *restrict d, size_t n, unsigned s)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (int16_t)dcmci_clamp32(dcmci_rshift_round(acc[i], s), -32768, 32767);
}

/* epi_s16, and the row's sums and maxima added to the pooled statistics of channel attention. */
VEC_CLONES static void epi_s16_pool(const int32_t *restrict acc, int16_t *restrict d, size_t w,
                                    unsigned s, int64_t *restrict psum, int32_t *restrict pmax)
{
    /* A row sum fits int32: w <= 65535 values of at most 2^15 each. */
    int32_t rsum[C] = {0}, rmax[C];
    for (unsigned c = 0; c < C; c++)
        rmax[c] = pmax[c];
    for (size_t x = 0; x < w; x++) {
        for (unsigned c = 0; c < C; c++) {
            const int32_t v = dcmci_clamp32(dcmci_rshift_round(acc[x * C + c], s), -32768, 32767);
            d[x * C + c] = (int16_t)v;
            rsum[c] += v;
            rmax[c] = v > rmax[c] ? v : rmax[c];
        }
    }
    for (unsigned c = 0; c < C; c++) {
        psum[c] += rsum[c];
        pmax[c] = rmax[c];
    }
}

/* Output channel 2j + i of the head into plane pair j, column 2x + i: the two planes of a pair
 * lie interleaved in one row of the frame (dcmci_net_io). */
VEC_CLONES static void epi_head(const int32_t *restrict acc, uint32_t *restrict tg, size_t w,
                                unsigned pair, int sign, uint32_t mask)
{
    const int32_t *a = acc + (size_t)2 * pair;
    if (sign > 0)
        for (size_t x = 0; x < 2 * w; x++)
            tg[x] = (tg[x] + (uint32_t)a[(x >> 1) * C + (x & 1)]) & mask;
    else
        for (size_t x = 0; x < 2 * w; x++)
            tg[x] = (tg[x] - (uint32_t)a[(x >> 1) * C + (x & 1)]) & mask;
}

static inline uint8_t *prow(uint8_t *buf, size_t stride, size_t org, size_t y)
{
    return buf + (y + 1 - org) * stride; /* frame row y of a padded buffer with origin org */
}

/* One layer's rows: what computing row y takes (ctx), on thread tid. */
typedef void (*row_fn)(dcmci_net_plan *p, const void *ctx, size_t y, int tid);

/* Rows [ya, yb) on as many threads as the team gives this region (core/team.h), measured for it.
 * Rows are handed out 8 at a time, not split in equal halves: on a machine busy with other work
 * one thread may get half a core, and a static split made the other wait for it at the end of
 * every layer (2 threads took 54 ms a frame against 35 ms for 1; 28 ms dynamic). */
static void parallel_rows(dcmci_net_plan *p, size_t ya, size_t yb, row_fn fn, const void *ctx)
{
    const int n = dcmci_team_size(p->team);
    const uint64_t t0 = n > 1 ? dcmci_now_ns() : 0;
    uint64_t own_ns = 0;
    size_t own = 0;
#pragma omp parallel num_threads(n)
    {
        const int tid = THREAD_ID();
        size_t mine = 0;
#pragma omp for schedule(dynamic, 8) nowait
        for (size_t y = ya; y < yb; y++) {
            fn(p, ctx, y, tid);
            mine++;
        }
        if (n > 1 && tid == 0) { /* the calling thread's share, for the team's estimate */
            own_ns = dcmci_now_ns() - t0;
            own = mine;
        }
    }
    if (n > 1)
        dcmci_team_region(p->team, dcmci_now_ns() - t0, own_ns, own, yb - ya);
}

static void pool_reset(dcmci_net_plan *p)
{
    for (int t = 0; t < p->team->threads; t++) {
        for (unsigned c = 0; c < C; c++) {
            p->pool_sum[t * C + c] = 0;
            p->pool_max[t * C + c] = INT32_MIN;
        }
    }
}

/* One output row of a convolution. The pooled sums and maxima are exact integers: any split
 * between threads, and any band, gives the same result. */
typedef struct conv_run {
    const conv_job *j;
    dcmci_conv3x3_row_fn kernel;
    dcmci_conv3x3_narrow_fn narrow;
} conv_run;

static void conv_row(dcmci_net_plan *p, const void *ctx, size_t y, int tid)
{
    const conv_run *cr = ctx;
    const conv_job *j = cr->j;
    const size_t w = p->w, in_stride = (w + 2) * j->cin, stride = (w + 2) * C;
    int32_t *acc = p->acc + (size_t)tid * w * C;
    const uint8_t *in = j->in + (y - j->in_org) * in_stride;
    if (j->epi == EPI_HEAD) /* only `planes` of the 16 outputs are not zero */
        cr->narrow(in, in_stride, w, j->wp, j->bias, acc, p->planes);
    else
        cr->kernel(in, in_stride, w, j->cin, j->wp, j->bias, acc);
    switch (j->epi) {
    case EPI_RELU:
        epi_relu(acc, prow(j->dst, stride, j->dst_org, y) + C, w * C, j->shift);
        break;
    case EPI_RESIDUAL:
        epi_residual(acc, prow(j->dst, stride, j->dst_org, y) + C, w * C, j->shift);
        break;
    case EPI_S16: {
        int16_t *d = p->hh + (y - j->hh_org) * w * C;
        if (j->pool)
            epi_s16_pool(acc, d, w, j->shift, p->pool_sum + (size_t)tid * C,
                         p->pool_max + (size_t)tid * C);
        else
            epi_s16(acc, d, w * C, j->shift);
        break;
    }
    case EPI_HEAD:
        for (unsigned c = 0; c < p->planes / 2; c++)
            epi_head(acc, j->target.base + c * j->target.pair + y * j->target.row, w, c, j->sign,
                     p->mask);
        break;
    }
}

/* Output rows [ya, yb) of one convolution. */
static void run_conv(dcmci_net_plan *p, const conv_job *j, size_t ya, size_t yb)
{
    const conv_run cr = {j, dcmci_conv3x3_row_kernel(), dcmci_conv3x3_narrow_kernel()};
    parallel_rows(p, ya, yb, conv_row, &cr);
}

/* Channel attention weights ca[c] (Q8) from the pooled statistics of Hh. */
static void channel_attention(dcmci_net_plan *p, const block_w *bw, int32_t ca[C])
{
    int64_t sum[C];
    int32_t mx[C], avg[C], za[C], zm[C];
    for (unsigned c = 0; c < C; c++) {
        sum[c] = 0;
        mx[c] = INT32_MIN;
        for (int t = 0; t < p->team->threads; t++) {
            sum[c] += p->pool_sum[t * C + c];
            if (p->pool_max[t * C + c] > mx[c])
                mx[c] = p->pool_max[t * C + c];
        }
        avg[c] = (int32_t)floor_div64(sum[c], (int64_t)(p->h * p->w));
    }
    const unsigned s = p->pr.shift_ca;
    for (unsigned j = 0; j < p->hid; j++) {
        int32_t sa = 0, sm = 0;
        for (unsigned c = 0; c < C; c++) {
            sa += bw->a1[j * C + c] * avg[c];
            sm += bw->a1[j * C + c] * mx[c];
        }
        za[j] = dcmci_clamp32(dcmci_rshift_round(sa, s), 0, 32767);
        zm[j] = dcmci_clamp32(dcmci_rshift_round(sm, s), 0, 32767);
    }
    for (unsigned c = 0; c < C; c++) {
        int32_t o = 0;
        for (unsigned j = 0; j < p->hid; j++)
            o += bw->a2[c * p->hid + j] * (za[j] + zm[j]);
        ca[c] = sig_q8(dcmci_rshift_round(o, s));
    }
}

/* Channel-weighted features, G = rs(Hh * ca, 8), written over Hh (|G| <= |Hh|: ca <= 256),
 * and their channel mean and max, interleaved per pixel in the pooled map: mr[2x] = floor of the
 * mean, mr[2x + 1] = max. */
VEC_CLONES static void sa_pool_row(int16_t *restrict hr, const int32_t *restrict ca, size_t w,
                                   int16_t *restrict mr)
{
    for (size_t x = 0; x < w; x++) {
        int32_t s = 0, m = INT32_MIN;
        for (unsigned c = 0; c < C; c++) {
            const int32_t g = dcmci_rshift_round(hr[x * C + c] * ca[c], 8);
            hr[x * C + c] = (int16_t)g;
            s += g;
            m = g > m ? g : m;
        }
        mr[2 * x] = (int16_t)(s >> 4); /* floor(s / 16): C is 16 */
        mr[2 * x + 1] = (int16_t)m;
    }
}

VEC_CLONES static void sa_apply_row(const int16_t *restrict gr, const int32_t *restrict acc,
                                    uint8_t *restrict tr, size_t w, unsigned s)
{
    for (size_t x = 0; x < w; x++) {
        const int32_t sa = sig_q8(dcmci_rshift_round(acc[x], s));
        for (unsigned c = 0; c < C; c++) {
            int32_t r = dcmci_rshift_round(gr[x * C + c] * sa, 8);
            tr[x * C + c] = (uint8_t)dcmci_clamp32(tr[x * C + c] + r, 0, 255);
        }
    }
}

/* What the spatial attention's rows need (spatial_attention). */
typedef struct sa_run {
    const block_w *bw;
    const int32_t *ca;
    size_t y0, ha;
    uint8_t *dst;
    size_t dst_org;
    dcmci_sa_conv_row_fn conv;
} sa_run;

/* Hh row y (in p->hh from row ha on) to G, and its pooled pair into the map. */
static void sa_pool(dcmci_net_plan *p, const void *ctx, size_t y, int tid)
{
    const sa_run *sr = ctx;
    const size_t w = p->w, kp = p->kpad, sw = 2 * (w + p->k - 1);
    (void)tid;
    sa_pool_row(p->hh + (y - sr->ha) * w * C, sr->ca, w, p->sam + (y + kp - sr->y0) * sw + 2 * kp);
}

/* Output row y: the 7x7 convolution of the map, and dst += rs(G * sa, 8). */
static void sa_apply(dcmci_net_plan *p, const void *ctx, size_t y, int tid)
{
    const sa_run *sr = ctx;
    const size_t w = p->w, sw = 2 * (w + p->k - 1), stride = (w + 2) * C;
    int32_t *acc = p->sarow + (size_t)tid * w;
    for (size_t x = 0; x < w; x++)
        acc[x] = sr->bw->bsa;
    sr->conv(p->sam + (y - sr->y0) * sw, sw, p->k, sr->bw->sa_pair, acc, w);
    sa_apply_row(p->hh + (y - sr->ha) * w * C, acc, prow(sr->dst, stride, sr->dst_org, y) + C, w,
                 p->pr.shift_sa);
}

/* Spatial attention and the residual sum for output rows [y0, y1), Hh rows [ha, he) being in
 * p->hh from row ha on (ha <= y0 - kpad or 0, he >= y1 + kpad or h): dst rows (origin dst_org)
 * become clamp(dst + rs(G * sa, 8)), G = rs(Hh * ca, 8). Hh is overwritten by G. */
static void spatial_attention(dcmci_net_plan *p, const block_w *bw, const int32_t ca[C], size_t y0,
                              size_t y1, size_t ha, size_t he, uint8_t *dst, size_t dst_org)
{
    const size_t w = p->w, k = p->k, kp = p->kpad, sw = 2 * (w + k - 1);
    int16_t *sam = p->sam;
    /* sam row r holds frame row y0 - kpad + r; rows outside the frame are zero. */
    const size_t top = ha + kp - y0, bottom = he + kp - y0, rows = y1 - y0 + k - 1;
    memset(sam, 0, top * sw * sizeof *sam);
    memset(sam + bottom * sw, 0, (rows - bottom) * sw * sizeof *sam);

    const sa_run sr = {bw, ca, y0, ha, dst, dst_org, dcmci_sa_conv_row_kernel()};
    parallel_rows(p, ha, he, sa_pool, &sr);
    parallel_rows(p, y0, y1, sa_apply, &sr);
}

typedef struct quant_run {
    const dcmci_net_io *in;
    size_t y0;
} quant_run;

static void quantize_row(dcmci_net_plan *p, const void *ctx, size_t y, int tid)
{
    const quant_run *q = ctx;
    const size_t w = p->w, ci = p->cin_pad, stride = (w + 2) * ci;
    uint8_t *d = prow(p->x0, stride, q->y0, y) + ci;
    (void)tid;
    for (unsigned s = 0; s < p->planes / 2; s++) {
        const uint32_t *row = q->in->base + s * q->in->pair + y * q->in->row;
        uint8_t *ds = d + (size_t)2 * s;
        for (size_t x = 0; x < w; x++) {
            ds[x * ci] = quant_in(row[2 * x], p->bits);
            ds[x * ci + 1] = quant_in(row[2 * x + 1], p->bits);
        }
    }
}

/* Input rows [y0 - 1, y1 + 1) of one band, quantised into x0 (origin y0); rows outside the frame
 * stay zero. The planes of a pair lie interleaved in the caller's rows (dcmci_net_io). */
static void quantize_rows(dcmci_net_plan *p, const dcmci_net_io *in, size_t y0, size_t y1)
{
    const size_t stride = (p->w + 2) * p->cin_pad;
    const size_t a = y0 > 0 ? y0 - 1 : 0, b = y1 < p->h ? y1 + 1 : p->h;
    if (y0 == 0)
        memset(p->x0, 0, stride);
    if (y1 == p->h)
        memset(prow(p->x0, stride, y0, y1), 0, stride);
    const quant_run q = {in, y0};
    parallel_rows(p, a, b, quantize_row, &q);
}

/* Rows [ha - 1, he + 1) of the block's first convolution, relu(conv(T)), into u (origin ha):
 * what Hh rows [ha, he) read. Rows outside the frame stay zero. */
static void first_conv_rows(dcmci_net_plan *p, const block_w *bw, size_t ha, size_t he)
{
    const size_t stride = (p->w + 2) * C;
    if (ha == 0)
        memset(p->u, 0, stride);
    if (he == p->h)
        memset(prow(p->u, stride, ha, he), 0, stride);
    conv_job c1 = {p->t, 0, C, bw->w1p, bw->b1, EPI_RELU, p->pr.shift_conv, p->u, ha, 0, 0,
                   {NULL, 0, 0}, 0};
    run_conv(p, &c1, ha > 0 ? ha - 1 : 0, he < p->h ? he + 1 : p->h);
}

static void copy_rows(uint8_t *dst, size_t dst_org, const uint8_t *src, size_t src_org, size_t y0,
                      size_t y1, size_t stride)
{
    memcpy(dst + (y0 + 1 - dst_org) * stride, src + (y0 + 1 - src_org) * stride,
           (y1 - y0) * stride);
}

/* One residual block. Whole frame: Hh is computed once, pooled, and applied to T in place. In
 * bands: pooled in a first pass over the bands, then computed again band by band with the halo
 * rows the spatial attention reads; a band's new T rows wait in a pending buffer until the next
 * band, which still reads the old values of the rows above it, has been computed. */
static void block_forward(dcmci_net_plan *p, const block_w *bw)
{
    const size_t h = p->h, band = p->band, kp = p->pr.attention ? p->kpad : 0;
    const size_t stride = (p->w + 2) * C;
    int32_t ca[C] = {0}; /* set by the first pass when the preset has attention */
    if (p->pr.attention) {
        pool_reset(p);
        for (size_t y0 = 0; y0 < h; y0 += band) {
            const size_t y1 = y0 + band < h ? y0 + band : h;
            first_conv_rows(p, bw, y0, y1);
            conv_job c2 = {p->u, y0, C, bw->w2p, bw->b2, EPI_S16, p->pr.shift_conv, NULL, 0, y0,
                           1, {NULL, 0, 0}, 0};
            run_conv(p, &c2, y0, y1);
        }
        channel_attention(p, bw, ca);
        if (band >= h) {
            spatial_attention(p, bw, ca, 0, h, 0, h, p->t, 0);
            return;
        }
    }
    size_t prev0 = 0, prev1 = 0;
    uint8_t *prev = NULL;
    for (size_t y0 = 0, i = 0; y0 < h; y0 += band, i++) {
        const size_t y1 = y0 + band < h ? y0 + band : h;
        const size_t ha = y0 > kp ? y0 - kp : 0, he = y1 + kp < h ? y1 + kp : h;
        uint8_t *dst = band >= h ? p->t : p->pend + (i % 2) * (band + 2) * stride;
        const size_t dst_org = band >= h ? 0 : y0;
        first_conv_rows(p, bw, ha, he);
        if (dst != p->t)
            copy_rows(dst, dst_org, p->t, 0, y0, y1, stride);
        if (p->pr.attention) {
            conv_job c2 = {p->u, ha, C, bw->w2p, bw->b2, EPI_S16, p->pr.shift_conv, NULL, 0, ha,
                           0, {NULL, 0, 0}, 0};
            run_conv(p, &c2, ha, he);
            spatial_attention(p, bw, ca, y0, y1, ha, he, dst, dst_org);
        } else {
            conv_job c2 = {p->u, ha, C, bw->w2p, bw->b2, EPI_RESIDUAL, p->pr.shift_conv, dst,
                           dst_org, 0, 0, {NULL, 0, 0}, 0};
            run_conv(p, &c2, y0, y1);
        }
        if (prev != NULL)
            copy_rows(p->t, 0, prev, prev0, prev0, prev1, stride);
        if (dst != p->t) {
            prev = dst;
            prev0 = y0;
            prev1 = y1;
        }
    }
    if (prev != NULL)
        copy_rows(p->t, 0, prev, prev0, prev0, prev1, stride);
}

void dcmci_net_apply(dcmci_net_plan *p, unsigned index, const dcmci_net_io *in,
                     const dcmci_net_io *target, int sign)
{
    const net_w *nw = &p->nets[index];
    const size_t h = p->h;
    for (size_t y0 = 0; y0 < h; y0 += p->band) {
        const size_t y1 = y0 + p->band < h ? y0 + p->band : h;
        quantize_rows(p, in, y0, y1);
        conv_job j = {p->x0, y0, p->cin_pad, nw->stem_wp, nw->stem_b, EPI_RELU, p->pr.shift_stem,
                      p->t, 0, 0, 0, {NULL, 0, 0}, 0};
        run_conv(p, &j, y0, y1);
    }
    for (unsigned b = 0; b < p->pr.blocks; b++)
        block_forward(p, &nw->blocks[b]);
    conv_job hd = {p->t, 0, C, nw->head_wn, nw->head_b, EPI_HEAD, 0, NULL, 0, 0, 0, *target, sign};
    run_conv(p, &hd, 0, h);
}

void dcmci_net_eval(dcmci_net_plan *p, unsigned index, const uint32_t *in, uint32_t *out)
{
    /* Plane-major buffers to the interleaved pairs the network reads and writes, and back. */
    const size_t h = p->h, w = p->w, hw = h * w, pairs = p->planes / 2;
    uint32_t *a = calloc(2 * pairs * hw, sizeof *a), *b = calloc(2 * pairs * hw, sizeof *b);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        memset(out, 0xFF, (size_t)p->planes * hw * sizeof *out); /* a test sees the failure */
        return;
    }
    for (size_t s = 0; s < pairs; s++)
        for (size_t i = 0; i < hw; i++)
            for (size_t j = 0; j < 2; j++)
                a[s * 2 * hw + 2 * i + j] = in[(2 * s + j) * hw + i];
    const dcmci_net_io vin = {a, 2 * hw, 2 * w}, vout = {b, 2 * hw, 2 * w};
    dcmci_net_apply(p, index, &vin, &vout, +1);
    for (size_t s = 0; s < pairs; s++)
        for (size_t i = 0; i < hw; i++)
            for (size_t j = 0; j < 2; j++)
                out[(2 * s + j) * hw + i] = b[s * 2 * hw + 2 * i + j];
    free(a);
    free(b);
}
