/*
 * frame.c - the frame cipher: pixel words to values (any DICOM layout, docs/format.md section 2),
 * coupling, keystream and diffusion, and back to canonical words. One dcmc_frame_cipher serves
 * every frame of an image: key schedule and network plan are made once, frames reuse them.
 */
#include <stdlib.h>
#include <string.h>

#include "cipher/internal.h"

struct dcmc_frame_cipher {
    dcmc_layout layout;
    int standard_layer;
    uint8_t prk[32];
    size_t n, len, frame_bytes; /* pixels per plane, values per frame, bytes per frame */
    uint32_t mask;
    int threads;
    dcmci_team team;  /* how many of them each region uses (core/team.h) */
    dcmci_coupling coupling;
    uint32_t *v;
    uint32_t *ks;    /* one keystream whole: d encrypting, k decrypting (len values) */
    uint32_t *chunk; /* the other, a piece at a time (DCMCI_KS_CHUNK values) */
    dcmc_frame_timing timing;
};

/* ---- words ---- */

static inline uint32_t word_get(const uint8_t *f, size_t j, unsigned ba)
{
    switch (ba) {
    case 1: return (f[j >> 3] >> (j & 7)) & 1u;
    case 8: return f[j];
    case 16: return (uint32_t)f[2 * j] | (uint32_t)f[2 * j + 1] << 8;
    default: return dcmci_load32le(f + 4 * j);
    }
}

static inline void word_put(uint8_t *f, size_t j, unsigned ba, uint32_t w)
{
    switch (ba) {
    case 1: f[j >> 3] = (uint8_t)((f[j >> 3] & ~(1u << (j & 7))) | (w << (j & 7))); break;
    case 8: f[j] = (uint8_t)w; break;
    case 16: f[2 * j] = (uint8_t)w; f[2 * j + 1] = (uint8_t)(w >> 8); break;
    default: dcmci_store32le(f + 4 * j, w); break;
    }
}

typedef struct field {
    unsigned ba, bs, low;
    uint32_t mask, ext; /* value mask; bits HB+1..BA-1 set for the sign extension */
    int is_signed;
} field;

static field field_of(const dcmc_layout *l)
{
    field f;
    f.ba = l->bits_allocated;
    f.bs = l->bits_stored;
    f.low = l->high_bit - l->bits_stored + 1;
    f.mask = f.bs >= 32 ? 0xFFFFFFFFu : ((uint32_t)1 << f.bs) - 1;
    uint64_t all = ((uint64_t)1 << f.ba) - 1, upto = ((uint64_t)1 << (l->high_bit + 1)) - 1;
    f.ext = (uint32_t)(all & ~upto);
    f.is_signed = (int)l->is_signed;
    return f;
}

static inline uint32_t value_of(const field *f, uint32_t w)
{
    return (w >> f->low) & f->mask;
}

static inline uint32_t canonical(const field *f, uint32_t v)
{
    uint32_t w = v << f->low;
    if (f->is_signed && ((v >> (f->bs - 1)) & 1u))
        w |= f->ext;
    return w;
}

/* Word index of raster pixel i of sample s. */
static inline size_t word_index(const dcmc_layout *l, size_t n, unsigned s, size_t i)
{
    return l->planar ? s * n + i : i * l->samples + s;
}

void dcmci_frame_values(const dcmc_layout *l, size_t n, const uint8_t *in, uint32_t *v)
{
    field f = field_of(l);
    for (unsigned s = 0; s < l->samples; s++)
        for (size_t i = 0; i < n; i++)
            v[s * n + i] = value_of(&f, word_get(in, word_index(l, n, s, i), f.ba));
}

void dcmci_frame_words(const dcmc_layout *l, size_t n, const uint32_t *v, uint8_t *out,
                      size_t frame_bytes)
{
    field f = field_of(l);
    if (f.ba == 1)
        memset(out, 0, frame_bytes); /* also zeroes the unused bits of the last byte */
    for (unsigned s = 0; s < l->samples; s++)
        for (size_t i = 0; i < n; i++)
            word_put(out, word_index(l, n, s, i), f.ba, canonical(&f, v[s * n + i]));
}

int dcmci_frame_residue(const dcmc_layout *l, const uint8_t *frame, uint8_t *res)
{
    field f = field_of(l);
    size_t words = (size_t)l->rows * l->cols * l->samples;
    if (f.ba == 1) {
        /* A one-bit word is its own value; only the unused bits after the last word of the
         * frame can hold something the cipher would not write back. */
        size_t bytes = words / 8 + (words % 8 != 0);
        uint8_t pad = words % 8 ? (uint8_t)(frame[bytes - 1] & ~((1u << (words % 8)) - 1)) : 0;
        if (res) {
            memset(res, 0, bytes);
            res[bytes - 1] = pad;
        }
        return pad != 0;
    }
    int any = 0;
    for (size_t j = 0; j < words; j++) {
        uint32_t w = word_get(frame, j, f.ba);
        uint32_t r = w ^ canonical(&f, value_of(&f, w));
        any |= r != 0;
        if (res)
            word_put(res, j, f.ba, r);
    }
    return any;
}

void dcmci_frame_residue_apply(const dcmc_layout *l, uint8_t *frame, const uint8_t *res)
{
    size_t words = (size_t)l->rows * l->cols * l->samples;
    if (l->bits_allocated == 1) {
        frame[words / 8 + (words % 8 != 0) - 1] ^= res[words / 8 + (words % 8 != 0) - 1];
        return;
    }
    for (size_t j = 0; j < words; j++)
        word_put(frame, j, l->bits_allocated,
                 word_get(frame, j, l->bits_allocated) ^ word_get(res, j, l->bits_allocated));
}

/* ---- the frame cipher ---- */

void dcmc_frame_cipher_free(dcmc_frame_cipher *fc)
{
    if (fc == NULL)
        return;
    dcmci_team_hand_on(&fc->team); /* to the next frame cipher of this thread */
    dcmci_coupling_free(&fc->coupling);
    if (fc->v)
        dcmc_free(fc->v, fc->len * sizeof *fc->v);
    if (fc->ks)
        dcmc_free(fc->ks, fc->len * sizeof *fc->ks);
    if (fc->chunk)
        dcmc_free(fc->chunk, DCMCI_KS_CHUNK * sizeof *fc->chunk);
    dcmc_wipe(fc, sizeof *fc);
    free(fc);
}

dcmc_status dcmc_frame_cipher_new(dcmc_frame_cipher **out, const dcmc_key *key,
                                  const dcmc_header *hdr, int threads)
{
    if (out == NULL)
        return DCMC_ERR_ARG;
    *out = NULL;
    if (key == NULL || hdr == NULL || threads < 0)
        return DCMC_ERR_ARG;
    dcmc_status st;
    size_t fb;
    if ((st = dcmc_layout_frame_bytes(&hdr->layout, &fb)) != DCMC_OK)
        return st;
    if ((st = dcmc_preset_check(&hdr->preset)) != DCMC_OK)
        return st;
    dcmc_frame_cipher *fc = calloc(1, sizeof *fc);
    if (fc == NULL)
        return DCMC_ERR_NOMEM;
    fc->layout = hdr->layout;
    fc->standard_layer = (hdr->flags & DCMC_FLAG_STANDARD_LAYER) != 0;
    fc->n = (size_t)hdr->layout.rows * hdr->layout.cols;
    fc->len = fc->n * hdr->layout.samples;
    fc->frame_bytes = fb;
    fc->mask = field_of(&hdr->layout).mask;
    if ((st = dcmci_prk_derive(key, hdr->nonce, fc->prk)) != DCMC_OK)
        goto fail;
    fc->v = malloc(fc->len * sizeof *fc->v);
    fc->ks = malloc(fc->len * sizeof *fc->ks);
    fc->chunk = malloc(DCMCI_KS_CHUNK * sizeof *fc->chunk);
    if (fc->v == NULL || fc->ks == NULL || fc->chunk == NULL) {
        st = DCMC_ERR_NOMEM;
        goto fail;
    }
    fc->threads = dcmci_threads_resolve(threads);
    dcmci_team_init(&fc->team, fc->threads);
    dcmci_team_inherit(&fc->team);
    st = dcmci_coupling_init(&fc->coupling, &hdr->preset, &hdr->layout, &fc->team);
    if (st != DCMC_OK)
        goto fail;
    *out = fc;
    return DCMC_OK;
fail:
    dcmc_frame_cipher_free(fc);
    return st;
}

static dcmc_status frame_run(dcmc_frame_cipher *fc, uint32_t index, const uint8_t *in,
                             uint8_t *out, size_t bytes, int decrypt)
{
    if (fc == NULL || in == NULL || out == NULL)
        return DCMC_ERR_ARG;
    if (bytes != fc->frame_bytes)
        return bytes < fc->frame_bytes ? DCMC_ERR_TRUNCATED : DCMC_ERR_ARG;
    const dcmci_ks_frame ks = {fc->prk, index, fc->mask, fc->layout.bits_stored,
                               fc->standard_layer, &fc->team};
    dcmc_status st;
    dcmci_team_frame(&fc->team);
    uint64_t ks_ns = 0;
    uint64_t t0 = dcmci_now_ns();
    dcmci_frame_values(&fc->layout, fc->n, in, fc->v);
    uint64_t t1 = dcmci_now_ns(), t2;
    if (!decrypt) {
        if ((st = dcmci_coupling_run(&fc->coupling, fc->prk, index, fc->v, 0)) != DCMC_OK)
            return st;
        t2 = dcmci_now_ns();
        st = dcmci_diffuse_frame(&ks, fc->v, fc->len, fc->ks, fc->chunk, 0, &ks_ns);
        if (st != DCMC_OK)
            return st;
        fc->timing.network_ns = t2 - t1;
    } else {
        if ((st = dcmci_diffuse_frame(&ks, fc->v, fc->len, fc->ks, fc->chunk, 1, &ks_ns)) != DCMC_OK)
            return st;
        t2 = dcmci_now_ns();
        if ((st = dcmci_coupling_run(&fc->coupling, fc->prk, index, fc->v, 1)) != DCMC_OK)
            return st;
        fc->timing.network_ns = dcmci_now_ns() - t2;
    }
    /* keystream: both streams and the pass fed piece by piece, side by side; diffusion: the
     * remaining pass and the conversions between words and values. */
    fc->timing.keystream_ns = ks_ns;
    dcmci_frame_words(&fc->layout, fc->n, fc->v, out, fc->frame_bytes);
    uint64_t t4 = dcmci_now_ns();
    fc->timing.diffusion_ns = (t4 - t0) - fc->timing.network_ns - fc->timing.keystream_ns;
    return DCMC_OK;
}

dcmc_status dcmc_frame_encrypt(dcmc_frame_cipher *fc, uint32_t index, const uint8_t *in,
                               uint8_t *out, size_t bytes)
{
    return frame_run(fc, index, in, out, bytes, 0);
}

dcmc_status dcmc_frame_decrypt(dcmc_frame_cipher *fc, uint32_t index, const uint8_t *in,
                               uint8_t *out, size_t bytes)
{
    return frame_run(fc, index, in, out, bytes, 1);
}

void dcmc_frame_cipher_timing(const dcmc_frame_cipher *fc, dcmc_frame_timing *t)
{
    if (t == NULL)
        return;
    memset(t, 0, sizeof *t);
    if (fc)
        *t = fc->timing;
}
