/*
 * test_paper.c - the paper's trained networks in C (src/research/paper*.c) against the PyTorch
 * reference: the fixtures research/paper/fixture.py wrote in float64 from the shipped weight
 * files (tests/paper/ *.fix), within research/paper/README.md's tolerance; damaged weight files
 * refused with the right status; the paper's logistic XOR.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dcmcrypt/research.h"
#include "test_common.h"

#define TOL 1e-4 /* README, "Fixture": absolute, on [0, 1] values */

static const char *const k_variants[2] = {"at-resnet-cm", "resnet-cm"};

/* A whole small file into buf (at most cap bytes): its length, 0 when unreadable. */
static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    const size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float f32(const uint8_t *p)
{
    const uint32_t u = u32(p);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static unsigned u16(const uint8_t *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/* May the port's rounding of v * L differ from the reference's by one (README: within
 * 1e-4 L of a half-integer)? */
static int near_half(double v, double L)
{
    const double s = v * L;
    return fabs(s - floor(s) - 0.5) <= TOL * L;
}

/* One network on the fixture's images at offset in (u16) against offset ref (f32) and the
 * rounded image at offset rq (u16): the largest difference. */
static double check_stage(const dcmc_paper_model *m, int decoder, const uint8_t *fx, size_t h,
                          size_t w, size_t in, size_t ref, size_t rq, int *bad_q)
{
    const size_t n = h * w;
    const double L = 255;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    CU_ASSERT_FATAL(x && y);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(u16(fx + in + 2 * i) / L);
    CU_ASSERT_EQUAL(dcmc_paper_forward(m, decoder, h, w, x, y, 0), DCMC_OK);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double r = f32(fx + ref + 4 * i);
        worst = fmax(worst, fabs(y[i] - r));
        const long q = lrint(y[i] * L), qr = (long)u16(fx + rq + 2 * i);
        if (q != qr && !(labs(q - qr) == 1 && near_half(r, L)))
            (*bad_q)++;
    }
    free(x);
    free(y);
    return worst;
}

static void test_fixtures(void)
{
    static uint8_t fx[65536], wf[400000];
    for (int v = 0; v < 2; v++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tests/paper/%s.fix", k_variants[v]);
        const size_t len = slurp(dcmc_test_path(rel), fx, sizeof fx);
        CU_ASSERT_FATAL(len > 64 && !memcmp(fx, "DCMCPFIX", 8) && u32(fx + 8) == 1);
        const size_t h = u32(fx + 12), w = u32(fx + 16), n = h * w;
        CU_ASSERT_FATAL(u32(fx + 20) == 8 && len == 64 + 14 * n + 32);
        snprintf(rel, sizeof rel, "research/paper/weights/%s.bin", k_variants[v]);
        const char *path = dcmc_test_path(rel);
        uint8_t md[32];
        const size_t wl = slurp(path, wf, sizeof wf);
        CU_ASSERT_FATAL(EVP_Digest(wf, wl, md, NULL, EVP_sha256(), NULL) == 1);
        CU_ASSERT(memcmp(md, fx + 32, 32) == 0); /* the fixture belongs to this weight file */
        dcmc_paper_model *m = NULL;
        CU_ASSERT_FATAL(dcmc_paper_model_load(path, &m) == DCMC_OK);
        CU_ASSERT_EQUAL(dcmc_paper_model_attention(m), v == 0);
        CU_ASSERT_EQUAL(dcmc_paper_model_bits(m), 8);
        int bad_q = 0, bad_y = 0;
        const double de = check_stage(m, 0, fx, h, w, 64, 64 + 2 * n, 64 + 6 * n, &bad_q);
        const double dd = check_stage(m, 1, fx, h, w, 64 + 6 * n, 64 + 8 * n, 64 + 12 * n, &bad_y);
        printf("\n    %s: C vs PyTorch (float64) max |E - e| %.3g, |D - d| %.3g ", k_variants[v],
               de, dd);
        CU_ASSERT(de <= TOL);
        CU_ASSERT(dd <= TOL);
        CU_ASSERT_EQUAL(bad_q, 0);
        CU_ASSERT_EQUAL(bad_y, 0);
        dcmc_paper_model_free(m);
    }
}

/* A copy of the shipped at-resnet-cm weights with one change, loaded: the status. */
static dcmc_status load_changed(const char *tmp, size_t len, long flip, size_t cut, int extra)
{
    static uint8_t wf[400000];
    const size_t wl = slurp(dcmc_test_path("research/paper/weights/at-resnet-cm.bin"), wf,
                            sizeof wf);
    CU_ASSERT_FATAL(wl == 307136);
    if (flip >= 0)
        wf[flip] ^= 0x10;
    FILE *f = fopen(tmp, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fwrite(wf, 1, len ? len : wl - cut, f) == (len ? len : wl - cut));
    if (extra)
        fputc(0, f);
    fclose(f);
    dcmc_paper_model *m = (dcmc_paper_model *)1;
    const dcmc_status st = dcmc_paper_model_load(tmp, &m);
    if (st != DCMC_OK)
        CU_ASSERT_PTR_NULL(m);
    dcmc_paper_model_free(st == DCMC_OK ? m : NULL);
    remove(tmp);
    return st;
}

static void test_damaged(void)
{
    char tmp[] = "/tmp/dcmc-paper-XXXXXX";
    const int fd = mkstemp(tmp);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(load_changed(tmp, 0, -1, 0, 0), DCMC_OK);
    CU_ASSERT_EQUAL(load_changed(tmp, 0, 150000, 0, 0), DCMC_ERR_INTEGRITY); /* a weight */
    CU_ASSERT_EQUAL(load_changed(tmp, 0, 307136 - 5, 0, 0), DCMC_ERR_INTEGRITY); /* digest */
    CU_ASSERT_EQUAL(load_changed(tmp, 0, -1, 1, 0), DCMC_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(load_changed(tmp, 20, -1, 0, 0), DCMC_ERR_TRUNCATED);   /* in the header */
    CU_ASSERT_EQUAL(load_changed(tmp, 0, -1, 0, 1), DCMC_ERR_FORMAT);       /* a byte too many */
    CU_ASSERT_EQUAL(load_changed(tmp, 0, 2, 0, 0), DCMC_ERR_FORMAT);        /* magic */
    CU_ASSERT_EQUAL(load_changed(tmp, 0, 8, 0, 0), DCMC_ERR_UNSUPPORTED);   /* version 17 */
    CU_ASSERT_EQUAL(load_changed(tmp, 0, 36, 0, 0), DCMC_ERR_FORMAT); /* N 16 less: too long */
    CU_ASSERT_EQUAL(dcmc_paper_model_load("/nonexistent/x.bin", &(dcmc_paper_model *){NULL}),
                    DCMC_ERR_IO);
    close(fd);
}

static void test_xor(void)
{
    dcmc_key k1, k2;
    memset(k1.bytes, 0x11, sizeof k1.bytes);
    k2 = k1;
    k2.bytes[31] ^= 1;
    uint8_t n1[DCMC_NONCE_BYTES] = {1}, n2[DCMC_NONCE_BYTES] = {2};
    enum { N = 4096 };
    static uint32_t v[N], a[N], b[N], c[N];
    dcmc_test_rng rng = {42};
    for (unsigned bits = 1; bits <= 16; bits += 7) {
        for (size_t i = 0; i < N; i++)
            v[i] = (uint32_t)(dcmc_test_next(&rng) & ((1u << bits) - 1));
        memcpy(a, v, sizeof v);
        CU_ASSERT_EQUAL(dcmc_paper_xor(&k1, n1, bits, a, N), DCMC_OK);
        memcpy(b, a, sizeof a);
        CU_ASSERT_EQUAL(dcmc_paper_xor(&k1, n1, bits, b, N), DCMC_OK);
        CU_ASSERT(memcmp(b, v, sizeof v) == 0); /* decrypt(encrypt(q)) == q exactly */
        size_t same_k = 0, same_n = 0, in_range = 0;
        memcpy(b, v, sizeof v);
        memcpy(c, v, sizeof v);
        CU_ASSERT_EQUAL(dcmc_paper_xor(&k2, n1, bits, b, N), DCMC_OK);
        CU_ASSERT_EQUAL(dcmc_paper_xor(&k1, n2, bits, c, N), DCMC_OK);
        for (size_t i = 0; i < N; i++) {
            same_k += a[i] == b[i];
            same_n += a[i] == c[i];
            in_range += a[i] < (1u << bits);
        }
        CU_ASSERT_EQUAL(in_range, N);
        /* Another key or nonce: agreement at chance level (1/2^bits), far from all. */
        CU_ASSERT(same_k < N / 2 + N / (1u << bits) && same_n < N / 2 + N / (1u << bits));
        CU_ASSERT(same_k < N && same_n < N);
    }
    CU_ASSERT_EQUAL(dcmc_paper_xor(&k1, n1, 17, v, N), DCMC_ERR_ARG);
}

/* The thread count changes nothing: every reduction is summed in row order. */
static void test_threads(void)
{
    dcmc_paper_model *m = NULL;
    CU_ASSERT_FATAL(dcmc_paper_model_load(
                        dcmc_test_path("research/paper/weights/at-resnet-cm.bin"), &m) == DCMC_OK);
    enum { H = 37, W = 61 };
    static float x[H * W], y1[H * W], y2[H * W];
    for (size_t i = 0; i < H * W; i++)
        x[i] = (float)((i * 7919) % 256) / 255.0f;
    CU_ASSERT_EQUAL(dcmc_paper_forward(m, 0, H, W, x, y1, 1), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_paper_forward(m, 0, H, W, x, y2, 2), DCMC_OK);
    CU_ASSERT(memcmp(y1, y2, sizeof y1) == 0);
    CU_ASSERT_EQUAL(dcmc_paper_forward(m, 2, H, W, x, y2, 2), DCMC_ERR_ARG);
    dcmc_paper_model_free(m);
}

int dcmc_test_register_paper(void)
{
    static const dcmc_test_case cases[] = {
        {"C forward pass vs PyTorch fixtures (tests/paper/*.fix)", test_fixtures},
        {"damaged, truncated, wrong-version weight files refused", test_damaged},
        {"the paper's logistic XOR: inverse, key and nonce dependence", test_xor},
        {"thread count changes no bit", test_threads},
        {NULL, NULL},
    };
    return dcmc_test_add_suite("paper", cases);
}
