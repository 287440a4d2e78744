/*
 * test_cipher.c - properties of the image cipher (docs/format.md, SCHEME.md properties 1-10):
 * exact round trip over random layouts, canonical output words, determinism across thread counts
 * and SIMD paths, wrong keys and tampering detected before any plaintext, bad arguments refused.
 */
#include <stdio.h>
#include <string.h>

#include "dcmcrypt/dcmcrypt.h"
#include "nn/kernels.h"
#include "nn/network.h"
#include "test_common.h"

typedef struct image {
    dcmc_layout l;
    uint32_t frames;
    uint8_t *px;
    size_t len;
} image;

static void random_image(dcmc_test_rng *r, image *im, uint32_t max_dim, int junk_bits)
{
    static const uint32_t bas[] = {1, 8, 16, 32};
    dcmc_layout *l = &im->l;
    l->rows = 1 + (uint32_t)(dcmc_test_next(r) % max_dim);
    l->cols = 1 + (uint32_t)(dcmc_test_next(r) % max_dim);
    l->samples = dcmc_test_next(r) % 3 == 0 ? 3 : 1;
    l->planar = (uint32_t)(dcmc_test_next(r) % 2);
    l->bits_allocated = bas[dcmc_test_next(r) % 4];
    l->bits_stored = 1 + (uint32_t)(dcmc_test_next(r) % l->bits_allocated);
    l->high_bit = l->bits_stored - 1 +
                  (uint32_t)(dcmc_test_next(r) % (l->bits_allocated - l->bits_stored + 1));
    l->is_signed = (uint32_t)(dcmc_test_next(r) % 2);
    im->frames = 1 + (uint32_t)(dcmc_test_next(r) % 3);
    size_t fb;
    CU_ASSERT_EQUAL_FATAL(dcmc_layout_frame_bytes(l, &fb), DCMC_OK);
    im->len = fb * im->frames;
    im->px = malloc(im->len ? im->len : 1);
    for (size_t i = 0; i < im->len; i++)
        im->px[i] = (uint8_t)dcmc_test_next(r);
    if (!junk_bits) {
        /* Make every word canonical except in the junk case: the usual DICOM case. */
        if (l->bits_allocated > 1) {
            size_t words = im->len / (l->bits_allocated / 8);
            unsigned low = l->high_bit - l->bits_stored + 1;
            for (size_t j = 0; j < words; j++) {
                uint64_t w = 0;
                for (unsigned b = 0; b < l->bits_allocated / 8; b++)
                    w |= (uint64_t)im->px[j * (l->bits_allocated / 8) + b] << (8 * b);
                uint64_t m = (((uint64_t)1 << l->bits_stored) - 1);
                uint64_t v = (w >> low) & m, c = v << low;
                if (l->is_signed && (v >> (l->bits_stored - 1)) & 1)
                    c |= (((uint64_t)1 << l->bits_allocated) - 1) &
                         ~((((uint64_t)1) << (l->high_bit + 1)) - 1);
                for (unsigned b = 0; b < l->bits_allocated / 8; b++)
                    im->px[j * (l->bits_allocated / 8) + b] = (uint8_t)(c >> (8 * b));
            }
        }
    }
}

static void roundtrip_random(unsigned count, uint64_t seed)
{
    dcmc_test_rng r = {seed};
    dcmc_key key;
    unsigned fails = 0;
    for (unsigned it = 0; it < count; it++) {
        image im;
        random_image(&r, &im, it % 10 == 0 ? 70 : 12, it % 4 == 0);
        for (int i = 0; i < 32; i++)
            key.bytes[i] = (uint8_t)dcmc_test_next(&r);
        dcmc_options o;
        dcmc_options_default(&o);
        if (dcmc_test_next(&r) % 2)
            dcmc_preset_by_name("resnet-cm", &o.preset);
        if (dcmc_test_next(&r) % 4 == 0)
            o.flags = 0;
        o.threads = 1 + (int)(dcmc_test_next(&r) % 3);
        uint8_t attrs[40];
        size_t alen = dcmc_test_next(&r) % sizeof attrs;
        for (size_t i = 0; i < alen; i++)
            attrs[i] = (uint8_t)dcmc_test_next(&r);
        uint8_t *orig = malloc(im.len);
        memcpy(orig, im.px, im.len);
        dcmc_header h;
        uint8_t *pl = NULL, *back = NULL;
        size_t pll = 0, blen = 0;
        dcmc_status st = dcmc_image_encrypt(&key, NULL, &o, &im.l, im.frames, im.px, im.len,
                                            attrs, alen, &h, &pl, &pll);
        CU_ASSERT_EQUAL(st, DCMC_OK);
        if (st == DCMC_OK) {
            st = dcmc_image_decrypt(&key, &h, o.threads, im.px, im.len, pl, pll, &back, &blen);
            CU_ASSERT_EQUAL(st, DCMC_OK);
            int same = st == DCMC_OK && memcmp(orig, im.px, im.len) == 0 && blen == alen &&
                       (alen == 0 || memcmp(back, attrs, alen) == 0);
            CU_ASSERT(same);
            if (!same && fails++ < 5)
                fprintf(stderr, "round trip failed: %ux%u s%u p%u ba%u bs%u hb%u sg%u f%u\n",
                        im.l.rows, im.l.cols, im.l.samples, im.l.planar, im.l.bits_allocated,
                        im.l.bits_stored, im.l.high_bit, im.l.is_signed, im.frames);
        }
        dcmc_free(pl, pll);
        dcmc_free(back, blen);
        free(orig);
        free(im.px);
    }
}

static void test_roundtrip_random_layouts(void)
{
    roundtrip_random(dcmc_test_long() ? 30000 : 1500, 0x1234567887654321ull);
}

/* The frame API on every edge size, in and out separate, each bits-allocated value. */
static void test_frame_api_edges(void)
{
    static const uint32_t dims[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {3, 3}, {1, 17}, {17, 1},
                                       {5, 4}, {4, 5}, {33, 31}};
    static const uint32_t bas[] = {1, 8, 16, 32};
    dcmc_key key;
    memset(key.bytes, 0x5A, 32);
    dcmc_test_rng r = {42};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        for (size_t b = 0; b < 4; b++) {
            dcmc_header h;
            memset(&h, 0, sizeof h);
            h.version = 1;
            h.flags = DCMC_FLAG_STANDARD_LAYER;
            dcmc_preset_by_name("at-resnet-cm", &h.preset);
            dcmc_layout l = {dims[d][0], dims[d][1], 1, 0, bas[b], bas[b], bas[b] - 1, 0};
            h.layout = l;
            h.frames = 1;
            size_t fb;
            dcmc_layout_frame_bytes(&l, &fb);
            uint8_t *in = malloc(fb), *ct = malloc(fb), *out = malloc(fb);
            for (size_t i = 0; i < fb; i++)
                in[i] = (uint8_t)dcmc_test_next(&r);
            if (bas[b] == 1 && (l.rows * l.cols) % 8)
                in[fb - 1] &= (uint8_t)((1u << ((l.rows * l.cols) % 8)) - 1);
            dcmc_frame_cipher *fc = NULL;
            CU_ASSERT_EQUAL_FATAL(dcmc_frame_cipher_new(&fc, &key, &h, 1), DCMC_OK);
            CU_ASSERT_EQUAL(dcmc_frame_encrypt(fc, 0, in, ct, fb), DCMC_OK);
            CU_ASSERT_EQUAL(dcmc_frame_decrypt(fc, 0, ct, out, fb), DCMC_OK);
            CU_ASSERT(memcmp(in, out, fb) == 0);
            CU_ASSERT_EQUAL(dcmc_frame_encrypt(fc, 0, in, ct, fb - 1), DCMC_ERR_TRUNCATED);
            CU_ASSERT_EQUAL(dcmc_frame_encrypt(fc, 0, in, ct, fb + 1), DCMC_ERR_ARG);
            /* Another frame index gives another cipher frame (own subkeys per frame). */
            if (fb >= 8) {
                uint8_t *ct1 = malloc(fb);
                CU_ASSERT_EQUAL(dcmc_frame_encrypt(fc, 1, in, ct1, fb), DCMC_OK);
                CU_ASSERT(memcmp(ct, ct1, fb) != 0);
                free(ct1);
            }
            dcmc_frame_cipher_free(fc);
            free(in);
            free(ct);
            free(out);
        }
    }
    dcmc_frame_cipher_free(NULL);
}

/* Words of the encrypted frame are canonical: bits outside the stored field are zero or the
 * sign extension (PS3.5 8.1.1), even when the original held junk there. */
static void test_canonical_output(void)
{
    dcmc_key key;
    memset(key.bytes, 3, 32);
    for (int sg = 0; sg < 2; sg++) {
        dcmc_layout l = {16, 16, 1, 0, 16, 12, 13, (uint32_t)sg};
        uint16_t px[256], orig[256];
        for (int i = 0; i < 256; i++)
            px[i] = orig[i] = (uint16_t)(i * 2654435761u >> 7);
        dcmc_header h;
        uint8_t *pl, *a;
        size_t pll, al;
        CU_ASSERT_EQUAL_FATAL(dcmc_image_encrypt(&key, NULL, NULL, &l, 1, (uint8_t *)px,
                                                 sizeof px, NULL, 0, &h, &pl, &pll),
                              DCMC_OK);
        CU_ASSERT(pll > 5 + sizeof px - 1); /* the junk travels in the payload */
        int canonical = 1;
        for (int i = 0; i < 256; i++) {
            uint16_t w = px[i];
            if (w & 3u)
                canonical = 0;
            uint16_t top = w >> 14, sign = (w >> 13) & 1;
            if (top != (sg && sign ? 3 : 0))
                canonical = 0;
        }
        CU_ASSERT(canonical);
        CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &h, 1, (uint8_t *)px, sizeof px, pl, pll, &a, &al),
                        DCMC_OK);
        CU_ASSERT(memcmp(px, orig, sizeof px) == 0);
        dcmc_free(pl, pll);
        dcmc_free(a, al);
    }
}

typedef struct enc_result {
    dcmc_header h;
    uint8_t *px, *pl;
    size_t len, pll;
} enc_result;

static void encrypt_fixed(const dcmc_layout *l, uint32_t frames, int threads, const char *preset,
                          enc_result *out)
{
    static const uint8_t nonce[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    dcmc_key key;
    for (int i = 0; i < 32; i++)
        key.bytes[i] = (uint8_t)(i * 11);
    dcmc_options o;
    dcmc_options_default(&o);
    dcmc_preset_by_name(preset, &o.preset);
    o.threads = threads;
    o.nonce = nonce;
    size_t fb;
    dcmc_layout_frame_bytes(l, &fb);
    out->len = fb * frames;
    out->px = malloc(out->len);
    dcmc_test_rng r = {99};
    for (size_t i = 0; i < out->len; i++)
        out->px[i] = (uint8_t)(dcmc_test_next(&r) & (i % 2 ? 0x0F : 0xFF));
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, &o, l, frames, out->px, out->len,
                                       (const uint8_t *)"x", 1, &out->h, &out->pl, &out->pll),
                    DCMC_OK);
}

static int same_result(const enc_result *a, const enc_result *b)
{
    return a->len == b->len && a->pll == b->pll && memcmp(a->px, b->px, a->len) == 0 &&
           memcmp(a->pl, b->pl, a->pll) == 0 && dcmc_test_header_equal(&a->h, &b->h);
}

static void free_result(enc_result *r)
{
    free(r->px);
    dcmc_free(r->pl, r->pll);
}

static void test_thread_counts_identical(void)
{
    dcmc_layout l = {150, 97, 3, 0, 16, 12, 11, 0};
    for (int p = 0; p < 2; p++) {
        const char *preset = p ? "resnet-cm" : "at-resnet-cm";
        enc_result r1, r2, r7;
        encrypt_fixed(&l, 2, 1, preset, &r1);
        encrypt_fixed(&l, 2, 2, preset, &r2);
        encrypt_fixed(&l, 2, 7, preset, &r7);
        CU_ASSERT(same_result(&r1, &r2));
        CU_ASSERT(same_result(&r1, &r7));
        free_result(&r1);
        free_result(&r2);
        free_result(&r7);
    }
}

/* Large frames run their networks in bands of rows, with the coupling in place and one keystream
 * made piece by piece: through the whole image cipher, forced bands give the same bytes as the
 * whole frame, on one thread and on two, and decrypt back exactly. */
static void test_bands_whole_cipher(void)
{
    dcmc_layout l = {150, 97, 3, 0, 16, 12, 11, 0};
    for (int p = 0; p < 2; p++) {
        const char *preset = p ? "resnet-cm" : "at-resnet-cm";
        enc_result whole;
        encrypt_fixed(&l, 2, 1, preset, &whole);
        for (size_t band = 5; band <= 21; band += 16) {
            dcmci_net_band_force(band);
            for (int threads = 1; threads <= 2; threads++) {
                enc_result r;
                encrypt_fixed(&l, 2, threads, preset, &r);
                CU_ASSERT(same_result(&whole, &r));
                dcmc_key key;
                for (int i = 0; i < 32; i++)
                    key.bytes[i] = (uint8_t)(i * 11);
                uint8_t *attrs = NULL;
                size_t alen = 0;
                CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &r.h, threads, r.px, r.len, r.pl, r.pll,
                                                   &attrs, &alen), DCMC_OK);
                dcmc_test_rng g = {99}; /* encrypt_fixed's plaintext */
                size_t bad = 0;
                for (size_t i = 0; i < r.len; i++)
                    bad += r.px[i] != (uint8_t)(dcmc_test_next(&g) & (i % 2 ? 0x0F : 0xFF));
                CU_ASSERT_EQUAL(bad, 0);
                dcmc_free(attrs, alen);
                free_result(&r);
            }
            dcmci_net_band_force(0);
        }
        free_result(&whole);
    }
}

/* Several frames on several threads run frames apart (one frame cipher per worker, frames taken
 * in turn): the cipher and its decryption are those of one frame after the other. Frames carry
 * non-canonical bits, so decryption also puts the residue back frame by frame. */
static void test_frames_apart_identical(void)
{
    dcmc_layout l = {40, 33, 1, 0, 16, 12, 11, 1};
    enc_result one, three;
    encrypt_fixed(&l, 7, 1, "at-resnet-cm", &one);
    encrypt_fixed(&l, 7, 3, "at-resnet-cm", &three);
    CU_ASSERT(same_result(&one, &three));
    dcmc_key key;
    for (int i = 0; i < 32; i++)
        key.bytes[i] = (uint8_t)(i * 11);
    uint8_t *plain = malloc(three.len); /* what encrypt_fixed started from */
    CU_ASSERT_FATAL(plain != NULL);
    dcmc_test_rng r = {99};
    for (size_t i = 0; i < three.len; i++)
        plain[i] = (uint8_t)(dcmc_test_next(&r) & (i % 2 ? 0x0F : 0xFF));
    for (int threads = 1; threads <= 4; threads++) {
        uint8_t *px = malloc(three.len), *attrs = NULL;
        size_t alen = 0;
        CU_ASSERT_FATAL(px != NULL);
        memcpy(px, three.px, three.len);
        CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &three.h, threads, px, three.len, three.pl,
                                           three.pll, &attrs, &alen),
                        DCMC_OK);
        CU_ASSERT(memcmp(px, plain, three.len) == 0);
        dcmc_free(attrs, alen);
        free(px);
    }
    free_result(&one);
    free_result(&three);
    free(plain);
}

static void test_simd_paths_identical(void)
{
    dcmc_layout l = {128, 130, 1, 0, 16, 16, 15, 1};
    enc_result ref;
    CU_ASSERT_EQUAL_FATAL(dcmci_simd_force("scalar"), DCMC_OK);
    encrypt_fixed(&l, 1, 2, "at-resnet-cm", &ref);
    const char *paths[] = {"avx2", "avx512-vnni"};
    for (int i = 0; i < 2; i++) {
        if (dcmci_simd_force(paths[i]) != DCMC_OK) {
            fprintf(stderr, "(%s not available on this CPU) ", paths[i]);
            continue;
        }
        enc_result r;
        encrypt_fixed(&l, 1, 2, "at-resnet-cm", &r);
        CU_ASSERT(same_result(&ref, &r));
        free_result(&r);
    }
    CU_ASSERT_EQUAL(dcmci_simd_force("auto"), DCMC_OK);
    CU_ASSERT_EQUAL(dcmci_simd_force("neon"), DCMC_ERR_ARG);
    free_result(&ref);
}

/* Wrong key: detected by the key check value, before the MAC or any decryption. */
static void test_wrong_key(void)
{
    dcmc_layout l = {64, 64, 1, 0, 8, 8, 7, 0};
    enc_result r;
    encrypt_fixed(&l, 1, 1, "at-resnet-cm", &r);
    uint8_t *ct = malloc(r.len);
    memcpy(ct, r.px, r.len);
    dcmc_key k;
    for (int bit = 0; bit < 256; bit += 37) {
        for (int i = 0; i < 32; i++)
            k.bytes[i] = (uint8_t)(i * 11);
        k.bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint8_t *a = (uint8_t *)1;
        size_t al = 7;
        CU_ASSERT_EQUAL(dcmc_key_check(&k, &r.h), DCMC_ERR_WRONG_KEY);
        CU_ASSERT_EQUAL(dcmc_image_decrypt(&k, &r.h, 1, r.px, r.len, r.pl, r.pll, &a, &al),
                        DCMC_ERR_WRONG_KEY);
        CU_ASSERT_PTR_NULL(a);
        CU_ASSERT_EQUAL(al, 0);
        CU_ASSERT(memcmp(ct, r.px, r.len) == 0); /* untouched */
    }
    free(ct);
    free_result(&r);
}

/* Any single flipped bit of the pixels, the payload or an authenticated header field is caught
 * by the MAC, and the pixels stay as they were. */
static void test_tamper_detected(void)
{
    dcmc_layout l = {40, 30, 3, 1, 16, 10, 9, 0};
    enc_result r;
    encrypt_fixed(&l, 2, 1, "at-resnet-cm", &r);
    dcmc_key key;
    for (int i = 0; i < 32; i++)
        key.bytes[i] = (uint8_t)(i * 11);
    uint8_t *ct = malloc(r.len);
    memcpy(ct, r.px, r.len);
    uint8_t *a;
    size_t al;
    dcmc_test_rng g = {7};
    for (int t = 0; t < 60; t++) {
        size_t bit = dcmc_test_next(&g) % (r.len * 8);
        r.px[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &r.h, 1, r.px, r.len, r.pl, r.pll, &a, &al),
                        DCMC_ERR_INTEGRITY);
        r.px[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CU_ASSERT(memcmp(ct, r.px, r.len) == 0);
    }
    for (size_t i = 0; i < r.pll; i++) {
        r.pl[i] ^= 0x10;
        CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &r.h, 1, r.px, r.len, r.pl, r.pll, &a, &al),
                        DCMC_ERR_INTEGRITY);
        r.pl[i] ^= 0x10;
    }
    /* Header fields: flags, preset parameters, layout details, MAC itself. */
    dcmc_header h = r.h;
    h.flags = 0;
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &h, 1, r.px, r.len, r.pl, r.pll, &a, &al),
                    DCMC_ERR_INTEGRITY);
    h = r.h;
    h.preset.shift_sa ^= 1;
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &h, 1, r.px, r.len, r.pl, r.pll, &a, &al),
                    DCMC_ERR_INTEGRITY);
    h = r.h;
    h.layout.high_bit = 10;
    h.layout.bits_stored = 11;
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &h, 1, r.px, r.len, r.pl, r.pll, &a, &al),
                    DCMC_ERR_INTEGRITY);
    h = r.h;
    h.layout.planar = 0;
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &h, 1, r.px, r.len, r.pl, r.pll, &a, &al),
                    DCMC_ERR_INTEGRITY);
    h = r.h;
    h.mac[31] ^= 0x80;
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &h, 1, r.px, r.len, r.pl, r.pll, &a, &al),
                    DCMC_ERR_INTEGRITY);
    h = r.h;
    h.nonce[0] ^= 1; /* another nonce: another key schedule, so the key check fails first */
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &h, 1, r.px, r.len, r.pl, r.pll, &a, &al),
                    DCMC_ERR_WRONG_KEY);
    /* Frames swapped: each frame is bound to its index. */
    size_t fb = r.len / 2;
    uint8_t *sw = malloc(r.len);
    memcpy(sw, r.px + fb, fb);
    memcpy(sw + fb, r.px, fb);
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &r.h, 1, sw, r.len, r.pl, r.pll, &a, &al),
                    DCMC_ERR_INTEGRITY);
    /* Truncated pixels or payload. */
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &r.h, 1, r.px, r.len - 1, r.pl, r.pll, &a, &al),
                    DCMC_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &r.h, 1, r.px, r.len, r.pl, r.pll - 1, &a, &al),
                    DCMC_ERR_TRUNCATED);
    CU_ASSERT(memcmp(ct, r.px, r.len) == 0);
    /* And the untampered object still decrypts. */
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &r.h, 1, r.px, r.len, r.pl, r.pll, &a, &al), DCMC_OK);
    dcmc_free(a, al);
    free(sw);
    free(ct);
    free_result(&r);
}

/* Two encryptions of the same image under the same key use fresh nonces and share nothing. */
static void test_fresh_nonce(void)
{
    dcmc_layout l = {32, 32, 1, 0, 8, 8, 7, 0};
    dcmc_key key;
    memset(key.bytes, 1, 32);
    uint8_t a[1024], b[1024];
    memset(a, 100, sizeof a);
    memset(b, 100, sizeof b);
    dcmc_header ha, hb;
    uint8_t *pa, *pb;
    size_t la, lb;
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, NULL, &l, 1, a, 1024, NULL, 0, &ha, &pa, &la),
                    DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, NULL, &l, 1, b, 1024, NULL, 0, &hb, &pb, &lb),
                    DCMC_OK);
    CU_ASSERT(memcmp(ha.nonce, hb.nonce, 16) != 0);
    size_t same = 0;
    for (int i = 0; i < 1024; i++)
        same += a[i] == b[i];
    CU_ASSERT(same < 20); /* about 4 expected by chance */
    CU_ASSERT(memcmp(pa, pb, la) != 0);
    dcmc_free(pa, la);
    dcmc_free(pb, lb);
}

static void test_passphrase_roundtrip(void)
{
    dcmc_kdf kdf;
    CU_ASSERT_EQUAL_FATAL(dcmc_kdf_new_scrypt(&kdf), DCMC_OK);
    kdf.log2_n = 10;
    dcmc_key key, key2;
    CU_ASSERT_EQUAL_FATAL(dcmc_key_from_passphrase("pass phrase", 11, &kdf, &key), DCMC_OK);
    dcmc_layout l = {9, 9, 1, 0, 16, 16, 15, 0};
    uint8_t px[162], orig[162];
    for (int i = 0; i < 162; i++)
        px[i] = orig[i] = (uint8_t)(i * 7);
    dcmc_header h;
    uint8_t *pl, *a;
    size_t pll, al;
    CU_ASSERT_EQUAL_FATAL(dcmc_image_encrypt(&key, &kdf, NULL, &l, 1, px, 162, NULL, 0, &h, &pl, &pll),
                          DCMC_OK);
    CU_ASSERT(dcmc_test_kdf_equal(&h.kdf, &kdf));
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("pass phrasE", 11, &h.kdf, &key2), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key2, &h, 1, px, 162, pl, pll, &a, &al), DCMC_ERR_WRONG_KEY);
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("pass phrase", 11, &h.kdf, &key2), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_decrypt(&key2, &h, 1, px, 162, pl, pll, &a, &al), DCMC_OK);
    CU_ASSERT(memcmp(px, orig, 162) == 0);
    dcmc_free(pl, pll);
    dcmc_free(a, al);
}

static void test_bad_arguments(void)
{
    dcmc_key key;
    memset(key.bytes, 1, 32);
    dcmc_layout l = {4, 4, 1, 0, 8, 8, 7, 0};
    uint8_t px[16] = {0};
    dcmc_header h;
    uint8_t *pl = (uint8_t *)1;
    size_t pll = 5;
    CU_ASSERT_EQUAL(dcmc_image_encrypt(NULL, NULL, NULL, &l, 1, px, 16, NULL, 0, &h, &pl, &pll),
                    DCMC_ERR_ARG);
    CU_ASSERT_PTR_NULL(pl);
    CU_ASSERT_EQUAL(pll, 0);
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, NULL, &l, 0, px, 16, NULL, 0, &h, &pl, &pll),
                    DCMC_ERR_LAYOUT);
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, NULL, &l, 1, px, 15, NULL, 0, &h, &pl, &pll),
                    DCMC_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, NULL, &l, 1, px, 17, NULL, 0, &h, &pl, &pll),
                    DCMC_ERR_LAYOUT);
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, NULL, &l, 1, px, 16, NULL, 3, &h, &pl, &pll),
                    DCMC_ERR_ARG);
    /* Frames * frame size overflowing size_t. */
    dcmc_layout big = {65535, 65535, 3, 0, 16, 16, 15, 0};
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, NULL, &big, 0xFFFFFFFFu, px, 16, NULL, 0, &h,
                                       &pl, &pll),
                    DCMC_ERR_OVERFLOW);
    dcmc_layout zero = {0, 0, 1, 0, 8, 8, 7, 0};
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, NULL, &zero, 1, px, 0, NULL, 0, &h, &pl, &pll),
                    DCMC_ERR_LAYOUT);
    dcmc_options o;
    dcmc_options_default(&o);
    o.preset.blocks = 99;
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, &o, &l, 1, px, 16, NULL, 0, &h, &pl, &pll),
                    DCMC_ERR_PRESET);
    dcmc_options_default(&o);
    o.flags = 0x80;
    CU_ASSERT_EQUAL(dcmc_image_encrypt(&key, NULL, &o, &l, 1, px, 16, NULL, 0, &h, &pl, &pll),
                    DCMC_ERR_ARG);
    dcmc_frame_cipher *fc = (dcmc_frame_cipher *)1;
    CU_ASSERT_EQUAL(dcmc_frame_cipher_new(&fc, &key, NULL, 1), DCMC_ERR_ARG);
    CU_ASSERT_PTR_NULL(fc);
}

/* A real-size frame of each preset: exact, and the cipher image differs from the plain one. */
static void test_full_size_frames(void)
{
    dcmc_layout l = {512, 512, 1, 0, 16, 16, 15, 1};
    for (int p = 0; p < 2; p++) {
        enc_result r;
        dcmc_test_rng g = {99};
        encrypt_fixed(&l, 1, 0, p ? "resnet-cm" : "at-resnet-cm", &r);
        size_t same = 0;
        for (size_t i = 0; i < r.len; i += 2) {
            uint8_t lo = (uint8_t)dcmc_test_next(&g), hi = (uint8_t)dcmc_test_next(&g) & 0x0F;
            same += r.px[i] == lo && r.px[i + 1] == hi;
        }
        CU_ASSERT(same < 50);
        dcmc_key key;
        for (int i = 0; i < 32; i++)
            key.bytes[i] = (uint8_t)(i * 11);
        uint8_t *a;
        size_t al;
        CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &r.h, 0, r.px, r.len, r.pl, r.pll, &a, &al), DCMC_OK);
        dcmc_test_rng g2 = {99};
        int exact = 1;
        for (size_t i = 0; i < r.len; i++)
            exact &= r.px[i] == (uint8_t)(dcmc_test_next(&g2) & (i % 2 ? 0x0F : 0xFF));
        CU_ASSERT(exact);
        dcmc_free(a, al);
        free_result(&r);
    }
}

/* ---- the image as a stream of frames ---- */

/* n frames of random canonical words of l: bits outside the stored field zero, or the sign
 * extension; for 1-bit frames the unused bits of each frame's last byte zero. */
static uint8_t *canonical_frames(const dcmc_layout *l, uint32_t n, uint64_t seed, size_t *len)
{
    size_t fb = 0;
    CU_ASSERT_EQUAL_FATAL(dcmc_layout_frame_bytes(l, &fb), DCMC_OK);
    *len = fb * n;
    uint8_t *px = calloc(*len ? *len : 1, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(px);
    dcmc_test_rng r = {seed};
    const size_t words = (size_t)l->rows * l->cols * l->samples;
    const unsigned ba = l->bits_allocated, low = l->high_bit - l->bits_stored + 1;
    const uint64_t mask = ((uint64_t)1 << l->bits_stored) - 1;
    const uint64_t ext = (((uint64_t)1 << ba) - 1) & ~(((uint64_t)1 << (l->high_bit + 1)) - 1);
    for (uint32_t f = 0; f < n; f++)
        for (size_t j = 0; j < words; j++) {
            uint64_t v = dcmc_test_next(&r) & mask, w = v << low;
            if (ba == 1) {
                px[f * fb + j / 8] |= (uint8_t)(v << (j % 8));
                continue;
            }
            if (l->is_signed && (v >> (l->bits_stored - 1)) & 1)
                w |= ext;
            for (unsigned b = 0; b < ba / 8; b++)
                px[f * fb + j * (ba / 8) + b] = (uint8_t)(w >> (8 * b));
        }
    return px;
}

static void stream_key(dcmc_key *k, uint8_t seed)
{
    for (int i = 0; i < 32; i++)
        k->bytes[i] = (uint8_t)(i * 13 + seed);
}

static const uint8_t k_stream_nonce[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};

/* Frames of `px` through an encryption stream, `batch` per call; DCMC_OK and the results, or the
 * first failure. */
static dcmc_status stream_encrypt_all(const dcmc_key *key, const dcmc_options *o,
                                      const dcmc_layout *l, uint32_t frames, uint8_t *px,
                                      uint32_t batch, dcmc_header *h, uint8_t **pl, size_t *pll)
{
    size_t fb = 0;
    dcmc_layout_frame_bytes(l, &fb);
    dcmc_image_stream *s = NULL;
    dcmc_status st = dcmc_image_stream_encrypt_new(&s, key, NULL, o, l, frames,
                                                   (const uint8_t *)"protected", 9);
    for (uint32_t f = 0; st == DCMC_OK && f < frames; f += batch) {
        const uint32_t n = frames - f < batch ? frames - f : batch;
        st = dcmc_image_stream_encrypt(s, px + f * fb, n);
    }
    if (st == DCMC_OK)
        st = dcmc_image_stream_encrypt_final(s, h, pl, pll);
    dcmc_image_stream_free(s);
    return st;
}

/* Both passes of a decryption stream over `px`, `batch` frames per call. */
static dcmc_status stream_decrypt_all(const dcmc_key *key, const dcmc_header *h, int threads,
                                      uint8_t *px, const uint8_t *pl, size_t pll, uint32_t batch,
                                      uint8_t **attrs, size_t *alen)
{
    size_t fb = 0;
    dcmc_layout_frame_bytes(&h->layout, &fb);
    dcmc_image_stream *s = NULL;
    dcmc_status st = dcmc_image_stream_decrypt_new(&s, key, h, threads, pl, pll);
    for (uint32_t f = 0; st == DCMC_OK && f < h->frames; f += batch) {
        const uint32_t n = h->frames - f < batch ? h->frames - f : batch;
        st = dcmc_image_stream_verify(s, px + f * fb, n);
    }
    if (st == DCMC_OK)
        st = dcmc_image_stream_verify_final(s, attrs, alen);
    for (uint32_t f = 0; st == DCMC_OK && f < h->frames; f += batch) {
        const uint32_t n = h->frames - f < batch ? h->frames - f : batch;
        st = dcmc_image_stream_decrypt(s, px + f * fb, n);
    }
    if (st == DCMC_OK)
        st = dcmc_image_stream_decrypt_final(s);
    dcmc_image_stream_free(s);
    return st;
}

/* The stream gives exactly what the whole image gives (header, payload, cipher frames), for any
 * batch and thread count, and each side decrypts what the other encrypted. */
static void test_stream_equals_whole(void)
{
    static const dcmc_layout layouts[] = {
        {40, 33, 1, 0, 16, 12, 11, 1}, {17, 9, 3, 1, 8, 8, 7, 0},
        {13, 11, 1, 0, 32, 20, 25, 1}, {7, 5, 1, 0, 1, 1, 0, 0},
    };
    static const uint32_t batches[] = {1, 2, 3, 7};
    const uint32_t frames = 7;
    dcmc_key key;
    stream_key(&key, 1);
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
        const dcmc_layout *l = &layouts[li];
        size_t len = 0;
        uint8_t *plain = canonical_frames(l, frames, 7 + li, &len);
        for (int threads = 1; threads <= 3; threads += 2) {
            dcmc_options o;
            dcmc_options_default(&o);
            o.threads = threads;
            o.nonce = k_stream_nonce;
            uint8_t *whole = malloc(len), *pl = NULL;
            size_t pll = 0;
            dcmc_header h;
            CU_ASSERT_FATAL(whole != NULL);
            memcpy(whole, plain, len);
            CU_ASSERT_EQUAL_FATAL(dcmc_image_encrypt(&key, NULL, &o, l, frames, whole, len,
                                                     (const uint8_t *)"protected", 9, &h, &pl,
                                                     &pll),
                                  DCMC_OK);
            for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
                uint8_t *px = malloc(len), *pl2 = NULL;
                size_t pll2 = 0;
                dcmc_header h2;
                CU_ASSERT_FATAL(px != NULL);
                memcpy(px, plain, len);
                CU_ASSERT_EQUAL(stream_encrypt_all(&key, &o, l, frames, px, batches[b], &h2,
                                                   &pl2, &pll2),
                                DCMC_OK);
                CU_ASSERT(dcmc_test_header_equal(&h, &h2));
                CU_ASSERT(pll2 == pll && pl2 && memcmp(pl2, pl, pll) == 0);
                CU_ASSERT(memcmp(px, whole, len) == 0);
                /* The whole-image decryption takes the stream's output. */
                uint8_t *a = NULL;
                size_t al = 0;
                CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &h2, threads, px, len, pl2, pll2, &a, &al),
                                DCMC_OK);
                CU_ASSERT(memcmp(px, plain, len) == 0);
                dcmc_free(a, al);
                /* And the stream decrypts the whole image's, batch after batch. */
                memcpy(px, whole, len);
                CU_ASSERT_EQUAL(stream_decrypt_all(&key, &h, threads, px, pl, pll, batches[b], &a,
                                                   &al),
                                DCMC_OK);
                CU_ASSERT(memcmp(px, plain, len) == 0);
                CU_ASSERT(al == 9 && a && memcmp(a, "protected", 9) == 0);
                dcmc_free(a, al);
                dcmc_free(pl2, pll2);
                free(px);
            }
            dcmc_image_stream *s = NULL;
            CU_ASSERT_EQUAL(dcmc_image_stream_encrypt_new(&s, &key, NULL, &o, l, frames, NULL, 0),
                            DCMC_OK);
            CU_ASSERT_EQUAL(dcmc_image_stream_batch(s), threads == 1 ? 1u : (uint32_t)threads);
            dcmc_image_stream_free(s);
            dcmc_free(pl, pll);
            free(whole);
        }
        free(plain);
    }
}

/* Decryption streams: a wrong key stops at the start, tampering at the end of the first pass
 * (no protected bytes released, no frame decrypted), frames changed between the passes at the
 * end of the second; a residue travels as in the whole image. */
static void test_stream_decrypt_refusals(void)
{
    const dcmc_layout l = {24, 20, 1, 0, 16, 10, 9, 0};
    const uint32_t frames = 5;
    dcmc_key key, other;
    stream_key(&key, 1);
    stream_key(&other, 2);
    size_t len = 0, fb = 24 * 20 * 2;
    uint8_t *plain = canonical_frames(&l, frames, 3, &len), *pl = NULL, *a = (uint8_t *)1;
    uint8_t *px = malloc(len), *ct = malloc(len);
    size_t pll = 0, al = 7;
    dcmc_header h;
    dcmc_options o;
    dcmc_options_default(&o);
    o.nonce = k_stream_nonce;
    CU_ASSERT_FATAL(px && ct);
    memcpy(ct, plain, len);
    CU_ASSERT_EQUAL_FATAL(dcmc_image_encrypt(&key, NULL, &o, &l, frames, ct, len, NULL, 0, &h, &pl,
                                             &pll),
                          DCMC_OK);
    dcmc_image_stream *s = (dcmc_image_stream *)1;
    CU_ASSERT_EQUAL(dcmc_image_stream_decrypt_new(&s, &other, &h, 1, pl, pll), DCMC_ERR_WRONG_KEY);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(dcmc_image_stream_decrypt_new(&s, &key, &h, 1, pl, pll - 1),
                    DCMC_ERR_TRUNCATED);
    /* One bit of the last frame's last word: caught when the first pass ends. */
    memcpy(px, ct, len);
    px[len - 1] ^= 0x01;
    CU_ASSERT_EQUAL_FATAL(dcmc_image_stream_decrypt_new(&s, &key, &h, 2, pl, pll), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_stream_decrypt(s, px, 1), DCMC_ERR_ARG); /* not verified yet */
    CU_ASSERT_EQUAL(dcmc_image_stream_verify_final(s, &a, &al), DCMC_ERR_ARG); /* frames missing */
    CU_ASSERT_EQUAL(dcmc_image_stream_verify(s, px, frames + 1), DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmc_image_stream_verify(s, px, 2), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_stream_verify(s, px + 2 * fb, frames - 2), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_stream_verify_final(s, &a, &al), DCMC_ERR_INTEGRITY);
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_EQUAL(al, 0);
    CU_ASSERT_EQUAL(dcmc_image_stream_decrypt(s, px, frames), DCMC_ERR_ARG); /* ended */
    dcmc_image_stream_free(s);
    px[len - 1] ^= 0x01;
    CU_ASSERT(memcmp(px, ct, len) == 0);
    /* Verified, then a frame changed before the second pass: refused at its end. */
    CU_ASSERT_EQUAL_FATAL(dcmc_image_stream_decrypt_new(&s, &key, &h, 1, pl, pll), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_stream_verify(s, px, frames), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_stream_verify_final(s, &a, &al), DCMC_OK);
    CU_ASSERT(a != NULL && al == 0);
    dcmc_free(a, al);
    CU_ASSERT_EQUAL(dcmc_image_stream_decrypt_final(s), DCMC_ERR_ARG); /* frames missing */
    px[fb + 3] ^= 0x10;
    CU_ASSERT_EQUAL(dcmc_image_stream_decrypt(s, px, frames), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_stream_decrypt_final(s), DCMC_ERR_INTEGRITY);
    dcmc_image_stream_free(s);
    /* Non-canonical words travel as a residue in the payload: the stream puts it back. */
    memcpy(px, plain, len);
    px[1] |= 0x80; /* bit 15, above High Bit 9 */
    memcpy(plain, px, len);
    dcmc_free(pl, pll);
    CU_ASSERT_EQUAL_FATAL(dcmc_image_encrypt(&key, NULL, &o, &l, frames, px, len, NULL, 0, &h, &pl,
                                             &pll),
                          DCMC_OK);
    CU_ASSERT_EQUAL(pll, 5 + len);
    CU_ASSERT_EQUAL(stream_decrypt_all(&key, &h, 2, px, pl, pll, 2, &a, &al), DCMC_OK);
    CU_ASSERT(memcmp(px, plain, len) == 0);
    dcmc_free(a, al);
    dcmc_free(pl, pll);
    free(plain);
    free(px);
    free(ct);
}

/* Encryption streams refuse a frame that would need a residue (untouched), and anything out of
 * order; canonical frames are told apart from the others. */
static void test_stream_encrypt_refusals(void)
{
    const dcmc_layout l = {16, 12, 1, 0, 16, 12, 11, 0};
    dcmc_key key;
    stream_key(&key, 1);
    size_t len = 0, fb = 16 * 12 * 2;
    uint8_t *px = canonical_frames(&l, 3, 5, &len), *pl = (uint8_t *)1;
    size_t pll = 7;
    dcmc_header h;
    CU_ASSERT_EQUAL(dcmc_frame_is_canonical(&l, px, fb), 1);
    CU_ASSERT_EQUAL(dcmc_frame_is_canonical(&l, px, fb - 1), 0);
    CU_ASSERT_EQUAL(dcmc_frame_is_canonical(NULL, px, fb), 0);
    px[fb + 5] |= 0x20; /* frame 1, bit 13 of a word: above High Bit 11 */
    CU_ASSERT_EQUAL(dcmc_frame_is_canonical(&l, px + fb, fb), 0);
    uint8_t *copy = malloc(len);
    CU_ASSERT_FATAL(copy != NULL);
    memcpy(copy, px, len);
    dcmc_image_stream *s = NULL;
    CU_ASSERT_EQUAL_FATAL(dcmc_image_stream_encrypt_new(&s, &key, NULL, NULL, &l, 3, NULL, 0),
                          DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_image_stream_encrypt_final(s, &h, &pl, &pll), DCMC_ERR_ARG);
    CU_ASSERT_PTR_NULL(pl);
    CU_ASSERT_EQUAL(dcmc_image_stream_verify(s, px, 1), DCMC_ERR_ARG); /* not a decryption */
    CU_ASSERT_EQUAL(dcmc_image_stream_encrypt(s, px + fb, 2), DCMC_ERR_UNSUPPORTED);
    CU_ASSERT(memcmp(px, copy, len) == 0);
    CU_ASSERT_EQUAL(dcmc_image_stream_encrypt(s, px, 1), DCMC_ERR_ARG); /* ended */
    dcmc_image_stream_free(s);
    s = (dcmc_image_stream *)1;
    CU_ASSERT_EQUAL(dcmc_image_stream_encrypt_new(&s, &key, NULL, NULL, &l, 0, NULL, 0),
                    DCMC_ERR_LAYOUT);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(dcmc_image_stream_encrypt_new(NULL, &key, NULL, NULL, &l, 1, NULL, 0),
                    DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmc_image_stream_encrypt_new(&s, &key, NULL, NULL, &l, 1, NULL, 3),
                    DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmc_image_stream_batch(NULL), 0u);
    dcmc_image_stream_free(NULL);
    free(copy);
    free(px);
}

int dcmc_test_register_cipher(void)
{
    static const dcmc_test_case cases[] = {
        {"exact round trip, random layouts", test_roundtrip_random_layouts},
        {"frame API on edge sizes", test_frame_api_edges},
        {"canonical output words, junk bits restored", test_canonical_output},
        {"threads 1, 2, 7 give identical cipher", test_thread_counts_identical},
        {"frames apart on 3 threads: same cipher, exact decryption", test_frames_apart_identical},
        {"networks in bands: same cipher through the image API", test_bands_whole_cipher},
        {"SIMD paths give identical cipher", test_simd_paths_identical},
        {"wrong key detected, nothing decrypted", test_wrong_key},
        {"tampering detected, nothing decrypted", test_tamper_detected},
        {"fresh nonce per encryption", test_fresh_nonce},
        {"passphrase round trip", test_passphrase_roundtrip},
        {"bad arguments", test_bad_arguments},
        {"512x512 frames of each preset", test_full_size_frames},
        {"streamed image: same as whole, any batch and threads", test_stream_equals_whole},
        {"streamed decryption: wrong key, tampering, changes between passes", test_stream_decrypt_refusals},
        {"streamed encryption: residue and order refused", test_stream_encrypt_refusals},
        {NULL, NULL},
    };
    return dcmc_test_add_suite("cipher", cases);
}
