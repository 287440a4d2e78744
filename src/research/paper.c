/*
 * paper.c - the paper's trained networks as a weight file describes them
 * (research/paper/README.md, "Weight file"): read, checked to the last byte before any weight is
 * used (magic, version, size against N, SHA-256, flag and shapes, N against the shapes, finite
 * values), convolutions rearranged for the channels-last kernel. Public data, not key material.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/util.h"
#include "research/paper_internal.h"

#define HEADER_BYTES 40u
#define DIGEST_BYTES 32u
#define MAX_VALUES (1u << 26) /* 256 MB of weights: far beyond any model trained in minutes */

static const char k_magic[8] = {'D', 'C', 'M', 'C', 'P', 'A', 'P', 'R'};

/* The number of f32 values of one network with these shapes (README: "Per network"). */
static size_t net_values(unsigned A, size_t F, size_t B, size_t r, size_t k)
{
    const size_t block = 18 * F * F + 2 * F + (A ? 2 * F * F / r + F / r + F + 2 * k * k + 1 : 0);
    return 19 * F + 1 + B * block;
}

/* Header fields 1..8 (u32 after the magic) into m; the status of what they say. */
static dcmc_status check_shapes(dcmc_paper_model *m, const uint8_t *hdr, uint32_t *n)
{
    m->attention = dcmci_load32le(hdr + 12);
    m->F = dcmci_load32le(hdr + 16);
    m->B = dcmci_load32le(hdr + 20);
    m->r = dcmci_load32le(hdr + 24);
    m->k = dcmci_load32le(hdr + 28);
    m->bits = dcmci_load32le(hdr + 32);
    *n = dcmci_load32le(hdr + 36);
    if (m->attention > 1 || m->F < 1 || m->F > DCMCI_PAPER_MAX_F || m->B > 64 || m->r < 1 ||
        m->F % m->r != 0 || m->k % 2 == 0 || m->k > DCMCI_PAPER_MAX_K || m->bits < 1 ||
        m->bits > 16)
        return DCMC_ERR_FORMAT;
    if ((size_t)*n != 2 * net_values(m->attention, m->F, m->B, m->r, m->k))
        return DCMC_ERR_FORMAT;
    return DCMC_OK;
}

/* Read path whole: the header, then exactly 4N + 32 bytes and nothing after them. */
static dcmc_status read_file(const char *path, uint8_t **out, size_t *len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return DCMC_ERR_IO;
    uint8_t hdr[HEADER_BYTES] = {0}; /* a short file leaves zeros, never garbage */
    const size_t got = fread(hdr, 1, sizeof hdr, f);
    dcmc_status st = DCMC_OK;
    if (memcmp(hdr, k_magic, got < 8 ? got : 8) != 0)
        st = DCMC_ERR_FORMAT;
    else if (got < sizeof hdr)
        st = ferror(f) ? DCMC_ERR_IO : DCMC_ERR_TRUNCATED;
    else if (dcmci_load32le(hdr + 8) != DCMC_PAPER_WEIGHTS_VERSION)
        st = DCMC_ERR_UNSUPPORTED;
    if (st == DCMC_OK && dcmci_load32le(hdr + 36) > MAX_VALUES)
        st = DCMC_ERR_FORMAT; /* N beyond any model: refused before allocating for it */
    const size_t total = HEADER_BYTES + 4 * (size_t)dcmci_load32le(hdr + 36) + DIGEST_BYTES;
    uint8_t *buf = st == DCMC_OK ? malloc(total) : NULL;
    if (st == DCMC_OK && !buf)
        st = DCMC_ERR_NOMEM;
    if (st == DCMC_OK) {
        memcpy(buf, hdr, HEADER_BYTES);
        const size_t rest = fread(buf + HEADER_BYTES, 1, total - HEADER_BYTES, f);
        if (rest < total - HEADER_BYTES)
            st = ferror(f) ? DCMC_ERR_IO : DCMC_ERR_TRUNCATED;
        else if (fgetc(f) != EOF)
            st = DCMC_ERR_FORMAT; /* longer than N says */
    }
    fclose(f);
    if (st != DCMC_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = total;
    return DCMC_OK;
}

static dcmc_status digest_ok(const uint8_t *buf, size_t len)
{
    uint8_t md[DIGEST_BYTES];
    unsigned mdlen = 0;
    if (EVP_Digest(buf, len - DIGEST_BYTES, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != DIGEST_BYTES)
        return DCMC_ERR_CRYPTO;
    return memcmp(md, buf + len - DIGEST_BYTES, DIGEST_BYTES) == 0 ? DCMC_OK : DCMC_ERR_INTEGRITY;
}

/* The next tensor of O I K K values from the file's f32 array src into dst at *pos; a K x K
 * convolution [O][I][K][K] goes in as [K][K][I][O] (vectors, K = 1 and I = 1, as they are). */
static const float *take(const uint8_t *src, float *dst, size_t *pos, size_t O, size_t I,
                         size_t K)
{
    const size_t count = O * I * K * K;
    float *t = dst + *pos;
    for (size_t o = 0; o < O; o++)
        for (size_t c = 0; c < I; c++)
            for (size_t ij = 0; ij < K * K; ij++) {
                const uint32_t u = dcmci_load32le(src + 4 * (*pos + (o * I + c) * K * K + ij));
                float v;
                memcpy(&v, &u, sizeof v);
                t[(ij * I + c) * O + o] = v;
            }
    *pos += count;
    return t;
}

/* One network's tensors in the file's order (README: "Tensor order"). */
static dcmc_status take_net(dcmc_paper_model *m, const uint8_t *src, size_t *pos,
                            dcmci_paper_net *n)
{
    const size_t F = m->F, h = m->F / m->r;
    if (!(n->blocks = calloc(m->B ? m->B : 1, sizeof *n->blocks)))
        return DCMC_ERR_NOMEM;
    n->stem_w = take(src, m->w, pos, F, 1, 3);
    n->stem_b = take(src, m->w, pos, F, 1, 1);
    for (unsigned b = 0; b < m->B; b++) {
        dcmci_paper_block *k = &n->blocks[b];
        k->c1w = take(src, m->w, pos, F, F, 3);
        k->c1b = take(src, m->w, pos, F, 1, 1);
        k->c2w = take(src, m->w, pos, F, F, 3);
        k->c2b = take(src, m->w, pos, F, 1, 1);
        if (m->attention) {
            k->fc1w = take(src, m->w, pos, h * F, 1, 1);
            k->fc1b = take(src, m->w, pos, h, 1, 1);
            k->fc2w = take(src, m->w, pos, F * h, 1, 1);
            k->fc2b = take(src, m->w, pos, F, 1, 1);
            k->sw = take(src, m->w, pos, 1, 2, m->k);
            k->sb = take(src, m->w, pos, 1, 1, 1);
        }
    }
    n->head_w = take(src, m->w, pos, 1, F, 3);
    n->head_b = take(src, m->w, pos, 1, 1, 1);
    return DCMC_OK;
}

dcmc_status dcmc_paper_model_load(const char *path, dcmc_paper_model **out)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return DCMC_ERR_ARG;
    uint8_t *buf = NULL;
    size_t len = 0;
    dcmc_status st = read_file(path, &buf, &len);
    if (st != DCMC_OK)
        return st;
    dcmc_paper_model *m = calloc(1, sizeof *m);
    uint32_t n = 0;
    if (!m)
        st = DCMC_ERR_NOMEM;
    if (st == DCMC_OK)
        st = digest_ok(buf, len);
    if (st == DCMC_OK)
        st = check_shapes(m, buf, &n);
    if (st == DCMC_OK && !(m->w = malloc((size_t)n * sizeof *m->w)))
        st = DCMC_ERR_NOMEM;
    size_t pos = 0;
    for (int d = 0; d < 2 && st == DCMC_OK; d++)
        st = take_net(m, buf + HEADER_BYTES, &pos, &m->net[d]);
    for (size_t i = 0; st == DCMC_OK && i < n; i++)
        if (!isfinite(m->w[i]))
            st = DCMC_ERR_FORMAT;
    free(buf);
    if (st != DCMC_OK) {
        dcmc_paper_model_free(m);
        return st;
    }
    m->nw = n;
    *out = m;
    return DCMC_OK;
}

void dcmc_paper_model_free(dcmc_paper_model *m)
{
    if (!m)
        return;
    free(m->net[0].blocks);
    free(m->net[1].blocks);
    free(m->w);
    free(m);
}

int dcmc_paper_model_attention(const dcmc_paper_model *m)
{
    return m ? (int)m->attention : 0;
}

unsigned dcmc_paper_model_bits(const dcmc_paper_model *m)
{
    return m ? m->bits : 0;
}
