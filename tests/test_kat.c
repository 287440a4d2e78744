/*
 * test_kat.c - known-answer vectors from tests/kat/vectors/, produced by an independent numpy
 * implementation of docs/format.md (tests/kat/gen/katgen.py). The library must match them bit for
 * bit: header, payload and cipher frames, and decrypt them back. Intermediate values (a subkey,
 * generator outputs, one network output, the coupled values) locate a mismatch when there is one.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "cipher/internal.h"
#include "dcmcrypt/dcmcrypt.h"
#include "nn/network.h"
#include "test_common.h"

typedef struct kat {
    char name[128];
    char fields[32][24];
    char *values[32];
    int count;
} kat;

static const char *kat_get(const kat *k, const char *field)
{
    for (int i = 0; i < k->count; i++)
        if (strcmp(k->fields[i], field) == 0)
            return k->values[i];
    return NULL;
}

static void kat_free(kat *k)
{
    for (int i = 0; i < k->count; i++)
        free(k->values[i]);
}

static int kat_load(const char *path, kat *k)
{
    memset(k, 0, sizeof *k);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0 && k->count < 32) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = 0;
        snprintf(k->fields[k->count], sizeof k->fields[0], "%s", line);
        k->values[k->count] = strdup(sp + 1);
        k->count++;
    }
    free(line);
    fclose(f);
    const char *nm = kat_get(k, "name");
    snprintf(k->name, sizeof k->name, "%.120s", nm ? nm : path);
    return 0;
}

/* Hex to bytes; "-" is empty. Returns malloc'd buffer (at least 1 byte). */
static uint8_t *unhex(const char *s, size_t *len)
{
    *len = 0;
    if (s == NULL)
        return NULL;
    if (strcmp(s, "-") == 0)
        return calloc(1, 1);
    size_t n = strlen(s) / 2;
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        b[i] = (uint8_t)v;
    }
    *len = n;
    return b;
}

static size_t parse_u32s(const char *s, uint32_t *out, size_t max)
{
    size_t n = 0;
    if (s == NULL || strcmp(s, "-") == 0)
        return 0;
    while (*s && n < max) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s)
            break;
        out[n++] = (uint32_t)v;
        s = end;
    }
    return n;
}

static int check_bytes(const kat *k, const char *what, const uint8_t *got, size_t len)
{
    size_t n;
    uint8_t *want = unhex(kat_get(k, what), &n);
    int ok = want && n == len && memcmp(want, got, len) == 0;
    if (!ok)
        fprintf(stderr, "\n  KAT %s: %s differs (len %zu vs %zu)", k->name, what, len, n);
    free(want);
    return ok;
}

static void run_kat(const char *path)
{
    kat k;
    CU_ASSERT_EQUAL_FATAL(kat_load(path, &k), 0);
    uint32_t pr[11] = {0}, lay[8] = {0}, kdfv[4] = {0}, frames = 0, flags = 0;
    CU_ASSERT_EQUAL(parse_u32s(kat_get(&k, "preset"), pr, 11), 11);
    CU_ASSERT_EQUAL(parse_u32s(kat_get(&k, "layout"), lay, 8), 8);
    parse_u32s(kat_get(&k, "frames"), &frames, 1);
    parse_u32s(kat_get(&k, "flags"), &flags, 1);
    const char *kdfs = kat_get(&k, "kdf");
    CU_ASSERT_EQUAL(parse_u32s(kdfs, kdfv, 4), 4);

    size_t n;
    dcmc_key key;
    uint8_t *kb = unhex(kat_get(&k, "key"), &n);
    CU_ASSERT_EQUAL_FATAL(n, 32);
    memcpy(key.bytes, kb, 32);
    free(kb);
    dcmc_kdf kdf;
    memset(&kdf, 0, sizeof kdf);
    kdf.id = (uint8_t)kdfv[0];
    kdf.log2_n = (uint8_t)kdfv[1];
    kdf.r = (uint8_t)kdfv[2];
    kdf.p = (uint8_t)kdfv[3];
    const char *salt_hex = kdfs ? strrchr(kdfs, ' ') : NULL;
    uint8_t *salt = unhex(salt_hex ? salt_hex + 1 : NULL, &n);
    if (salt && n == 16)
        memcpy(kdf.salt, salt, 16);
    free(salt);
    const char *pass = kat_get(&k, "passphrase");
    if (pass && strcmp(pass, "-") != 0) {
        dcmc_key derived;
        CU_ASSERT_EQUAL(dcmc_key_from_passphrase(pass, strlen(pass), &kdf, &derived), DCMC_OK);
        CU_ASSERT(memcmp(derived.bytes, key.bytes, 32) == 0);
    }

    uint8_t *nonce = unhex(kat_get(&k, "nonce"), &n);
    CU_ASSERT_EQUAL_FATAL(n, 16);
    dcmc_options o;
    dcmc_options_default(&o);
    o.flags = flags;
    o.threads = 2;
    o.nonce = nonce;
    dcmc_preset *p = &o.preset;
    p->id = (uint8_t)pr[0];
    p->channels = (uint8_t)pr[1];
    p->blocks = (uint8_t)pr[2];
    p->rounds = (uint8_t)pr[3];
    p->attention = (uint8_t)pr[4];
    p->ca_reduction = (uint8_t)pr[5];
    p->sa_kernel = (uint8_t)pr[6];
    p->shift_stem = (uint8_t)pr[7];
    p->shift_conv = (uint8_t)pr[8];
    p->shift_ca = (uint8_t)pr[9];
    p->shift_sa = (uint8_t)pr[10];
    dcmc_layout l = {lay[0], lay[1], lay[2], lay[3], lay[4], lay[5], lay[6], lay[7]};

    /* Intermediate values first: they say where a mismatch starts. */
    uint8_t prk[32], sub[32];
    CU_ASSERT_EQUAL(dcmci_prk_derive(&key, nonce, prk), DCMC_OK);
    CU_ASSERT_EQUAL(dcmci_subkey(prk, "net", 0, sub), DCMC_OK);
    CU_ASSERT(check_bytes(&k, "subkey_net_0", sub, 32));
    const char *gens[2][2] = {{"o1_0", "chaos"}, {"o2_0", "diffusion"}};
    for (int g = 0; g < 2; g++) {
        uint32_t want[8], got[8];
        CU_ASSERT_EQUAL(parse_u32s(kat_get(&k, gens[g][0]), want, 8), 8);
        dcmci_logistic gen;
        dcmci_subkey(prk, gens[g][1], 0, sub);
        dcmci_logistic_seed(&gen, sub);
        dcmci_logistic_fill(&gen, got, 8);
        CU_ASSERT(memcmp(want, got, sizeof got) == 0);
        if (memcmp(want, got, sizeof got) != 0)
            fprintf(stderr, "\n  KAT %s: %s differs", k.name, gens[g][0]);
    }
    size_t fb;
    CU_ASSERT_EQUAL_FATAL(dcmc_layout_frame_bytes(&l, &fb), DCMC_OK);
    size_t plen;
    uint8_t *plain = unhex(kat_get(&k, "plain"), &plen);
    CU_ASSERT_EQUAL_FATAL(plen, fb * frames);
    const char *net_out = kat_get(&k, "net_f0_out");
    if (net_out && strcmp(net_out, "-") != 0) {
        /* Gather plane A of frame 0 the way section 8 says and run F_0 alone. */
        size_t h = l.rows / 2, w = l.cols / 2, planes = 2 * l.samples, nv = planes * h * w;
        uint32_t *want = malloc(nv * sizeof *want), *got = malloc(nv * sizeof *got);
        uint32_t *a = malloc(nv * sizeof *a);
        CU_ASSERT_EQUAL(parse_u32s(net_out, want, nv), nv);
        /* Values of frame 0 (plane-major) through the same word rules as the cipher. */
        uint32_t *vals = malloc((size_t)l.rows * l.cols * l.samples * sizeof *vals);
        unsigned low = l.high_bit - l.bits_stored + 1;
        uint64_t m = ((uint64_t)1 << l.bits_stored) - 1;
        size_t N = (size_t)l.rows * l.cols;
        for (unsigned s = 0; s < l.samples; s++) {
            for (size_t i = 0; i < N; i++) {
                size_t j = l.planar ? s * N + i : i * l.samples + s;
                uint64_t word = 0;
                if (l.bits_allocated == 1)
                    word = (plain[j / 8] >> (j % 8)) & 1;
                else
                    for (unsigned b = 0; b < l.bits_allocated / 8; b++)
                        word |= (uint64_t)plain[j * (l.bits_allocated / 8) + b] << (8 * b);
                vals[s * N + i] = (uint32_t)((word >> low) & m);
            }
        }
        for (unsigned s = 0; s < l.samples; s++)
            for (size_t y = 0; y < h; y++)
                for (size_t x = 0; x < w; x++) {
                    a[(2 * s) * h * w + y * w + x] = vals[s * N + 2 * y * l.cols + 2 * x];
                    a[(2 * s + 1) * h * w + y * w + x] = vals[s * N + 2 * y * l.cols + 2 * x + 1];
                }
        dcmci_net_plan *plan;
        dcmci_team team;
        dcmci_team_init(&team, 2);
        CU_ASSERT_EQUAL_FATAL(dcmci_net_plan_new(&plan, p, (unsigned)planes, h, w, l.bits_stored,
                                                &team), DCMC_OK);
        size_t wb = dcmci_net_weight_bytes(p, (unsigned)planes);
        uint8_t *ws = malloc(wb);
        dcmci_subkey(prk, "net", 0, sub);
        dcmci_chacha20_stream(sub, ws, wb);
        dcmci_net_load(plan, ws);
        dcmci_net_eval(plan, 0, a, got);
        CU_ASSERT(memcmp(want, got, nv * sizeof *got) == 0);
        if (memcmp(want, got, nv * sizeof *got) != 0)
            fprintf(stderr, "\n  KAT %s: net_f0_out differs", k.name);
        dcmci_net_plan_free(plan);
        free(ws);
        free(vals);
        free(a);
        free(want);
        free(got);
    }

    /* The whole image: header, payload and cipher frames bit for bit, then back. */
    size_t alen;
    uint8_t *attrs = unhex(kat_get(&k, "attrs"), &alen);
    uint8_t *px = malloc(plen ? plen : 1);
    memcpy(px, plain, plen);
    dcmc_header h;
    uint8_t *pl = NULL;
    size_t pll = 0;
    dcmc_status st = dcmc_image_encrypt(&key, kdf.id ? &kdf : NULL, &o, &l, frames, px, plen,
                                        attrs, alen, &h, &pl, &pll);
    CU_ASSERT_EQUAL(st, DCMC_OK);
    if (st == DCMC_OK) {
        uint8_t hb[DCMC_HEADER_BYTES];
        dcmc_header_write(&h, hb);
        CU_ASSERT(check_bytes(&k, "kcv", h.kcv, DCMC_KCV_BYTES));
        CU_ASSERT(check_bytes(&k, "payload", pl, pll));
        CU_ASSERT(check_bytes(&k, "cipher", px, plen));
        CU_ASSERT(check_bytes(&k, "header", hb, sizeof hb));
        /* Decrypt the vector's own bytes (not ours) back to the plaintext. */
        size_t cl, vpl, vhl;
        uint8_t *ct = unhex(kat_get(&k, "cipher"), &cl);
        uint8_t *vp = unhex(kat_get(&k, "payload"), &vpl);
        uint8_t *vh = unhex(kat_get(&k, "header"), &vhl);
        dcmc_header rh;
        CU_ASSERT_EQUAL(dcmc_header_read(vh, vhl, &rh), DCMC_OK);
        uint8_t *back = NULL;
        size_t bl = 0;
        CU_ASSERT_EQUAL(dcmc_image_decrypt(&key, &rh, 1, ct, cl, vp, vpl, &back, &bl), DCMC_OK);
        CU_ASSERT(cl == plen && memcmp(ct, plain, plen) == 0);
        CU_ASSERT(bl == alen && (alen == 0 || memcmp(back, attrs, alen) == 0));
        dcmc_free(back, bl);
        back = NULL;
        bl = 0;
        /* A container's pad byte (DICOM: after an odd payload) is not part of the payload: the
         * library takes exactly the header's payload bytes, the container strips the pad. */
        uint8_t *padded = malloc(vpl + 1);
        memcpy(padded, vp, vpl);
        padded[vpl] = 0;
        uint8_t *ct2 = unhex(kat_get(&k, "cipher"), &cl);
        CU_ASSERT_NOT_EQUAL(dcmc_image_decrypt(&key, &rh, 1, ct2, cl, padded, vpl + 1, &back, &bl),
                            DCMC_OK);
        dcmc_free(back, bl);
        free(ct2);
        free(padded);
        free(ct);
        free(vp);
        free(vh);
    }
    dcmc_free(pl, pll);
    free(px);
    free(plain);
    free(attrs);
    free(nonce);
    kat_free(&k);
}

static void test_vectors(void)
{
    /* Every *.kat file runs; these must be among them (a lost file must not pass unnoticed). */
    static const char *const required[] = {
        "gray8_6x8",         "u12_7x5",        "s16_9x9",
        "rgb8_p0_4x6_2f",    "rgb8_p1_5x4",    "bit1_5x7_2f",
        "u32_4x4",           "gray8_1x1",      "resnet_u16_8x8_nostd",
        "residue_u12_6x6",   "s12_hb13_6x5",   "u16_32x32",
        "pass_gray8_4x4",    "gray8_64x48_2r_3b", "odd_payload_gray8_5x3",
        "bit1_3x5_3f_junk",
    };
    enum { NREQ = sizeof required / sizeof required[0] };
    int seen[NREQ] = {0};
    const char *dir = dcmc_test_path("tests/kat/vectors");
    char base[4096];
    snprintf(base, sizeof base, "%s", dir);
    DIR *d = opendir(base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".kat") != 0)
            continue;
        for (int i = 0; i < NREQ; i++)
            if (strlen(required[i]) == n - 4 && strncmp(e->d_name, required[i], n - 4) == 0)
                seen[i] = 1;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        run_kat(path);
        count++;
    }
    closedir(d);
    CU_ASSERT(count >= NREQ);
    for (int i = 0; i < NREQ; i++) {
        CU_ASSERT(seen[i]);
        if (!seen[i])
            fprintf(stderr, "\n  KAT %s.kat is missing", required[i]);
    }
}

int dcmc_test_register_kat(void)
{
    static const dcmc_test_case cases[] = {
        {"independent known-answer vectors", test_vectors},
        {NULL, NULL},
    };
    return dcmc_test_add_suite("kat", cases);
}
