/*
 * header.c - the 128-byte container-neutral header (docs/format.md section 11) and the pixel
 * layout rules of section 2. Everything read here is untrusted: every field is range-checked.
 */
#include <string.h>

#include "core/util.h"

static const uint8_t k_magic[8] = {'D', 'C', 'M', 'C', 'R', 'Y', 'P', 'T'};

dcmc_status dcmc_layout_check(const dcmc_layout *l)
{
    if (l == NULL)
        return DCMC_ERR_ARG;
    if (l->rows < 1 || l->cols < 1 || l->rows > 65535 || l->cols > 65535)
        return DCMC_ERR_LAYOUT;
    if ((l->samples != 1 && l->samples != 3) || l->planar > 1 || l->is_signed > 1)
        return DCMC_ERR_LAYOUT;
    if (l->bits_allocated != 1 && l->bits_allocated != 8 && l->bits_allocated != 16 &&
        l->bits_allocated != 32)
        return DCMC_ERR_LAYOUT;
    if (l->bits_stored < 1 || l->bits_stored > l->bits_allocated)
        return DCMC_ERR_LAYOUT;
    if (l->high_bit < l->bits_stored - 1 || l->high_bit >= l->bits_allocated)
        return DCMC_ERR_LAYOUT;
    /* L = rows*cols*samples < 2^32: at most 65535^2*3, which fits 64 bits; check against 32. */
    uint64_t n = (uint64_t)l->rows * l->cols * l->samples;
    if (n >= ((uint64_t)1 << 32))
        return DCMC_ERR_OVERFLOW;
    return DCMC_OK;
}

dcmc_status dcmc_layout_frame_bytes(const dcmc_layout *l, size_t *bytes)
{
    if (bytes == NULL)
        return DCMC_ERR_ARG;
    *bytes = 0;
    dcmc_status st = dcmc_layout_check(l);
    if (st != DCMC_OK)
        return st;
    size_t n = (size_t)l->rows * l->cols * l->samples, b;
    if (l->bits_allocated == 1)
        b = n / 8 + (n % 8 != 0);
    else if (!dcmci_mul_size(n, l->bits_allocated / 8, &b))
        return DCMC_ERR_OVERFLOW;
    *bytes = b;
    return DCMC_OK;
}

static dcmc_status kdf_check(const dcmc_kdf *k)
{
    if (k->id == DCMC_KDF_NONE) {
        if (k->log2_n || k->r || k->p)
            return DCMC_ERR_FORMAT;
        for (size_t i = 0; i < DCMC_SALT_BYTES; i++)
            if (k->salt[i])
                return DCMC_ERR_FORMAT;
        return DCMC_OK;
    }
    if (k->id != DCMC_KDF_SCRYPT)
        return DCMC_ERR_UNSUPPORTED;
    if (k->log2_n < 10 || k->log2_n > 22 || k->r < 1 || k->r > 32 || k->p < 1 || k->p > 16)
        return DCMC_ERR_FORMAT;
    return DCMC_OK;
}

dcmc_status dcmc_header_write(const dcmc_header *h, uint8_t out[DCMC_HEADER_BYTES])
{
    if (h == NULL || out == NULL)
        return DCMC_ERR_ARG;
    memset(out, 0, DCMC_HEADER_BYTES);
    if (h->layout.rows > 65535 || h->layout.cols > 65535)
        return DCMC_ERR_LAYOUT;
    memcpy(out, k_magic, 8);
    dcmci_store32le(out + 8, h->version);
    dcmci_store32le(out + 12, h->flags);
    const dcmc_preset *p = &h->preset;
    const uint8_t pr[11] = {p->id, p->channels, p->blocks, p->rounds, p->attention, p->ca_reduction,
                            p->sa_kernel, p->shift_stem, p->shift_conv, p->shift_ca, p->shift_sa};
    memcpy(out + 16, pr, sizeof pr);
    out[28] = h->kdf.id;
    out[29] = h->kdf.log2_n;
    out[30] = h->kdf.r;
    out[31] = h->kdf.p;
    memcpy(out + 32, h->kdf.salt, DCMC_SALT_BYTES);
    memcpy(out + 48, h->nonce, DCMC_NONCE_BYTES);
    memcpy(out + 64, h->kcv, DCMC_KCV_BYTES);
    out[72] = (uint8_t)h->layout.rows;
    out[73] = (uint8_t)(h->layout.rows >> 8);
    out[74] = (uint8_t)h->layout.cols;
    out[75] = (uint8_t)(h->layout.cols >> 8);
    out[76] = (uint8_t)h->layout.samples;
    out[77] = (uint8_t)h->layout.planar;
    out[78] = (uint8_t)h->layout.bits_allocated;
    out[79] = (uint8_t)h->layout.bits_stored;
    out[80] = (uint8_t)h->layout.high_bit;
    out[81] = (uint8_t)h->layout.is_signed;
    dcmci_store32le(out + 82, h->frames);
    dcmci_store64le(out + 86, h->payload_bytes);
    memcpy(out + 96, h->mac, DCMC_MAC_BYTES);
    return DCMC_OK;
}

dcmc_status dcmc_header_read(const uint8_t *in, size_t len, dcmc_header *h)
{
    if (h == NULL)
        return DCMC_ERR_ARG;
    memset(h, 0, sizeof *h);
    if (in == NULL)
        return DCMC_ERR_ARG;
    if (len < DCMC_HEADER_BYTES)
        return DCMC_ERR_TRUNCATED;
    if (len > DCMC_HEADER_BYTES || memcmp(in, k_magic, 8) != 0)
        return DCMC_ERR_FORMAT;
    dcmc_header t;
    memset(&t, 0, sizeof t);
    t.version = dcmci_load32le(in + 8);
    if (t.version != DCMC_FORMAT_VERSION)
        return DCMC_ERR_UNSUPPORTED;
    t.flags = dcmci_load32le(in + 12);
    if (t.flags & ~DCMC_FLAG_STANDARD_LAYER)
        return DCMC_ERR_FORMAT;
    if (in[27] != 0 || in[94] != 0 || in[95] != 0)
        return DCMC_ERR_FORMAT;
    dcmc_preset *p = &t.preset;
    p->id = in[16];
    p->channels = in[17];
    p->blocks = in[18];
    p->rounds = in[19];
    p->attention = in[20];
    p->ca_reduction = in[21];
    p->sa_kernel = in[22];
    p->shift_stem = in[23];
    p->shift_conv = in[24];
    p->shift_ca = in[25];
    p->shift_sa = in[26];
    dcmc_status st = dcmc_preset_check(p);
    if (st != DCMC_OK)
        return st;
    t.kdf.id = in[28];
    t.kdf.log2_n = in[29];
    t.kdf.r = in[30];
    t.kdf.p = in[31];
    memcpy(t.kdf.salt, in + 32, DCMC_SALT_BYTES);
    if ((st = kdf_check(&t.kdf)) != DCMC_OK)
        return st;
    memcpy(t.nonce, in + 48, DCMC_NONCE_BYTES);
    memcpy(t.kcv, in + 64, DCMC_KCV_BYTES);
    t.layout.rows = (uint32_t)in[72] | (uint32_t)in[73] << 8;
    t.layout.cols = (uint32_t)in[74] | (uint32_t)in[75] << 8;
    t.layout.samples = in[76];
    t.layout.planar = in[77];
    t.layout.bits_allocated = in[78];
    t.layout.bits_stored = in[79];
    t.layout.high_bit = in[80];
    t.layout.is_signed = in[81];
    if (dcmc_layout_check(&t.layout) != DCMC_OK)
        return DCMC_ERR_FORMAT;
    t.frames = dcmci_load32le(in + 82);
    t.payload_bytes = dcmci_load64le(in + 86);
    if (t.frames < 1 || t.payload_bytes < 5)
        return DCMC_ERR_FORMAT;
    memcpy(t.mac, in + 96, DCMC_MAC_BYTES);
    *h = t;
    return DCMC_OK;
}
