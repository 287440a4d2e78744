/*
 * paper_xor.c - the paper's system as published on one frame: the trained encoder, quantisation
 * to the image's depth, the logistic-map keystream XORed in (double precision, as published),
 * and for decryption the same XOR and the trained decoder. Lossy by construction: it exists to
 * be measured beside the exact cipher, never to produce an object.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cipher/internal.h"
#include "research/internal.h"
#include "research/paper_internal.h"

#define PAPER_TRANSIENT 1000u /* iterations discarded before the first keystream value */

/* r in [3.99, 4) and x0 in (0, 1) from 16 bytes each of a 32-byte subkey: the top 53 bits of a
 * little-endian word as a fraction, x0 offset by half a step so it is never 0. */
static void logistic_params(const uint8_t sub[32], double *r, double *x0)
{
    const double u = (double)(dcmci_load64le(sub) >> 11) * 0x1p-53;
    *r = 3.99 + 0.01 * u;
    *x0 = ((double)(dcmci_load64le(sub + 16) >> 11) + 0.5) * 0x1p-53;
}

dcmc_status dcmc_paper_xor(const dcmc_key *key, const uint8_t nonce[DCMC_NONCE_BYTES],
                           unsigned bits, uint32_t *v, size_t n)
{
    if (!key || !nonce || (!v && n) || bits < 1 || bits > 16)
        return DCMC_ERR_ARG;
    uint8_t sub[32];
    const dcmc_status st = dcmci_research_subkey(key, nonce, "paper-logistic", sub);
    if (st == DCMC_OK) {
        double r, x;
        logistic_params(sub, &r, &x);
        for (unsigned i = 0; i < PAPER_TRANSIENT; i++)
            x = r * x * (1 - x);
        const double scale = (double)(1u << bits);
        const uint32_t mask = (1u << bits) - 1;
        for (size_t i = 0; i < n; i++) {
            x = r * x * (1 - x);
            v[i] ^= (uint32_t)(x * scale) & mask; /* x in (0, 1): floor, then mod 2^bits */
        }
        r = x = 0;
        dcmc_wipe(&r, sizeof r);
        dcmc_wipe(&x, sizeof x);
    }
    dcmc_wipe(sub, sizeof sub);
    return st;
}

/* The frame's values (one sample, 1..16 bits) in v (n values), signed ones shifted up. */
static dcmc_status frame_in(const dcmc_paper_model *m, const dcmc_layout *l, const uint8_t *frame,
                            size_t bytes, uint32_t **v, float **f)
{
    *v = NULL;
    *f = NULL;
    size_t fb, n;
    if (!m || !frame)
        return DCMC_ERR_ARG;
    dcmc_status st = dcmc_layout_frame_bytes(l, &fb);
    if (st != DCMC_OK)
        return st;
    if (l->samples != 1 || l->bits_stored > 16 || l->bits_allocated < 8)
        return DCMC_ERR_UNSUPPORTED;
    if (bytes != fb)
        return bytes < fb ? DCMC_ERR_TRUNCATED : DCMC_ERR_ARG;
    n = (size_t)l->rows * l->cols;
    *v = malloc(n * sizeof **v);
    *f = malloc(n * sizeof **f);
    if (!*v || !*f) {
        free(*v);
        free(*f);
        *v = NULL;
        *f = NULL;
        return DCMC_ERR_NOMEM;
    }
    dcmci_frame_values(l, n, frame, *v);
    if (l->is_signed)
        for (size_t i = 0; i < n; i++)
            (*v)[i] ^= 1u << (l->bits_stored - 1);
    return DCMC_OK;
}

/* v back into the frame (signed values shifted down); frees v and f. */
static void frame_out(const dcmc_layout *l, uint32_t *v, float *f, uint8_t *frame, size_t bytes)
{
    const size_t n = (size_t)l->rows * l->cols;
    if (l->is_signed)
        for (size_t i = 0; i < n; i++)
            v[i] ^= 1u << (l->bits_stored - 1);
    dcmci_frame_words(l, n, v, frame, bytes);
    free(v);
    free(f);
}

/* One network on the values v / L, its output rounded back to v: round half to even, as
 * PyTorch's torch.round (nearbyint in the default rounding mode), clamped to 0..L. */
static dcmc_status network(const dcmc_paper_model *m, int decoder, const dcmc_layout *l,
                           uint32_t *v, float *f)
{
    const size_t n = (size_t)l->rows * l->cols;
    const double L = (double)((1u << l->bits_stored) - 1);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)(v[i] / L);
    const dcmc_status st = dcmc_paper_forward(m, decoder, l->rows, l->cols, f, f, 0);
    for (size_t i = 0; st == DCMC_OK && i < n; i++)
        v[i] = (uint32_t)fmin(fmax(nearbyint((double)f[i] * L), 0), L);
    return st;
}

/* Encryption: E, quantise, XOR. Decryption: XOR, D, round. */
static dcmc_status paper_run(const dcmc_paper_model *m, const dcmc_key *key,
                             const uint8_t nonce[DCMC_NONCE_BYTES], const dcmc_layout *layout,
                             uint8_t *frame, size_t bytes, int decrypt)
{
    uint32_t *v;
    float *f;
    if (!key || !nonce || !layout)
        return DCMC_ERR_ARG;
    dcmc_status st = frame_in(m, layout, frame, bytes, &v, &f);
    if (st != DCMC_OK)
        return st;
    const size_t n = (size_t)layout->rows * layout->cols;
    if (!decrypt)
        st = network(m, 0, layout, v, f);
    if (st == DCMC_OK)
        st = dcmc_paper_xor(key, nonce, layout->bits_stored, v, n);
    if (st == DCMC_OK && decrypt)
        st = network(m, 1, layout, v, f);
    if (st == DCMC_OK) {
        frame_out(layout, v, f, frame, bytes);
        return DCMC_OK;
    }
    dcmc_free(v, n * sizeof *v); /* the keystream may be XORed into v */
    free(f);
    return st;
}

dcmc_status dcmc_paper_encrypt(const dcmc_paper_model *m, const dcmc_key *key,
                               const uint8_t nonce[DCMC_NONCE_BYTES], const dcmc_layout *layout,
                               uint8_t *frame, size_t bytes)
{
    return paper_run(m, key, nonce, layout, frame, bytes, 0);
}

dcmc_status dcmc_paper_decrypt(const dcmc_paper_model *m, const dcmc_key *key,
                               const uint8_t nonce[DCMC_NONCE_BYTES], const dcmc_layout *layout,
                               uint8_t *frame, size_t bytes)
{
    return paper_run(m, key, nonce, layout, frame, bytes, 1);
}
