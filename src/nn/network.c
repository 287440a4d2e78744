/*
 * network.c - the keyed integer AT-ResNet of docs/format.md sections 5-7: weight loading from the
 * key stream and the forward pass (stem, residual blocks with channel and spatial attention, head)
 * on channels-last u8 activations. The 3x3 convolutions go through the run-time chosen kernel;
 * everything else is plain C whose integer results do not depend on how the compiler vectorises.
 */
#include "nn/network.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "nn/kernels.h"

#ifdef DCMC_HAVE_OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#else
#define THREAD_ID() 0
#endif

/* The integer loops below (epilogues, attention) are written once in C, which is their scalar
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
    int32_t bsa;
} block_w;

typedef struct net_w {
    int8_t *stem_wp;
    int32_t stem_b[C];
    block_w blocks[MAX_BLOCKS];
    int8_t *head_wp; /* output channels beyond `planes` keep zero weights and bias */
    int32_t head_b[C];
} net_w;

struct dcmci_net_plan {
    dcmc_preset pr;
    unsigned planes, cin_pad, bits, hid, k, kpad;
    size_t h, w;
    int threads;
    uint32_t mask;
    uint8_t *x0;        /* (h+2) x (w+2) x cin_pad, zero border */
    uint8_t *t, *u;     /* (h+2) x (w+2) x 16, zero border */
    int16_t *hh;        /* h x w x 16 */
    int16_t *sam;       /* 2 planes of (h+k-1) x (w+k-1), zero border: channel mean and max */
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

static inline int64_t floor_div64(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static inline uint8_t quant_in(uint32_t v, unsigned bits)
{
    return (uint8_t)(bits >= 8 ? v >> (bits - 8) : v << (8 - bits));
}

/* ---- plan ---- */

static size_t conv_wp_bytes(unsigned cin)
{
    return (size_t)9 * cin * C;
}

void dcmci_net_plan_free(dcmci_net_plan *p)
{
    if (p == NULL)
        return;
    free(p->x0);
    free(p->t);
    free(p->u);
    free(p->hh);
    free(p->sam);
    free(p->acc);
    free(p->sarow);
    free(p->pool_sum);
    free(p->pool_max);
    if (p->arena) {
        /* Weights are key material. */
        size_t n = (size_t)2 * p->pr.rounds *
                   (conv_wp_bytes(p->cin_pad) + (size_t)p->pr.blocks * 2 * conv_wp_bytes(C) +
                    conv_wp_bytes(C));
        dcmc_wipe(p->arena, n);
        free(p->arena);
    }
    dcmc_wipe(p->nets, sizeof p->nets);
    free(p);
}

static void *zalloc(size_t a, size_t b, size_t c, int *ok)
{
    size_t n;
    if (!*ok || !dcmci_mul_size(a, b, &n) || !dcmci_mul_size(n, c, &n)) {
        *ok = 0;
        return NULL;
    }
    void *m = calloc(n ? n : 1, 1);
    if (m == NULL)
        *ok = 0;
    return m;
}

dcmc_status dcmci_net_plan_new(dcmci_net_plan **out, const dcmc_preset *preset, unsigned planes,
                              size_t h, size_t w, unsigned bits, int threads)
{
    if (out == NULL)
        return DCMC_ERR_ARG;
    *out = NULL;
    if (preset == NULL || planes < 1 || 2 * planes > 16 || h == 0 || w == 0 || bits < 1 ||
        bits > 32 || threads < 1)
        return DCMC_ERR_ARG;
    dcmc_status st = dcmc_preset_check(preset);
    if (st != DCMC_OK)
        return st;
    if (h > 65535 || w > 65535)
        return DCMC_ERR_OVERFLOW;
    dcmci_net_plan *p = calloc(1, sizeof *p);
    if (p == NULL)
        return DCMC_ERR_NOMEM;
    p->pr = *preset;
    p->planes = planes;
    p->cin_pad = (planes + 3) / 4 * 4;
    p->bits = bits;
    p->hid = C / preset->ca_reduction;
    p->k = preset->sa_kernel;
    p->kpad = (preset->sa_kernel - 1) / 2;
    p->h = h;
    p->w = w;
    p->threads = threads;
    p->mask = bits >= 32 ? 0xFFFFFFFFu : ((uint32_t)1 << bits) - 1;

    int ok = 1;
    size_t hp = h + 2, wp = w + 2;
    p->x0 = zalloc(hp * wp, p->cin_pad, 1, &ok);
    p->t = zalloc(hp * wp, C, 1, &ok);
    p->u = zalloc(hp * wp, C, 1, &ok);
    p->hh = zalloc(h * w, C, sizeof(int16_t), &ok);
    p->sam = zalloc(2 * (h + p->k - 1), (w + p->k - 1), sizeof(int16_t), &ok);
    p->acc = zalloc((size_t)threads * w, C, sizeof(int32_t), &ok);
    p->sarow = zalloc((size_t)threads, w, sizeof(int32_t), &ok);
    p->pool_sum = zalloc((size_t)threads, C, sizeof(int64_t), &ok);
    p->pool_max = zalloc((size_t)threads, C, sizeof(int32_t), &ok);
    size_t per_net = conv_wp_bytes(p->cin_pad) + (size_t)preset->blocks * 2 * conv_wp_bytes(C) +
                     conv_wp_bytes(C);
    p->arena = zalloc((size_t)2 * preset->rounds, per_net, 1, &ok);
    if (!ok) {
        dcmci_net_plan_free(p);
        return DCMC_ERR_NOMEM;
    }
    int8_t *a = p->arena;
    for (unsigned n = 0; n < 2u * preset->rounds; n++) {
        net_w *nw = &p->nets[n];
        nw->stem_wp = a;
        a += conv_wp_bytes(p->cin_pad);
        for (unsigned b = 0; b < preset->blocks; b++) {
            nw->blocks[b].w1p = a;
            a += conv_wp_bytes(C);
            nw->blocks[b].w2p = a;
            a += conv_wp_bytes(C);
        }
        nw->head_wp = a;
        a += conv_wp_bytes(C);
    }
    *out = p;
    return DCMC_OK;
}

/* ---- weights (section 6) ---- */

size_t dcmci_net_weight_bytes(const dcmc_preset *pr, unsigned planes)
{
    const size_t ch = C, cin = planes; /* network input and output planes: 2 per sample */
    size_t stem = 9 * cin * ch + 2 * ch;
    size_t block = 2 * (9 * ch * ch + 2 * ch);
    if (pr->attention) {
        size_t hid = ch / pr->ca_reduction, k = pr->sa_kernel;
        block += 2 * hid * ch + 2 * k * k + 2;
    }
    size_t head = 9 * ch * cin + 2 * cin;
    return 2 * (size_t)pr->rounds * (stem + pr->blocks * block + head);
}

static inline int8_t rd_w(const uint8_t **s)
{
    return (int8_t)((*(*s)++ >> 1) - 64);
}

static inline int32_t rd_b(const uint8_t **s)
{
    int16_t v = (int16_t)((uint16_t)(*s)[0] | (uint16_t)(*s)[1] << 8);
    *s += 2;
    return (int32_t)v >> 2;
}

static void load_conv(const uint8_t **s, int8_t *wp, unsigned cin_real, unsigned cin_pad,
                      unsigned cout, int32_t *bias)
{
    for (unsigned o = 0; o < cout; o++)
        for (unsigned t = 0; t < 9; t++)
            for (unsigned i = 0; i < cin_real; i++)
                wp[dcmci_conv_wp_index(cin_pad, t, i, o)] = rd_w(s);
    for (unsigned o = 0; o < cout; o++)
        bias[o] = rd_b(s);
}

void dcmci_net_load(dcmci_net_plan *p, const uint8_t *s)
{
    const unsigned hid = p->hid, k = p->k;
    for (unsigned n = 0; n < 2u * p->pr.rounds; n++) {
        net_w *nw = &p->nets[n];
        load_conv(&s, nw->stem_wp, p->planes, p->cin_pad, C, nw->stem_b);
        for (unsigned b = 0; b < p->pr.blocks; b++) {
            block_w *bw = &nw->blocks[b];
            load_conv(&s, bw->w1p, C, C, C, bw->b1);
            load_conv(&s, bw->w2p, C, C, C, bw->b2);
            if (p->pr.attention) {
                for (unsigned i = 0; i < hid * C; i++)
                    bw->a1[i] = rd_w(&s);
                for (unsigned i = 0; i < C * hid; i++)
                    bw->a2[i] = rd_w(&s);
                for (unsigned i = 0; i < 2 * k * k; i++)
                    bw->sa[i] = rd_w(&s);
                bw->bsa = rd_b(&s);
            }
        }
        load_conv(&s, nw->head_wp, C, C, p->planes, nw->head_b);
    }
}

/* ---- forward pass (section 7) ---- */

enum epilogue { EPI_RELU, EPI_S16_POOL, EPI_RESIDUAL, EPI_HEAD };

typedef struct conv_job {
    const uint8_t *in;
    unsigned cin;
    const int8_t *wp;
    const int32_t *bias;
    enum epilogue epi;
    unsigned shift;
    uint8_t *dst_u8;    /* EPI_RELU, EPI_RESIDUAL: padded channels-last */
    uint32_t *target;   /* EPI_HEAD */
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

VEC_CLONES static void epi_s16_pool(const int32_t *restrict acc, int16_t *restrict d, size_t w, unsigned s,
                         int64_t *restrict psum, int32_t *restrict pmax)
{
    /* A row sum fits int32: w <= 32767 values of at most 2^15 each. */
    int32_t rsum[C] = {0}, rmax[C];
    for (unsigned c = 0; c < C; c++)
        rmax[c] = pmax[c];
    for (size_t x = 0; x < w; x++) {
        for (unsigned c = 0; c < C; c++) {
            int32_t v = dcmci_clamp32(dcmci_rshift_round(acc[x * C + c], s), -32768, 32767);
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

VEC_CLONES static void epi_head(const int32_t *restrict acc, uint32_t *restrict tg, size_t w, unsigned c,
                     int sign, uint32_t mask)
{
    if (sign > 0)
        for (size_t x = 0; x < w; x++)
            tg[x] = (tg[x] + (uint32_t)acc[x * C + c]) & mask;
    else
        for (size_t x = 0; x < w; x++)
            tg[x] = (tg[x] - (uint32_t)acc[x * C + c]) & mask;
}

static void run_conv(dcmci_net_plan *p, const conv_job *j)
{
    const size_t h = p->h, w = p->w, in_stride = (w + 2) * j->cin, stride = (w + 2) * C;
    const dcmci_conv3x3_row_fn kernel = dcmci_conv3x3_row_kernel();
    const unsigned shift = j->shift;
    if (j->epi == EPI_S16_POOL) {
        for (int t = 0; t < p->threads; t++) {
            for (unsigned c = 0; c < C; c++) {
                p->pool_sum[t * C + c] = 0;
                p->pool_max[t * C + c] = INT32_MIN;
            }
        }
    }
    /* Rows are handed out 8 at a time, not split in equal halves: on a machine busy with other
     * work one thread may get half a core, and a static split made the other wait for it at the
     * end of every layer (2 threads took 54 ms a frame against 35 ms for 1; 28 ms dynamic).
     * The pooled sums and maxima are exact integers: any split gives the same result. */
#pragma omp parallel num_threads(p->threads)
    {
        const int tid = THREAD_ID();
        int32_t *acc = p->acc + (size_t)tid * w * C;
#pragma omp for schedule(dynamic, 8)
        for (size_t y = 0; y < h; y++) {
            kernel(j->in + y * in_stride, in_stride, w, j->cin, j->wp, j->bias, acc);
            switch (j->epi) {
            case EPI_RELU:
                epi_relu(acc, j->dst_u8 + (y + 1) * stride + C, w * C, shift);
                break;
            case EPI_RESIDUAL:
                epi_residual(acc, j->dst_u8 + (y + 1) * stride + C, w * C, shift);
                break;
            case EPI_S16_POOL:
                epi_s16_pool(acc, p->hh + y * w * C, w, shift, p->pool_sum + (size_t)tid * C,
                             p->pool_max + (size_t)tid * C);
                break;
            case EPI_HEAD:
                for (unsigned c = 0; c < p->planes; c++)
                    epi_head(acc, j->target + c * h * w + y * w, w, c, j->sign, p->mask);
                break;
            }
        }
    }
}

/* Channel attention weights ca[c] (Q8) from the pooled statistics of Hh. */
static void channel_attention(dcmci_net_plan *p, const block_w *bw, int32_t ca[C])
{
    int64_t sum[C];
    int32_t mx[C], avg[C], za[C], zm[C];
    for (unsigned c = 0; c < C; c++) {
        sum[c] = 0;
        mx[c] = INT32_MIN;
        for (int t = 0; t < p->threads; t++) {
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

/* Channel-weighted features of one pixel: G[c] = rs(Hh[c] * ca[c], 8). */
static inline void gate(const int16_t *restrict hr, const int32_t *restrict ca, int32_t *restrict g)
{
    for (unsigned c = 0; c < C; c++)
        g[c] = dcmci_rshift_round(hr[c] * ca[c], 8);
}

VEC_CLONES static void sa_pool_row(const int16_t *restrict hr, const int32_t *restrict ca, size_t w,
                        int16_t *restrict mr, int16_t *restrict xr)
{
    for (size_t x = 0; x < w; x++) {
        int32_t g[C], s = 0, m = INT32_MIN;
        gate(hr + x * C, ca, g);
        for (unsigned c = 0; c < C; c++) {
            s += g[c];
            m = g[c] > m ? g[c] : m;
        }
        mr[x] = (int16_t)(s >> 4); /* floor(s / 16): C is 16 */
        xr[x] = (int16_t)m;
    }
}

VEC_CLONES static void sa_conv_row(const int16_t *restrict src, size_t sw, size_t k, const int8_t *restrict wt,
                        int32_t *restrict acc, size_t w)
{
    /* x innermost so the compiler vectorises the KxK convolution along the row. */
    for (size_t ky = 0; ky < k; ky++) {
        for (size_t kx = 0; kx < k; kx++) {
            const int32_t wv = wt[ky * k + kx];
            const int16_t *r = src + ky * sw + kx;
            for (size_t x = 0; x < w; x++)
                acc[x] += wv * r[x];
        }
    }
}

VEC_CLONES static void sa_apply_row(const int16_t *restrict hr, const int32_t *restrict ca,
                         const int32_t *restrict acc, uint8_t *restrict tr, size_t w, unsigned s)
{
    for (size_t x = 0; x < w; x++) {
        const int32_t sa = sig_q8(dcmci_rshift_round(acc[x], s));
        int32_t g[C];
        gate(hr + x * C, ca, g);
        for (unsigned c = 0; c < C; c++) {
            int32_t r = dcmci_rshift_round(g[c] * sa, 8);
            tr[x * C + c] = (uint8_t)dcmci_clamp32(tr[x * C + c] + r, 0, 255);
        }
    }
}

/* Spatial attention and the residual sum: T = clamp(T + rs(G * sa, 8)), G = rs(Hh * ca, 8). */
static void spatial_attention(dcmci_net_plan *p, const block_w *bw, const int32_t ca[C])
{
    const size_t h = p->h, w = p->w, k = p->k, kp = p->kpad, sw = w + k - 1;
    const size_t plane = (h + k - 1) * sw, stride = (w + 2) * C;
    int16_t *mean = p->sam, *mxc = p->sam + plane;

#pragma omp parallel for num_threads(p->threads) schedule(dynamic, 8)
    for (size_t y = 0; y < h; y++)
        sa_pool_row(p->hh + y * w * C, ca, w, mean + (y + kp) * sw + kp, mxc + (y + kp) * sw + kp);

#pragma omp parallel num_threads(p->threads)
    {
        int32_t *acc = p->sarow + (size_t)THREAD_ID() * w;
#pragma omp for schedule(dynamic, 8)
        for (size_t y = 0; y < h; y++) {
            for (size_t x = 0; x < w; x++)
                acc[x] = bw->bsa;
            sa_conv_row(mean + y * sw, sw, k, bw->sa, acc, w);
            sa_conv_row(mxc + y * sw, sw, k, bw->sa + k * k, acc, w);
            sa_apply_row(p->hh + y * w * C, ca, acc, p->t + (y + 1) * stride + C, w,
                         p->pr.shift_sa);
        }
    }
}

static void quantize_input(dcmci_net_plan *p, const uint32_t *in)
{
    const size_t h = p->h, w = p->w, hw = h * w, ci = p->cin_pad;
#pragma omp parallel for num_threads(p->threads) schedule(dynamic, 8)
    for (size_t y = 0; y < h; y++) {
        uint8_t *d = p->x0 + ((y + 1) * (w + 2) + 1) * ci;
        for (size_t x = 0; x < w; x++)
            for (unsigned c = 0; c < p->planes; c++)
                d[x * ci + c] = quant_in(in[c * hw + y * w + x], p->bits);
    }
}

void dcmci_net_apply(dcmci_net_plan *p, unsigned index, const uint32_t *in, uint32_t *target,
                    int sign)
{
    const net_w *nw = &p->nets[index];
    quantize_input(p, in);
    conv_job j = {p->x0, p->cin_pad, nw->stem_wp, nw->stem_b, EPI_RELU, p->pr.shift_stem,
                  p->t, NULL, 0};
    run_conv(p, &j);
    for (unsigned b = 0; b < p->pr.blocks; b++) {
        const block_w *bw = &nw->blocks[b];
        conv_job c1 = {p->t, C, bw->w1p, bw->b1, EPI_RELU, p->pr.shift_conv, p->u, NULL, 0};
        run_conv(p, &c1);
        if (p->pr.attention) {
            conv_job c2 = {p->u, C, bw->w2p, bw->b2, EPI_S16_POOL, p->pr.shift_conv, NULL, NULL, 0};
            run_conv(p, &c2);
            int32_t ca[C];
            channel_attention(p, bw, ca);
            spatial_attention(p, bw, ca);
        } else {
            conv_job c2 = {p->u, C, bw->w2p, bw->b2, EPI_RESIDUAL, p->pr.shift_conv, p->t, NULL, 0};
            run_conv(p, &c2);
        }
    }
    conv_job hd = {p->t, C, nw->head_wp, nw->head_b, EPI_HEAD, 0, NULL, target, sign};
    run_conv(p, &hd);
}

void dcmci_net_eval(dcmci_net_plan *p, unsigned index, const uint32_t *in, uint32_t *out)
{
    memset(out, 0, (size_t)p->planes * p->h * p->w * sizeof *out);
    dcmci_net_apply(p, index, in, out, +1);
}
