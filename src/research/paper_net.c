/*
 * paper_net.c - the forward pass of one of the paper's networks (research/paper/README.md,
 * "Architecture"): stem, residual blocks with channel and spatial attention, head. Activations
 * are channels-last float32 with a zero border, so every convolution is PyTorch's zero padding
 * without edge cases; OpenMP threads split rows, and the only reductions (the global pooling)
 * are summed per row in double and then over rows in order, so the thread count cannot change
 * a bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef DCMC_HAVE_OPENMP
#include <omp.h>
#endif

#include "core/util.h"
#include "research/paper_internal.h"

/* Every buffer of one forward pass, sized once for h x w. */
typedef struct work {
    size_t h, w, F, s;      /* s: the spatial kernel's border, k / 2 */
    int threads;
    dcmci_paper_conv_fn conv;
    float *x, *hb, *t, *y;  /* input (h+2)(w+2); h and the inner activation (h+2)(w+2)F; y hwF */
    float *map, *sig;       /* mean/max map (h+2s)(w+2s)2; the spatial gate hw */
    double *rsum, *rmax;    /* per row and channel: the pooling's partial sums and maxima */
} work;

static double sigmoid(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

static void work_free(work *k)
{
    free(k->x);
    free(k->hb);
    free(k->t);
    free(k->y);
    free(k->map);
    free(k->sig);
    free(k->rsum);
    free(k->rmax);
}

/* n floats (zeroed: the borders stay zero), or NULL when n overflowed (n == 0) or memory ran out. */
static void *zeros(size_t a, size_t b, size_t c, size_t elem)
{
    size_t n = 0;
    if (!dcmci_mul_size(a, b, &n) || !dcmci_mul_size(n, c, &n) || n == 0)
        return NULL;
    return calloc(n, elem);
}

static dcmc_status work_new(work *k, const dcmc_paper_model *m, size_t h, size_t w, int threads)
{
    memset(k, 0, sizeof *k);
    k->h = h;
    k->w = w;
    k->F = m->F;
    k->s = m->k / 2;
#ifdef DCMC_HAVE_OPENMP
    k->threads = threads > 0 ? threads : omp_get_max_threads();
#else
    k->threads = threads > 0 ? threads : 1;
#endif
    k->conv = dcmci_paper_conv_row();
    size_t hp = 0, wp = 0, hs = 0, ws = 0;
    if (!dcmci_add_size(h, 2, &hp) || !dcmci_add_size(w, 2, &wp) ||
        !dcmci_add_size(h, 2 * k->s, &hs) || !dcmci_add_size(w, 2 * k->s, &ws))
        return DCMC_ERR_OVERFLOW;
    k->x = zeros(hp, wp, 1, sizeof(float));
    k->hb = zeros(hp, wp, m->F, sizeof(float));
    k->t = zeros(hp, wp, m->F, sizeof(float));
    k->y = zeros(h, w, m->F, sizeof(float));
    k->map = zeros(hs, ws, 2, sizeof(float));
    k->sig = zeros(h, w, 1, sizeof(float));
    k->rsum = zeros(h, m->F, 1, sizeof(double));
    k->rmax = zeros(h, m->F, 1, sizeof(double));
    if (!k->x || !k->hb || !k->t || !k->y || !k->map || !k->sig || !k->rsum || !k->rmax) {
        work_free(k);
        return DCMC_ERR_NOMEM;
    }
    return DCMC_OK;
}

/* A 3x3 convolution of padded in (ci channels) into the interior of padded out (co channels),
 * with relu when asked. */
static void conv3_padded(const work *k, const float *in, size_t ci, const float *wt,
                         const float *bias, size_t co, float *out, int relu)
{
    const size_t wp = k->w + 2;
#pragma omp parallel for num_threads(k->threads) schedule(static)
    for (size_t y = 0; y < k->h; y++) {
        float *o = out + ((y + 1) * wp + 1) * co;
        k->conv(in + y * wp * ci, wp * ci, ci, wt, bias, co, 3, k->w, o);
        if (relu)
            for (size_t i = 0; i < k->w * co; i++)
                o[i] = o[i] > 0 ? o[i] : 0;
    }
}

/* The shared two-layer MLP of the channel attention on one pooled vector v, added into acc. */
static void mlp_add(const dcmc_paper_model *m, const dcmci_paper_block *b, const double *v,
                    double *acc)
{
    const size_t F = m->F, hid = m->F / m->r;
    double u[DCMCI_PAPER_MAX_F];
    for (size_t j = 0; j < hid; j++) {
        double s = b->fc1b[j];
        for (size_t c = 0; c < F; c++)
            s += (double)b->fc1w[j * F + c] * v[c];
        u[j] = s > 0 ? s : 0;
    }
    for (size_t c = 0; c < F; c++) {
        double s = b->fc2b[c];
        for (size_t j = 0; j < hid; j++)
            s += (double)b->fc2w[c * hid + j] * u[j];
        acc[c] += s;
    }
}

/* Channel attention's gate: sigmoid(MLP(avg) + MLP(max)) of y over the whole image. */
static void channel_gate(const work *k, const dcmc_paper_model *m, const dcmci_paper_block *b,
                         float *gate)
{
    const size_t F = k->F, w = k->w;
#pragma omp parallel for num_threads(k->threads) schedule(static)
    for (size_t y = 0; y < k->h; y++) {
        double *s = k->rsum + y * F, *mx = k->rmax + y * F;
        const float *row = k->y + y * w * F;
        for (size_t c = 0; c < F; c++) {
            s[c] = 0;
            mx[c] = -INFINITY;
        }
        for (size_t x = 0; x < w; x++)
            for (size_t c = 0; c < F; c++) {
                s[c] += row[x * F + c];
                mx[c] = fmax(mx[c], row[x * F + c]);
            }
    }
    double avg[DCMCI_PAPER_MAX_F] = {0}, max[DCMCI_PAPER_MAX_F] = {0}, acc[DCMCI_PAPER_MAX_F] = {0};
    for (size_t c = 0; c < F; c++) {
        avg[c] = 0;
        max[c] = -INFINITY;
    }
    for (size_t y = 0; y < k->h; y++) /* in row order: the same sum whatever the threads */
        for (size_t c = 0; c < F; c++) {
            avg[c] += k->rsum[y * F + c];
            max[c] = fmax(max[c], k->rmax[y * F + c]);
        }
    for (size_t c = 0; c < F; c++)
        avg[c] /= (double)(k->h * w);
    mlp_add(m, b, avg, acc);
    mlp_add(m, b, max, acc);
    for (size_t c = 0; c < F; c++)
        gate[c] = (float)sigmoid(acc[c]);
}

/* Attention on y (README steps 2.2 and 2.3): the channel gate, then the spatial gate from the
 * k x k convolution of the mean and max maps of the gated y. */
static void attention(const work *k, const dcmc_paper_model *m, const dcmci_paper_block *b)
{
    const size_t F = k->F, w = k->w, s = k->s, ws = w + 2 * s;
    float gate[DCMCI_PAPER_MAX_F];
    channel_gate(k, m, b, gate);
#pragma omp parallel for num_threads(k->threads) schedule(static)
    for (size_t y = 0; y < k->h; y++)
        for (size_t x = 0; x < w; x++) {
            float *p = k->y + (y * w + x) * F, mx = -INFINITY;
            double sum = 0;
            for (size_t c = 0; c < F; c++) {
                p[c] *= gate[c];
                sum += p[c];
                mx = p[c] > mx ? p[c] : mx;
            }
            float *q = k->map + ((y + s) * ws + x + s) * 2;
            q[0] = (float)(sum / (double)F);
            q[1] = mx;
        }
#pragma omp parallel for num_threads(k->threads) schedule(static)
    for (size_t y = 0; y < k->h; y++) {
        float *g = k->sig + y * w;
        k->conv(k->map + y * ws * 2, ws * 2, 2, b->sw, b->sb, 1, m->k, w, g);
        for (size_t x = 0; x < w; x++)
            g[x] = (float)sigmoid(g[x]);
    }
}

/* One residual block: h = relu(h + attention(conv2(relu(conv1(h))))). */
static void block(const work *k, const dcmc_paper_model *m, const dcmci_paper_block *b)
{
    const size_t F = k->F, w = k->w, wp = w + 2;
    conv3_padded(k, k->hb, F, b->c1w, b->c1b, F, k->t, 1);
#pragma omp parallel for num_threads(k->threads) schedule(static)
    for (size_t y = 0; y < k->h; y++)
        k->conv(k->t + y * wp * F, wp * F, F, b->c2w, b->c2b, F, 3, w, k->y + y * w * F);
    if (m->attention)
        attention(k, m, b);
#pragma omp parallel for num_threads(k->threads) schedule(static)
    for (size_t y = 0; y < k->h; y++) {
        float *hrow = k->hb + ((y + 1) * wp + 1) * F;
        const float *yrow = k->y + y * w * F;
        for (size_t x = 0; x < w; x++) {
            const float g = m->attention ? k->sig[y * w + x] : 1.0f;
            for (size_t c = 0; c < F; c++) {
                const float v = hrow[x * F + c] + yrow[x * F + c] * g;
                hrow[x * F + c] = v > 0 ? v : 0;
            }
        }
    }
}

dcmc_status dcmc_paper_forward(const dcmc_paper_model *m, int decoder, size_t h, size_t w,
                               const float *in, float *out, int threads)
{
    if (!m || !in || !out || h == 0 || w == 0 || (decoder != 0 && decoder != 1))
        return DCMC_ERR_ARG;
    work k;
    dcmc_status st = work_new(&k, m, h, w, threads);
    if (st != DCMC_OK)
        return st;
    const dcmci_paper_net *n = &m->net[decoder];
    for (size_t y = 0; y < h; y++)
        memcpy(k.x + (y + 1) * (w + 2) + 1, in + y * w, w * sizeof *in);
    conv3_padded(&k, k.x, 1, n->stem_w, n->stem_b, m->F, k.hb, 1);
    for (unsigned b = 0; b < m->B; b++)
        block(&k, m, &n->blocks[b]);
#pragma omp parallel for num_threads(k.threads) schedule(static)
    for (size_t y = 0; y < h; y++) {
        float *o = out + y * w;
        k.conv(k.hb + y * (w + 2) * m->F, (w + 2) * m->F, m->F, n->head_w, n->head_b, 1, 3, w, o);
        for (size_t x = 0; x < w; x++)
            o[x] = (float)sigmoid(o[x]);
    }
    work_free(&k);
    return DCMC_OK;
}
