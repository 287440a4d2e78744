/*
 * image.c - the image-level cipher: header, key check value, encrypted payload (protected
 * attributes and non-canonical bits), every frame, and the encrypt-then-MAC tag over all of it
 * (docs/format.md sections 10-12). Decryption checks key and MAC before releasing any plaintext.
 * The same image cipher runs whole (dcmc_image_encrypt: every frame in memory) or as a stream
 * (dcmc_image_stream_*: a few frames at a time, for images larger than memory should hold).
 */
/* lint: long file: whole and streamed image cipher share static helpers, so they cannot drift */
#include <stdlib.h>
#include <string.h>

#ifdef DCMC_HAVE_OPENMP
#include <omp.h>
#endif

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

/* The HMAC of section 12 started: header bytes 0-95, then the payload; the frames follow. */
static dcmc_status mac_begin(const uint8_t prk[32], const dcmc_header *h, const uint8_t *payload,
                             size_t payload_len, dcmci_mac *m)
{
    uint8_t key[32], hb[DCMC_HEADER_BYTES];
    m->ctx = NULL;
    dcmc_status st = dcmci_subkey(prk, "mac", 0, key);
    if (st == DCMC_OK)
        st = dcmc_header_write(h, hb);
    if (st == DCMC_OK)
        st = dcmci_mac_init(m, key);
    dcmc_wipe(key, sizeof key);
    if (st != DCMC_OK)
        return st;
    if ((st = dcmci_mac_update(m, hb, 96)) != DCMC_OK ||
        (st = dcmci_mac_update(m, payload, payload_len)) != DCMC_OK)
        dcmci_mac_abort(m);
    return st;
}

static dcmc_status mac_compute(const uint8_t prk[32], const dcmc_header *h, const uint8_t *payload,
                               size_t payload_len, const uint8_t *pixels, size_t pixels_len,
                               uint8_t mac[DCMC_MAC_BYTES])
{
    dcmci_mac m;
    dcmc_status st = mac_begin(prk, h, payload, payload_len, &m);
    if (st != DCMC_OK)
        return st;
    /* The frames are stored back to back, so hashing the buffer hashes frame after frame. */
    if ((st = dcmci_mac_update(&m, pixels, pixels_len)) != DCMC_OK) {
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

/* A plaintext payload (section 10): LE32 attrs_len | attrs | residue flag, and room for
 * residue_len bytes of residue after it, which the caller fills. */
static dcmc_status payload_alloc(const uint8_t *attrs, size_t attrs_len, int residue,
                                 size_t residue_len, uint8_t **payload, size_t *payload_len)
{
    size_t plen = 5 + attrs_len;
    if (!dcmci_add_size(plen, residue_len, &plen))
        return DCMC_ERR_OVERFLOW;
    uint8_t *pl = malloc(plen);
    if (pl == NULL)
        return DCMC_ERR_NOMEM;
    dcmci_store32le(pl, (uint32_t)attrs_len);
    if (attrs_len)
        memcpy(pl + 4, attrs, attrs_len);
    pl[4 + attrs_len] = (uint8_t)residue;
    *payload = pl;
    *payload_len = plen;
    return DCMC_OK;
}

/* The plaintext payload of a whole image, where the residue (the non-canonical bits of every
 * frame) is there only if some bit is non-canonical. */
static dcmc_status payload_build(const dcmc_layout *layout, uint32_t frames, size_t fb,
                                 const uint8_t *pixels, size_t pixels_len, const uint8_t *attrs,
                                 size_t attrs_len, uint8_t **payload, size_t *payload_len)
{
    int residue = 0;
    for (uint32_t f = 0; f < frames && !residue; f++)
        residue = dcmci_frame_residue(layout, pixels + (size_t)f * fb, NULL);
    dcmc_status st = payload_alloc(attrs, attrs_len, residue, residue ? pixels_len : 0, payload,
                                   payload_len);
    if (st != DCMC_OK || !residue)
        return st;
    uint8_t *res = *payload + 5 + attrs_len;
    for (uint32_t f = 0; f < frames; f++)
        dcmci_frame_residue(layout, pixels + (size_t)f * fb, res + (size_t)f * fb);
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
    uint8_t *pixels; /* frames first .. first + count - 1, back to back */
    uint32_t first, count;
    size_t fb;
    int decrypt;
    const uint8_t *residue; /* decryption: NULL, or fb bytes per frame of the image to XOR back */
} frames_job;

/* How many workers run frames apart: 1 means one frame at a time with every thread on it. */
static int frames_workers(const dcmc_layout *l, uint32_t frames, int t)
{
    const size_t values = (size_t)l->rows * l->cols * l->samples;
    if (t < 2 || frames < 2 || values > FRAMES_APART_MAX_VALUES)
        return 1;
    return frames < (uint32_t)t ? (int)frames : t;
}

static dcmc_status frame_one(dcmc_frame_cipher *fc, const frames_job *j, uint32_t f)
{
    uint8_t *fp = j->pixels + (size_t)(f - j->first) * j->fb;
    dcmc_status st = j->decrypt ? dcmc_frame_decrypt(fc, f, fp, fp, j->fb)
                                : dcmc_frame_encrypt(fc, f, fp, fp, j->fb);
    if (st == DCMC_OK && j->residue)
        dcmci_frame_residue_apply(&j->hdr->layout, fp, j->residue + (size_t)f * j->fb);
    return st;
}

static int worker_index(void)
{
#ifdef DCMC_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The job's frames on `workers` workers (frames_workers), each with its frame cipher from `pool`
 * (made on first use, `t` threads when there is one worker, else one each; the caller frees
 * them), so that a stream pays for its networks' buffers once, not once per run. */
static dcmc_status frames_run(const frames_job *j, int t, int workers, dcmc_frame_cipher **pool)
{
    const int64_t end = (int64_t)j->first + j->count;
    dcmc_status st = DCMC_OK;
    if (workers == 1) {
        if (pool[0] == NULL)
            st = dcmc_frame_cipher_new(&pool[0], j->key, j->hdr, t);
        for (int64_t f = j->first; st == DCMC_OK && f < end; f++)
            st = frame_one(pool[0], j, (uint32_t)f);
        return st;
    }
#pragma omp parallel num_threads(workers)
    {
        dcmc_frame_cipher **fc = &pool[worker_index()];
        dcmc_status mine = *fc ? DCMC_OK : dcmc_frame_cipher_new(fc, j->key, j->hdr, 1);
#pragma omp for schedule(dynamic, 1)
        for (int64_t f = j->first; f < end; f++) {
            if (mine == DCMC_OK)
                mine = frame_one(*fc, j, (uint32_t)f);
        }
        if (mine != DCMC_OK) {
#pragma omp critical(dcmci_frames_status)
            if (st == DCMC_OK)
                st = mine;
        }
    }
    return st;
}

static void pool_free(dcmc_frame_cipher **pool, int n)
{
    if (pool == NULL)
        return;
    for (int i = 0; i < n; i++)
        dcmc_frame_cipher_free(pool[i]);
    free(pool);
}

/* Every frame of an image at once. */
static dcmc_status frames_all(const frames_job *j, int threads)
{
    const int t = dcmci_threads_resolve(threads);
    const int workers = frames_workers(&j->hdr->layout, j->hdr->frames, t);
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, one per worker */
    dcmc_frame_cipher **pool = calloc((size_t)workers, sizeof *pool);
    if (pool == NULL)
        return DCMC_ERR_NOMEM;
    dcmc_status st = frames_run(j, t, workers, pool);
    pool_free(pool, workers);
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
    const frames_job job = {key, &h, pixels, 0, frames, fb, 0, NULL};
    if ((st = dcmci_prk_derive(key, h.nonce, prk)) != DCMC_OK ||
        (st = kcv_compute(prk, h.kcv)) != DCMC_OK ||
        (st = payload_crypt(prk, pl, plen)) != DCMC_OK ||
        (st = frames_all(&job, opt->threads)) != DCMC_OK ||
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
        const frames_job job = {key, hdr, pixels, 0, hdr->frames, fb, 1,
                                pl[4 + alen] ? pl + 5 + alen : NULL};
        st = frames_all(&job, threads);
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

/* ---- the image as a stream of frames ---- */

/* Frames arrive a few at a time, in order, each run exactly as dcmc_image_encrypt and
 * dcmc_image_decrypt run it, and the MAC is fed frame after frame: the same header, payload and
 * cipher frames as the whole image gives. Decryption takes two passes over the cipher frames:
 * the first only authenticates, the second feeds them to the MAC again before decrypting, so
 * frames changed between the passes are caught at the end as well. */

enum { STREAM_FRAMES = 1, STREAM_VERIFY, STREAM_DECRYPT, STREAM_DONE, STREAM_FAILED };

struct dcmc_image_stream {
    int decrypt, state;
    dcmc_key key; /* the frame ciphers of the pool are made from it on first use */
    dcmc_header hdr;
    uint8_t prk[32];
    size_t fb, total;     /* bytes of one frame, of every frame */
    uint32_t next;        /* frames seen in this pass */
    int threads, workers; /* threads resolved; frames_workers */
    dcmc_frame_cipher **pool;
    dcmci_mac mac;    /* header | payload | the frames seen so far */
    uint8_t *payload; /* the payload ciphertext */
    size_t payload_len;
    uint8_t *plain; /* decryption, once authenticated: the payload's plaintext */
    size_t alen;
};

void dcmc_image_stream_free(dcmc_image_stream *s)
{
    if (s == NULL)
        return;
    dcmci_mac_abort(&s->mac);
    pool_free(s->pool, s->workers);
    dcmc_free(s->payload, s->payload_len);
    dcmc_free(s->plain, s->plain ? s->hdr.payload_bytes : 0);
    dcmc_wipe(s, sizeof *s);
    free(s);
}

/* A failed stream accepts nothing more. */
static dcmc_status stream_fail(dcmc_image_stream *s, dcmc_status st)
{
    s->state = STREAM_FAILED;
    dcmci_mac_abort(&s->mac);
    return st;
}

/* What both directions start with: sizes checked, the stream and its empty pool. */
static dcmc_status stream_alloc(dcmc_image_stream **out, const dcmc_key *key,
                                const dcmc_layout *l, uint32_t frames, int threads, int decrypt)
{
    size_t fb, total;
    dcmc_status st = dcmc_layout_frame_bytes(l, &fb);
    if (st != DCMC_OK)
        return st;
    if (frames == 0)
        return DCMC_ERR_LAYOUT;
    if (!dcmci_mul_size(fb, frames, &total))
        return DCMC_ERR_OVERFLOW;
    dcmc_image_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return DCMC_ERR_NOMEM;
    s->decrypt = decrypt;
    s->key = *key;
    s->fb = fb;
    s->total = total;
    s->threads = dcmci_threads_resolve(threads);
    s->workers = frames_workers(l, frames, s->threads);
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, one per worker */
    s->pool = calloc((size_t)s->workers, sizeof *s->pool);
    if (s->pool == NULL) {
        dcmc_image_stream_free(s);
        return DCMC_ERR_NOMEM;
    }
    *out = s;
    return DCMC_OK;
}

uint32_t dcmc_image_stream_batch(const dcmc_image_stream *s)
{
    return s ? (uint32_t)s->workers : 0;
}

int dcmc_frame_is_canonical(const dcmc_layout *layout, const uint8_t *frame, size_t bytes)
{
    size_t fb;
    if (layout == NULL || frame == NULL || dcmc_layout_frame_bytes(layout, &fb) != DCMC_OK ||
        bytes != fb)
        return 0;
    return !dcmci_frame_residue(layout, frame, NULL);
}

dcmc_status dcmc_image_stream_encrypt_new(dcmc_image_stream **out, const dcmc_key *key,
                                          const dcmc_kdf *kdf, const dcmc_options *opt,
                                          const dcmc_layout *layout, uint32_t frames,
                                          const uint8_t *attrs, size_t attrs_len)
{
    if (out)
        *out = NULL;
    if (out == NULL || key == NULL || layout == NULL || (attrs == NULL && attrs_len != 0))
        return DCMC_ERR_ARG;
    if (attrs_len > UINT32_MAX)
        return DCMC_ERR_OVERFLOW;
    dcmc_options defaults;
    if (opt == NULL) {
        dcmc_options_default(&defaults);
        opt = &defaults;
    }
    dcmc_image_stream *s = NULL;
    dcmc_header h;
    dcmc_status st = header_init(&h, opt, kdf, layout, frames);
    if (st == DCMC_OK)
        st = stream_alloc(&s, key, layout, frames, opt->threads, 0);
    if (st != DCMC_OK)
        return st;
    s->hdr = h;
    /* No residue: a frame that would need one is refused when it arrives. */
    if ((st = payload_alloc(attrs, attrs_len, 0, 0, &s->payload, &s->payload_len)) == DCMC_OK &&
        (st = dcmci_prk_derive(key, s->hdr.nonce, s->prk)) == DCMC_OK &&
        (st = kcv_compute(s->prk, s->hdr.kcv)) == DCMC_OK &&
        (st = payload_crypt(s->prk, s->payload, s->payload_len)) == DCMC_OK) {
        s->hdr.payload_bytes = s->payload_len;
        st = mac_begin(s->prk, &s->hdr, s->payload, s->payload_len, &s->mac);
    }
    if (st != DCMC_OK) {
        dcmc_image_stream_free(s);
        return st;
    }
    s->state = STREAM_FRAMES;
    *out = s;
    return DCMC_OK;
}

/* A run of frames through the pool; decryption XORs the residue back, if the payload has one. */
static dcmc_status stream_run(dcmc_image_stream *s, uint8_t *frames, uint32_t count)
{
    const uint8_t *res = s->plain && s->plain[4 + s->alen] ? s->plain + 5 + s->alen : NULL;
    const frames_job job = {&s->key, &s->hdr, frames, s->next, count, s->fb, s->decrypt, res};
    return frames_run(&job, s->threads, s->workers, s->pool);
}

static int stream_accepts(const dcmc_image_stream *s, int decrypt, int state,
                          const uint8_t *frames, uint32_t count)
{
    return s != NULL && frames != NULL && s->decrypt == decrypt && s->state == state &&
           count <= s->hdr.frames - s->next;
}

dcmc_status dcmc_image_stream_encrypt(dcmc_image_stream *s, uint8_t *frames, uint32_t count)
{
    if (!stream_accepts(s, 0, STREAM_FRAMES, frames, count))
        return DCMC_ERR_ARG;
    /* The payload entered the MAC without a residue, so a frame that needs one cannot be
     * encrypted here (dcmc_image_encrypt can); the frames are left as they were. */
    for (uint32_t i = 0; i < count; i++)
        if (dcmci_frame_residue(&s->hdr.layout, frames + (size_t)i * s->fb, NULL))
            return stream_fail(s, DCMC_ERR_UNSUPPORTED);
    dcmc_status st = stream_run(s, frames, count);
    if (st == DCMC_OK)
        st = dcmci_mac_update(&s->mac, frames, (size_t)count * s->fb);
    if (st != DCMC_OK)
        return stream_fail(s, st);
    s->next += count;
    return DCMC_OK;
}

dcmc_status dcmc_image_stream_encrypt_final(dcmc_image_stream *s, dcmc_header *hdr,
                                            uint8_t **payload, size_t *payload_len)
{
    if (hdr)
        memset(hdr, 0, sizeof *hdr);
    if (payload)
        *payload = NULL;
    if (payload_len)
        *payload_len = 0;
    if (s == NULL || hdr == NULL || payload == NULL || payload_len == NULL || s->decrypt ||
        s->state != STREAM_FRAMES || s->next != s->hdr.frames)
        return DCMC_ERR_ARG;
    dcmc_status st = dcmci_mac_final(&s->mac, s->hdr.mac);
    if (st != DCMC_OK)
        return stream_fail(s, st);
    s->state = STREAM_DONE;
    *hdr = s->hdr;
    *payload = s->payload;
    *payload_len = s->payload_len;
    s->payload = NULL;
    s->payload_len = 0;
    return DCMC_OK;
}

dcmc_status dcmc_image_stream_decrypt_new(dcmc_image_stream **out, const dcmc_key *key,
                                          const dcmc_header *hdr, int threads,
                                          const uint8_t *payload, size_t payload_len)
{
    if (out)
        *out = NULL;
    if (out == NULL || key == NULL || hdr == NULL || payload == NULL)
        return DCMC_ERR_ARG;
    dcmc_image_stream *s = NULL;
    /* The checks of authenticate(), in its order, the MAC excepted: it needs the frames. */
    dcmc_status st = stream_alloc(&s, key, &hdr->layout, hdr->frames, threads, 1);
    if (st != DCMC_OK)
        return st;
    s->hdr = *hdr;
    if ((st = dcmc_preset_check(&hdr->preset)) == DCMC_OK &&
        (payload_len != hdr->payload_bytes || payload_len < 5))
        st = payload_len < hdr->payload_bytes ? DCMC_ERR_TRUNCATED : DCMC_ERR_FORMAT;
    if (st == DCMC_OK && (s->payload = malloc(payload_len)) == NULL)
        st = DCMC_ERR_NOMEM;
    if (st == DCMC_OK) {
        memcpy(s->payload, payload, payload_len);
        s->payload_len = payload_len;
        if ((st = check_key(key, hdr, s->prk)) == DCMC_OK)
            st = mac_begin(s->prk, &s->hdr, s->payload, s->payload_len, &s->mac);
    }
    if (st != DCMC_OK) {
        dcmc_image_stream_free(s);
        return st;
    }
    s->state = STREAM_VERIFY;
    *out = s;
    return DCMC_OK;
}

dcmc_status dcmc_image_stream_verify(dcmc_image_stream *s, const uint8_t *frames, uint32_t count)
{
    if (!stream_accepts(s, 1, STREAM_VERIFY, frames, count))
        return DCMC_ERR_ARG;
    dcmc_status st = dcmci_mac_update(&s->mac, frames, (size_t)count * s->fb);
    if (st != DCMC_OK)
        return stream_fail(s, st);
    s->next += count;
    return DCMC_OK;
}

dcmc_status dcmc_image_stream_verify_final(dcmc_image_stream *s, uint8_t **attrs,
                                           size_t *attrs_len)
{
    if (attrs)
        *attrs = NULL;
    if (attrs_len)
        *attrs_len = 0;
    if (s == NULL || attrs == NULL || attrs_len == NULL || !s->decrypt ||
        s->state != STREAM_VERIFY || s->next != s->hdr.frames)
        return DCMC_ERR_ARG;
    uint8_t mac[DCMC_MAC_BYTES];
    dcmc_status st = dcmci_mac_final(&s->mac, mac);
    if (st == DCMC_OK && !dcmci_ct_equal(mac, s->hdr.mac, DCMC_MAC_BYTES))
        st = DCMC_ERR_INTEGRITY;
    if (st == DCMC_OK)
        st = open_payload(s->prk, s->payload, s->payload_len, s->total, &s->plain, &s->alen);
    /* The second pass: the same MAC over the frames again, as they are decrypted. */
    if (st == DCMC_OK)
        st = mac_begin(s->prk, &s->hdr, s->payload, s->payload_len, &s->mac);
    if (st == DCMC_OK && (st = copy_attrs(s->plain, s->alen, attrs, attrs_len)) != DCMC_OK)
        dcmci_mac_abort(&s->mac);
    if (st != DCMC_OK)
        return stream_fail(s, st);
    s->state = STREAM_DECRYPT;
    s->next = 0;
    return DCMC_OK;
}

dcmc_status dcmc_image_stream_decrypt(dcmc_image_stream *s, uint8_t *frames, uint32_t count)
{
    if (!stream_accepts(s, 1, STREAM_DECRYPT, frames, count))
        return DCMC_ERR_ARG;
    dcmc_status st = dcmci_mac_update(&s->mac, frames, (size_t)count * s->fb);
    if (st == DCMC_OK)
        st = stream_run(s, frames, count);
    if (st != DCMC_OK)
        return stream_fail(s, st);
    s->next += count;
    return DCMC_OK;
}

dcmc_status dcmc_image_stream_decrypt_final(dcmc_image_stream *s)
{
    if (s == NULL || !s->decrypt || s->state != STREAM_DECRYPT || s->next != s->hdr.frames)
        return DCMC_ERR_ARG;
    uint8_t mac[DCMC_MAC_BYTES];
    dcmc_status st = dcmci_mac_final(&s->mac, mac);
    if (st == DCMC_OK && !dcmci_ct_equal(mac, s->hdr.mac, DCMC_MAC_BYTES))
        st = DCMC_ERR_INTEGRITY;
    if (st != DCMC_OK)
        return stream_fail(s, st);
    s->state = STREAM_DONE;
    return DCMC_OK;
}
