/*
 * image.c - the image-level cipher: header, key check value, encrypted payload (protected
 * attributes and non-canonical bits), every frame, and the encrypt-then-MAC tag over all of it
 * (docs/format.md sections 10-12). Decryption checks key and MAC before releasing any plaintext.
 */
#include <stdlib.h>
#include <string.h>

#include "cipher/internal.h"

void dcmc_options_default(dcmc_options *opt)
{
    if (opt == NULL)
        return;
    memset(opt, 0, sizeof *opt);
    dcmc_preset_by_id(DCMC_PRESET_AT_RESNET_CM, &opt->preset);
    opt->flags = DCMC_FLAG_STANDARD_LAYER;
}

static dcmc_status kcv_compute(const uint8_t prk[32], uint8_t kcv[DCMC_KCV_BYTES])
{
    uint8_t k[32];
    dcmc_status st = dcmci_subkey(prk, "kcv", 0, k);
    memcpy(kcv, k, DCMC_KCV_BYTES);
    dcmc_wipe(k, sizeof k);
    return st;
}

static dcmc_status mac_compute(const uint8_t prk[32], const dcmc_header *h, const uint8_t *payload,
                               size_t payload_len, const uint8_t *pixels, size_t pixels_len,
                               uint8_t mac[DCMC_MAC_BYTES])
{
    uint8_t key[32], hb[DCMC_HEADER_BYTES];
    dcmci_mac m;
    dcmc_status st = dcmci_subkey(prk, "mac", 0, key);
    if (st == DCMC_OK)
        st = dcmc_header_write(h, hb);
    if (st == DCMC_OK)
        st = dcmci_mac_init(&m, key);
    dcmc_wipe(key, sizeof key);
    if (st != DCMC_OK)
        return st;
    /* The frames are stored back to back, so hashing the buffer hashes frame after frame. */
    if ((st = dcmci_mac_update(&m, hb, 96)) != DCMC_OK ||
        (st = dcmci_mac_update(&m, payload, payload_len)) != DCMC_OK ||
        (st = dcmci_mac_update(&m, pixels, pixels_len)) != DCMC_OK) {
        dcmci_mac_abort(&m);
        return st;
    }
    return dcmci_mac_final(&m, mac);
}

static dcmc_status payload_crypt(const uint8_t prk[32], uint8_t *buf, size_t n)
{
    uint8_t key[32];
    dcmc_status st = dcmci_subkey(prk, "payload", 0, key);
    if (st == DCMC_OK)
        st = dcmci_chacha20_xor(key, buf, n);
    dcmc_wipe(key, sizeof key);
    return st;
}

/* Validate an image description; returns the frame size. */
static dcmc_status image_bytes(const dcmc_layout *layout, uint32_t frames, size_t pixels_len,
                               size_t *fb)
{
    dcmc_status st = dcmc_layout_frame_bytes(layout, fb);
    if (st != DCMC_OK)
        return st;
    size_t total;
    if (frames == 0)
        return DCMC_ERR_LAYOUT;
    if (!dcmci_mul_size(*fb, frames, &total))
        return DCMC_ERR_OVERFLOW;
    if (pixels_len != total)
        return pixels_len < total ? DCMC_ERR_TRUNCATED : DCMC_ERR_LAYOUT;
    return DCMC_OK;
}

/* The header of a new encryption: version, flags, preset, KDF, a fresh nonce (or the given one,
 * for tests and known answers), layout and frame count. */
static dcmc_status header_init(dcmc_header *h, const dcmc_options *opt, const dcmc_kdf *kdf,
                               const dcmc_layout *layout, uint32_t frames)
{
    memset(h, 0, sizeof *h);
    h->version = DCMC_FORMAT_VERSION;
    h->flags = opt->flags;
    if (h->flags & ~DCMC_FLAG_STANDARD_LAYER)
        return DCMC_ERR_ARG;
    h->preset = opt->preset;
    if (h->preset.id == 0)
        dcmc_preset_by_id(DCMC_PRESET_AT_RESNET_CM, &h->preset);
    dcmc_status st = dcmc_preset_check(&h->preset);
    if (st != DCMC_OK)
        return st;
    if (kdf)
        h->kdf = *kdf;
    if (opt->nonce)
        memcpy(h->nonce, opt->nonce, DCMC_NONCE_BYTES);
    else if ((st = dcmci_random(h->nonce, DCMC_NONCE_BYTES)) != DCMC_OK)
        return st;
    h->layout = *layout;
    h->frames = frames;
    return DCMC_OK;
}

/* The plaintext payload (section 10): LE32 attrs_len | attrs | residue flag | residue, where the
 * residue (the non-canonical bits of every frame) is there only if some bit is non-canonical. */
static dcmc_status payload_build(const dcmc_layout *layout, uint32_t frames, size_t fb,
                                 const uint8_t *pixels, size_t pixels_len, const uint8_t *attrs,
                                 size_t attrs_len, uint8_t **payload, size_t *payload_len)
{
    int residue = 0;
    for (uint32_t f = 0; f < frames && !residue; f++)
        residue = dcmci_frame_residue(layout, pixels + (size_t)f * fb, NULL);
    size_t plen = 5 + attrs_len;
    if (residue && !dcmci_add_size(plen, pixels_len, &plen))
        return DCMC_ERR_OVERFLOW;
    uint8_t *pl = malloc(plen);
    if (pl == NULL)
        return DCMC_ERR_NOMEM;
    dcmci_store32le(pl, (uint32_t)attrs_len);
    if (attrs_len)
        memcpy(pl + 4, attrs, attrs_len);
    pl[4 + attrs_len] = (uint8_t)residue;
    uint8_t *res = pl + 5 + attrs_len;
    if (residue)
        for (uint32_t f = 0; f < frames; f++)
            dcmci_frame_residue(layout, pixels + (size_t)f * fb, res + (size_t)f * fb);
    *payload = pl;
    *payload_len = plen;
    return DCMC_OK;
}

/* ---- every frame of an image ---- */

/* Frames are independent (each is keyed by its index), so an image of several frames is cut
 * across frames: every worker runs its own frame cipher on one thread and takes the next frame
 * when it is done, with no barrier inside a frame (on a busy machine a barrier waits for the
 * slowest thread's time slice). A worker's frame cipher holds about 40 bytes per pixel, so frames
 * above FRAMES_APART_MAX_VALUES values go one at a time with every thread on each instead. */
#define FRAMES_APART_MAX_VALUES ((size_t)1 << 22)

typedef struct frames_job {
    const dcmc_key *key;
    const dcmc_header *hdr;
    uint8_t *pixels;
    size_t fb;
    int decrypt;
    const uint8_t *residue; /* decryption: NULL, or fb bytes per frame to XOR back */
} frames_job;

static dcmc_status frame_one(dcmc_frame_cipher *fc, const frames_job *j, uint32_t f)
{
    uint8_t *fp = j->pixels + (size_t)f * j->fb;
    dcmc_status st = j->decrypt ? dcmc_frame_decrypt(fc, f, fp, fp, j->fb)
                                : dcmc_frame_encrypt(fc, f, fp, fp, j->fb);
    if (st == DCMC_OK && j->residue)
        dcmci_frame_residue_apply(&j->hdr->layout, fp, j->residue + (size_t)f * j->fb);
    return st;
}

static dcmc_status frames_run(const frames_job *j, int threads)
{
    const int t = dcmci_threads_resolve(threads);
    const uint32_t frames = j->hdr->frames;
    const dcmc_layout *l = &j->hdr->layout;
    const size_t values = (size_t)l->rows * l->cols * l->samples;
    const int workers = t < 2 || frames < 2 || values > FRAMES_APART_MAX_VALUES ? 1
                        : frames < (uint32_t)t                               ? (int)frames
                                                                             : t;
    dcmc_status st = DCMC_OK;
    if (workers == 1) {
        dcmc_frame_cipher *fc = NULL;
        st = dcmc_frame_cipher_new(&fc, j->key, j->hdr, t);
        for (uint32_t f = 0; st == DCMC_OK && f < frames; f++)
            st = frame_one(fc, j, f);
        dcmc_frame_cipher_free(fc);
        return st;
    }
#pragma omp parallel num_threads(workers)
    {
        dcmc_frame_cipher *fc = NULL;
        dcmc_status mine = dcmc_frame_cipher_new(&fc, j->key, j->hdr, 1);
#pragma omp for schedule(dynamic, 1)
        for (int64_t f = 0; f < (int64_t)frames; f++) {
            if (mine == DCMC_OK)
                mine = frame_one(fc, j, (uint32_t)f);
        }
        dcmc_frame_cipher_free(fc);
        if (mine != DCMC_OK) {
#pragma omp critical(dcmci_frames_status)
            if (st == DCMC_OK)
                st = mine;
        }
    }
    return st;
}

dcmc_status dcmc_image_encrypt(const dcmc_key *key, const dcmc_kdf *kdf, const dcmc_options *opt,
                               const dcmc_layout *layout, uint32_t frames, uint8_t *pixels,
                               size_t pixels_len, const uint8_t *attrs, size_t attrs_len,
                               dcmc_header *hdr, uint8_t **payload, size_t *payload_len)
{
    if (hdr)
        memset(hdr, 0, sizeof *hdr);
    if (payload)
        *payload = NULL;
    if (payload_len)
        *payload_len = 0;
    if (key == NULL || layout == NULL || pixels == NULL || hdr == NULL || payload == NULL ||
        payload_len == NULL || (attrs == NULL && attrs_len != 0))
        return DCMC_ERR_ARG;
    if (attrs_len > UINT32_MAX)
        return DCMC_ERR_OVERFLOW;
    dcmc_options defaults;
    if (opt == NULL) {
        dcmc_options_default(&defaults);
        opt = &defaults;
    }
    size_t fb;
    dcmc_status st = image_bytes(layout, frames, pixels_len, &fb);
    if (st != DCMC_OK)
        return st;

    dcmc_header h;
    uint8_t *pl = NULL;
    size_t plen = 0;
    if ((st = header_init(&h, opt, kdf, layout, frames)) != DCMC_OK ||
        (st = payload_build(layout, frames, fb, pixels, pixels_len, attrs, attrs_len, &pl,
                            &plen)) != DCMC_OK)
        return st;
    h.payload_bytes = plen;

    uint8_t prk[32];
    const frames_job job = {key, &h, pixels, fb, 0, NULL};
    if ((st = dcmci_prk_derive(key, h.nonce, prk)) != DCMC_OK ||
        (st = kcv_compute(prk, h.kcv)) != DCMC_OK ||
        (st = payload_crypt(prk, pl, plen)) != DCMC_OK ||
        (st = frames_run(&job, opt->threads)) != DCMC_OK ||
        (st = mac_compute(prk, &h, pl, plen, pixels, pixels_len, h.mac)) != DCMC_OK)
        goto fail;
    dcmc_wipe(prk, sizeof prk);
    *hdr = h;
    *payload = pl;
    *payload_len = plen;
    return DCMC_OK;
fail:
    dcmc_wipe(prk, sizeof prk);
    dcmc_free(pl, plen);
    return st;
}

static dcmc_status check_key(const dcmc_key *key, const dcmc_header *hdr, uint8_t prk[32])
{
    uint8_t kcv[DCMC_KCV_BYTES];
    dcmc_status st = dcmci_prk_derive(key, hdr->nonce, prk);
    if (st == DCMC_OK)
        st = kcv_compute(prk, kcv);
    if (st == DCMC_OK && !dcmci_ct_equal(kcv, hdr->kcv, DCMC_KCV_BYTES))
        st = DCMC_ERR_WRONG_KEY;
    return st;
}

dcmc_status dcmc_key_check(const dcmc_key *key, const dcmc_header *hdr)
{
    if (key == NULL || hdr == NULL)
        return DCMC_ERR_ARG;
    uint8_t prk[32];
    dcmc_status st = check_key(key, hdr, prk);
    dcmc_wipe(prk, sizeof prk);
    return st;
}

/* What decryption checks before it touches anything: sizes, preset, key check value, MAC.
 * On DCMC_OK prk holds the file's pseudo-random key (the caller wipes it). */
static dcmc_status authenticate(const dcmc_key *key, const dcmc_header *hdr,
                                const uint8_t *pixels, size_t pixels_len, const uint8_t *payload,
                                size_t payload_len, size_t *frame_bytes, uint8_t prk[32])
{
    dcmc_status st = image_bytes(&hdr->layout, hdr->frames, pixels_len, frame_bytes);
    if (st != DCMC_OK)
        return st;
    if ((st = dcmc_preset_check(&hdr->preset)) != DCMC_OK)
        return st;
    if (payload_len != hdr->payload_bytes || payload_len < 5)
        return payload_len < hdr->payload_bytes ? DCMC_ERR_TRUNCATED : DCMC_ERR_FORMAT;
    uint8_t mac[DCMC_MAC_BYTES];
    if ((st = check_key(key, hdr, prk)) != DCMC_OK)
        return st;
    if ((st = mac_compute(prk, hdr, payload, payload_len, pixels, pixels_len, mac)) != DCMC_OK)
        return st;
    return dcmci_ct_equal(mac, hdr->mac, DCMC_MAC_BYTES) ? DCMC_OK : DCMC_ERR_INTEGRITY;
}

dcmc_status dcmc_image_verify(const dcmc_key *key, const dcmc_header *hdr,
                              const uint8_t *pixels, size_t pixels_len, const uint8_t *payload,
                              size_t payload_len)
{
    if (key == NULL || hdr == NULL || pixels == NULL || payload == NULL)
        return DCMC_ERR_ARG;
    uint8_t prk[32];
    size_t fb;
    dcmc_status st = authenticate(key, hdr, pixels, pixels_len, payload, payload_len, &fb, prk);
    dcmc_wipe(prk, sizeof prk);
    return st;
}

/* After authenticate(): the payload decrypted into a new buffer *pl (payload_len bytes, the
 * caller releases it with dcmc_free), checked for a well-formed attrs length and residue flag. */
static dcmc_status open_payload(const uint8_t prk[32], const uint8_t *payload, size_t payload_len,
                                size_t pixels_len, uint8_t **pl_out, size_t *alen_out)
{
    uint8_t *pl = malloc(payload_len);
    if (pl == NULL)
        return DCMC_ERR_NOMEM;
    memcpy(pl, payload, payload_len);
    dcmc_status st = payload_crypt(prk, pl, payload_len);
    /* Authenticated from here on; the checks below only catch a faulty encoder. */
    size_t alen = st == DCMC_OK ? dcmci_load32le(pl) : 0;
    if (st == DCMC_OK && (alen > payload_len - 5 || pl[4 + alen] > 1))
        st = DCMC_ERR_FORMAT;
    if (st == DCMC_OK && payload_len - 5 - alen != (pl[4 + alen] ? pixels_len : 0))
        st = DCMC_ERR_FORMAT;
    if (st != DCMC_OK) {
        dcmc_free(pl, payload_len);
        return st;
    }
    *pl_out = pl;
    *alen_out = alen;
    return DCMC_OK;
}

/* A copy of the attrs bytes of a decrypted payload (malloc'd; at least one byte). */
static dcmc_status copy_attrs(const uint8_t *pl, size_t alen, uint8_t **attrs, size_t *attrs_len)
{
    uint8_t *out = malloc(alen ? alen : 1);
    if (out == NULL)
        return DCMC_ERR_NOMEM;
    memcpy(out, pl + 4, alen);
    *attrs = out;
    *attrs_len = alen;
    return DCMC_OK;
}

dcmc_status dcmc_image_open_attrs(const dcmc_key *key, const dcmc_header *hdr,
                                  const uint8_t *pixels, size_t pixels_len, const uint8_t *payload,
                                  size_t payload_len, uint8_t **attrs, size_t *attrs_len)
{
    if (attrs)
        *attrs = NULL;
    if (attrs_len)
        *attrs_len = 0;
    if (key == NULL || hdr == NULL || pixels == NULL || payload == NULL || attrs == NULL ||
        attrs_len == NULL)
        return DCMC_ERR_ARG;
    uint8_t prk[32];
    size_t fb, alen = 0;
    uint8_t *pl = NULL;
    dcmc_status st = authenticate(key, hdr, pixels, pixels_len, payload, payload_len, &fb, prk);
    if (st == DCMC_OK)
        st = open_payload(prk, payload, payload_len, pixels_len, &pl, &alen);
    dcmc_wipe(prk, sizeof prk);
    if (st == DCMC_OK)
        st = copy_attrs(pl, alen, attrs, attrs_len);
    dcmc_free(pl, payload_len);
    return st;
}

dcmc_status dcmc_image_decrypt(const dcmc_key *key, const dcmc_header *hdr, int threads,
                               uint8_t *pixels, size_t pixels_len, const uint8_t *payload,
                               size_t payload_len, uint8_t **attrs, size_t *attrs_len)
{
    if (attrs)
        *attrs = NULL;
    if (attrs_len)
        *attrs_len = 0;
    if (key == NULL || hdr == NULL || pixels == NULL || payload == NULL || attrs == NULL ||
        attrs_len == NULL)
        return DCMC_ERR_ARG;
    size_t fb;
    uint8_t prk[32];
    uint8_t *pl = NULL, *out_attrs = NULL;
    size_t alen = 0, olen = 0;
    dcmc_status st = authenticate(key, hdr, pixels, pixels_len, payload, payload_len, &fb, prk);
    if (st == DCMC_OK)
        st = open_payload(prk, payload, payload_len, pixels_len, &pl, &alen);
    if (st == DCMC_OK)
        st = copy_attrs(pl, alen, &out_attrs, &olen);
    if (st == DCMC_OK) {
        const frames_job job = {key, hdr, pixels, fb, 1, pl[4 + alen] ? pl + 5 + alen : NULL};
        st = frames_run(&job, threads);
    }
    if (st == DCMC_OK) {
        *attrs = out_attrs;
        *attrs_len = olen;
        out_attrs = NULL;
    }
    dcmc_wipe(prk, sizeof prk);
    dcmc_free(pl, payload_len);
    dcmc_free(out_attrs, olen);
    return st;
}
