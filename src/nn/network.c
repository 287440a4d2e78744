/*
 * network.c - the keyed integer AT-ResNet of docs/format.md sections 5-7: plans (the buffers of
 * one frame size, whole or in bands of rows) and weight loading from the key stream. The forward
 * pass is in forward.c.
 */
#include "nn/network.h"

#include <stdlib.h>
#include <string.h>

#include "nn/kernels.h"
#include "nn/plan.h"

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
    free(p->pend);
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

/* Frames of up to this many cells run whole (about 72 bytes a cell: 144 MiB at 2^21 cells, a
 * 2896x2896 frame); larger ones in bands of about NET_BAND_CELLS cells, which holds only T
 * whole (16 bytes a cell) but computes each attention block's two convolutions twice (once to
 * pool, once to apply) and a few halo rows more: about 1.6x the network's time. */
#define NET_WHOLE_CELLS ((size_t)1 << 21)
#define NET_BAND_CELLS ((size_t)1 << 17)

static size_t g_band_force; /* test hook: rows per band, 0 = automatic */

void dcmci_net_band_force(size_t rows)
{
    g_band_force = rows;
}

static size_t net_band_rows(size_t h, size_t w, unsigned kpad)
{
    size_t band = g_band_force;
    if (band == 0) {
        if (h * w <= NET_WHOLE_CELLS)
            return h;
        band = NET_BAND_CELLS / w;
    }
    /* A band must reach past the rows the next band reads before they are committed: the next
     * band's first convolution reads from kpad + 2 rows above its start. */
    if (band < kpad + 2)
        band = kpad + 2;
    return band < h ? band : h;
}

dcmc_status dcmci_net_plan_new(dcmci_net_plan **out, const dcmc_preset *preset, unsigned planes,
                              size_t h, size_t w, unsigned bits, dcmci_team *team)
{
    if (out == NULL)
        return DCMC_ERR_ARG;
    *out = NULL;
    if (preset == NULL || planes < 1 || 2 * planes > 16 || h == 0 || w == 0 || bits < 1 ||
        bits > 32 || team == NULL || team->threads < 1)
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
    p->team = team;
    const int threads = team->threads;
    p->mask = bits >= 32 ? 0xFFFFFFFFu : ((uint32_t)1 << bits) - 1;

    p->band = net_band_rows(h, w, p->kpad);
    int ok = 1;
    const size_t wp = w + 2, hb = p->band < h ? p->band + (size_t)2 * p->kpad : h;
    const size_t urows = (hb < h ? hb : h);
    p->x0 = zalloc((p->band + 2) * wp, p->cin_pad, 1, &ok);
    p->t = zalloc((h + 2) * wp, C, 1, &ok);
    p->u = zalloc((urows + 2) * wp, C, 1, &ok);
    if (p->band < h)
        p->pend = zalloc(2 * (p->band + 2) * wp, C, 1, &ok);
    p->hh = zalloc(urows * w, C, sizeof(int16_t), &ok);
    p->sam = zalloc(2 * (p->band + p->k - 1), (w + p->k - 1), sizeof(int16_t), &ok);
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
                for (unsigned i = 0; i < k * k; i++) /* low half: mean weight, high: max */
                    bw->sa_pair[i] = (int32_t)((uint32_t)(uint16_t)bw->sa[k * k + i] << 16 |
                                               (uint16_t)bw->sa[i]);
                bw->bsa = rd_b(&s);
            }
        }
        load_conv(&s, nw->head_wp, C, C, p->planes, nw->head_b);
        for (unsigned o = 0; o < p->planes; o++)
            for (unsigned t = 0; t < 9; t++)
                for (unsigned i = 0; i < C; i++)
                    nw->head_wn[(o * 9 + t) * C + i] = nw->head_wp[dcmci_conv_wp_index(C, t, i, o)];
    }
}
