/*
 * stateval.c - one evaluation of dcmcryptstat: load an image's first sample plane, run a scheme
 * on it (encrypt, decrypt, a one-pixel and a one-key-bit change) and measure the statistics of
 * src/metrics; the figures through statfig.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "stateval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dcmcrypt/dicom.h"
#include "dcmcrypt/io.h"
#include "dcmcrypt/metrics.h"
#include "statfig.h"

static double stat_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int stat_load_image(const char *path, image *im, char *msg, size_t mlen)
{
    memset(im, 0, sizeof *im);
    const char *base = strrchr(path, '/');
    snprintf(im->name, sizeof im->name, "%s", base ? base + 1 : path);
    dcmc_raster r;
    dcmc_status st = dcmc_raster_read(path, &r);
    dcmc_layout full;
    uint8_t *data = NULL;
    size_t len = 0;
    if (st == DCMC_OK) {
        st = dcmc_raster_layout(&r, &full);
        if (st != DCMC_OK && r.channels != 1) {
            /* alpha: keep the first channel */
            full = (dcmc_layout){r.height, r.width, r.channels, 0, r.bit_depth, r.bit_depth,
                                 r.bit_depth - 1, 0};
            st = DCMC_OK;
        }
        data = r.data;
        len = r.size;
    } else {
        dcmc_dicom_info info;
        st = dcmc_dicom_read_pixels(path, &info, &data, &len, msg, mlen);
        if (st != DCMC_OK)
            return -1;
        full = info.layout;
    }
    if (st != DCMC_OK || full.bits_allocated < 8) {
        snprintf(msg, mlen, "%s", st != DCMC_OK ? dcmc_status_str(st) : "1-bit images are not evaluated");
        free(data);
        return -1;
    }
    im->l = full;
    im->l.samples = 1;
    im->l.planar = 0;
    if ((st = dcmc_layout_frame_bytes(&im->l, &im->bytes)) != DCMC_OK ||
        !(im->px = malloc(im->bytes))) {
        snprintf(msg, mlen, "%s", dcmc_status_str(st != DCMC_OK ? st : DCMC_ERR_NOMEM));
        free(data);
        return -1;
    }
    const size_t B = full.bits_allocated / 8, n = (size_t)full.rows * full.cols;
    for (size_t i = 0; i < n; i++) {
        size_t src = full.planar ? i : i * full.samples;
        memcpy(im->px + i * B, data + src * B, B);
    }
    free(data);
    return 0;
}

static void values(const image *im, const uint8_t *px, uint32_t *v)
{
    const size_t n = (size_t)im->l.rows * im->l.cols, B = im->l.bits_allocated / 8;
    const unsigned low = im->l.high_bit - im->l.bits_stored + 1;
    const uint64_t mask = ((uint64_t)1 << im->l.bits_stored) - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = 0;
        for (size_t b = 0; b < B; b++)
            w |= (uint64_t)px[i * B + b] << (8 * b);
        v[i] = (uint32_t)((w >> low) & mask);
    }
}

/* Encrypt a copy of px with a scheme; decrypt into dec if asked. *ms gets the milliseconds of
 * the encryption. A failure of the cipher is returned, never measured as if it were ciphertext. */
static dcmc_status run_scheme(const scheme *s, const dcmc_paper_model *model, const image *im,
                              const dcmc_key *key, const uint8_t nonce[16], const uint8_t *px,
                              uint8_t *ct, uint8_t *dec, double *ms)
{
    memcpy(ct, px, im->bytes);
    double t0 = stat_now_ms();
    dcmc_status st;
    if (model) { /* the paper's system: the cipher image is round(E(x) L) XOR keystream */
        st = dcmc_paper_encrypt(model, key, nonce, &im->l, ct, im->bytes);
        *ms = stat_now_ms() - t0;
        if (st == DCMC_OK && dec) {
            memcpy(dec, ct, im->bytes);
            st = dcmc_paper_decrypt(model, key, nonce, &im->l, dec, im->bytes);
        }
        return st;
    }
    if (s->preset) {
        dcmc_options o;
        dcmc_options_default(&o);
        st = dcmc_preset_by_id((uint8_t)s->preset, &o.preset);
        o.flags = s->standard ? DCMC_FLAG_STANDARD_LAYER : 0;
        o.nonce = nonce;
        dcmc_header h;
        uint8_t *pl = NULL, *a = NULL;
        size_t pll = 0, al = 0;
        if (st == DCMC_OK)
            st = dcmc_image_encrypt(key, NULL, &o, &im->l, 1, ct, im->bytes, NULL, 0, &h, &pl, &pll);
        *ms = stat_now_ms() - t0;
        if (st == DCMC_OK && dec) {
            memcpy(dec, ct, im->bytes);
            st = dcmc_image_decrypt(key, &h, 0, dec, im->bytes, pl, pll, &a, &al);
        }
        dcmc_free(pl, pll);
        dcmc_free(a, al);
        return st;
    }
    st = dcmc_baseline_encrypt(s->baseline, key, nonce, &im->l, ct, im->bytes);
    *ms = stat_now_ms() - t0;
    if (st == DCMC_OK && dec) {
        memcpy(dec, ct, im->bytes);
        st = dcmc_baseline_encrypt(s->baseline, key, nonce, &im->l, dec, im->bytes);
    }
    return st;
}

/* The figures of scheme s: plain vp, cipher v0, decryption v1; the scatter shows the pairs of
 * the sampled horizontal correlation (seed 11). */
static dcmc_status write_figures(const char *fig_base, const scheme *s, const image *im,
                                 size_t pairs, const uint32_t *vp, const uint32_t *v0,
                                 const uint32_t *v1)
{
    const size_t w = im->l.cols, h = im->l.rows, n = w * h;
    char base[4200], title[400];
    snprintf(title, sizeof title, "%s, %s", im->name, s->name);
    const fig_info fi = {title, im->l.bits_stored, im->l.is_signed != 0};
    size_t *first = malloc(pairs * sizeof *first), *second = malloc(pairs * sizeof *second);
    snprintf(base, sizeof base, "%s.triplet", fig_base);
    dcmc_status fig = fig_triplet(base, &fi, w, h, vp, v0, v1);
    snprintf(base, sizeof base, "%s.hist", fig_base);
    if (fig == DCMC_OK)
        fig = fig_histograms(base, &fi, n, vp, v0);
    snprintf(base, sizeof base, "%s.scatter", fig_base);
    if (fig == DCMC_OK)
        fig = !first || !second ? DCMC_ERR_NOMEM
              : dcmc_metric_pair_positions(w, h, 0, pairs, 11, first, second) != 0
                  ? DCMC_ERR_ARG
                  : fig_scatter(base, &fi, n, vp, v0, first, second, pairs);
    free(first);
    free(second);
    return fig;
}

/* The statistics of the cipher image v0 alone; vh: a work area of one value per pixel. */
static void cipher_stats(const image *im, const uint32_t *v0, uint32_t *vh, size_t pairs,
                         result *r)
{
    const size_t w = im->l.cols, h = im->l.rows, n = w * h;
    const unsigned bits = im->l.bits_stored;
    const unsigned hb = bits > 16 ? 16 : bits; /* histograms of at most 2^16 bins */
    for (size_t i = 0; i < n; i++)
        vh[i] = v0[i] >> (bits - hb);
    r->entropy = dcmc_metric_entropy(vh, n, hb);
    r->chi2 = dcmc_metric_chi2(vh, n, hb);
    r->lse = dcmc_metric_local_entropy(vh, w, h, hb, 30, 44, 7);
    for (int d = 0; d < 4; d++) {
        r->corr[d] = dcmc_metric_correlation(v0, w, h, d);
        r->corr_s[d] = dcmc_metric_correlation_sampled(v0, w, h, d, pairs, 11 + (uint64_t)d);
        r->corr_abs += fabs(r->corr[d]) / 4;
    }
}

/* NPCR and UACI against the cipher image v0: one pixel one level up or down (the middle pixel),
 * then one key bit, nonce fixed. Work areas p2, ct2 (bytes) and v1 (values). */
static dcmc_status differential(const scheme *s, const dcmc_paper_model *model, const image *im,
                                const dcmc_key *key0, const uint8_t nonce[16],
                                const uint32_t *v0, uint8_t *p2, uint8_t *ct2, uint32_t *v1,
                                result *r)
{
    const size_t w = im->l.cols, h = im->l.rows, n = w * h;
    const unsigned bits = im->l.bits_stored;
    double ms2 = INFINITY, ms3 = INFINITY; /* a run skipped after a failure is never the fastest */
    memcpy(p2, im->px, im->bytes);
    const size_t mid = (h / 2) * w + w / 2, B = im->l.bits_allocated / 8;
    const unsigned low = im->l.high_bit - im->l.bits_stored + 1;
    uint64_t word = 0;
    for (size_t b = 0; b < B; b++)
        word |= (uint64_t)p2[mid * B + b] << (8 * b);
    word ^= (uint64_t)1 << low;
    for (size_t b = 0; b < B; b++)
        p2[mid * B + b] = (uint8_t)(word >> (8 * b));
    dcmc_status st = run_scheme(s, model, im, key0, nonce, p2, ct2, NULL, &ms2);
    r->ms = fmin(r->ms, ms2); /* the fastest of three */
    values(im, ct2, v1);
    dcmc_metric_npcr_uaci(v0, v1, n, bits, &r->npcr, &r->uaci);
    dcmc_key k1 = *key0;
    k1.bytes[13] ^= 0x10;
    if (st == DCMC_OK)
        st = run_scheme(s, model, im, &k1, nonce, im->px, ct2, NULL, &ms3);
    r->ms = fmin(r->ms, ms3);
    values(im, ct2, v1);
    dcmc_metric_npcr_uaci(v0, v1, n, bits, &r->npcr_key, &r->uaci_key);
    return st;
}

dcmc_status stat_evaluate(const scheme *s, const dcmc_paper_model *model, const image *im,
                          const dcmc_key *key0, const uint8_t nonce[16], size_t pairs,
                          const char *fig_base, result *r)
{
    const size_t n = (size_t)im->l.cols * im->l.rows;
    const unsigned bits = im->l.bits_stored;
    uint8_t *ct = malloc(im->bytes), *ct2 = malloc(im->bytes), *dec = malloc(im->bytes);
    uint8_t *p2 = malloc(im->bytes);
    uint32_t *v0 = calloc(n, sizeof *v0), *v1 = calloc(n, sizeof *v1);
    uint32_t *vp = calloc(n, sizeof *vp), *vh = calloc(n, sizeof *vh);
    memset(r, 0, sizeof *r);
    r->psnr = NAN; /* until the decryption is measured */
    dcmc_status st = !ct || !ct2 || !dec || !p2 || !v0 || !v1 || !vp || !vh
                         ? DCMC_ERR_NOMEM
                         : run_scheme(s, model, im, key0, nonce, im->px, ct, dec, &r->ms);
    if (st == DCMC_OK) {
        values(im, ct, v0);
        values(im, im->px, vp);
        values(im, dec, v1);
        r->psnr = dcmc_metric_psnr(vp, v1, n, bits);
        r->ssim = dcmc_metric_ssim(vp, v1, im->l.cols, im->l.rows, bits);
        for (size_t i = 0; i < n; i++) /* what a lossy decoder costs at its worst pixel */
            r->max_err = fmax(r->max_err, fabs((double)vp[i] - (double)v1[i]));
        if (fig_base)
            st = write_figures(fig_base, s, im, pairs, vp, v0, v1);
        cipher_stats(im, v0, vh, pairs, r);
        const dcmc_status dst = differential(s, model, im, key0, nonce, v0, p2, ct2, v1, r);
        if (dst != DCMC_OK) {
            r->psnr = NAN;
            st = dst;
        }
    }
    free(ct);
    free(ct2);
    free(dec);
    free(p2);
    free(v0);
    free(v1);
    free(vp);
    free(vh);
    return st;
}
