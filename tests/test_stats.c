/*
 * test_stats.c - statistical properties of the cipher on real 512x512 medical images
 * (SCHEME.md properties 6, 7 and 11), judged against the critical values of the literature:
 * Wu-Noonan-Agaian NPCR/UACI intervals at alpha = 0.05, histogram chi-square < 293.25 (255 dof,
 * alpha = 0.05), entropy >= 7.9990, |adjacent correlation| < 0.005.
 *
 * Each of those tests rejects a perfect cipher 5 % of the time, so a single run proves nothing
 * either way. The tests run T trials (fresh key and nonce each) per image and require (a) the
 * pass count not to be implausibly low for a 5 % test (at most 2 of 8 failures: P < 0.6 % for an
 * ideal cipher) and (b) the trial means to sit within 3 standard errors of the ideal value, on
 * either side: a cipher whose differences are "too good" is as distinguishable as a weak one.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/research.h"
#include "dcmcrypt/io.h"
#include "dcmcrypt/metrics.h"
#include "test_common.h"

#define TRIALS 8

static const char *k_images[] = {
    "sample-data/png/nema-wg04_MR1_brain_512x512_gray8.png",
    "sample-data/png/nema-wg04_CT1_chest_512x512_gray8.png",
    "sample-data/png/covid-19-pneumonia-2_512x512_gray8.png",
};

static void encrypt_vals(const dcmc_key *key, const uint8_t nonce[16], const uint8_t *plain,
                         size_t n, uint32_t *vals)
{
    dcmc_layout l = {512, 512, 1, 0, 8, 8, 7, 0};
    dcmc_options o;
    dcmc_options_default(&o);
    o.nonce = nonce;
    uint8_t *px = malloc(n);
    memcpy(px, plain, n);
    dcmc_header h;
    uint8_t *pl;
    size_t pll;
    CU_ASSERT_EQUAL_FATAL(dcmc_image_encrypt(key, NULL, &o, &l, 1, px, n, NULL, 0, &h, &pl, &pll),
                          DCMC_OK);
    for (size_t i = 0; i < n; i++)
        vals[i] = px[i];
    dcmc_free(pl, pll);
    free(px);
}

static void test_real_images(void)
{
    const size_t n = 512 * 512;
    double npcr_min, uaci_lo, uaci_hi;
    CU_ASSERT_EQUAL_FATAL(dcmc_metric_npcr_uaci_critical(n, 8, 0.05, &npcr_min, &uaci_lo, &uaci_hi), 0);
    /* The published values for 512x512 8-bit. */
    CU_ASSERT(fabs(npcr_min - 0.995893) < 1e-6);
    CU_ASSERT(fabs(uaci_lo - 0.333730) < 1e-6 && fabs(uaci_hi - 0.335541) < 1e-6);
    const double mu_n = 255.0 / 256, sd_n = sqrt(255.0 / (n * 256.0 * 256.0));
    const double mu_u = 257.0 / 768, sd_u = sqrt(257.0 * (255.0 * 255 + 510 + 3) / (18.0 * 65536 * 255 * n));

    dcmc_test_rng rng = {2024};
    uint32_t *c0 = malloc(n * sizeof *c0), *c1 = malloc(n * sizeof *c1);
    for (size_t im = 0; im < sizeof k_images / sizeof k_images[0]; im++) {
        dcmc_raster r;
        if (dcmc_png_read(dcmc_test_path(k_images[im]), &r) != DCMC_OK) {
            fprintf(stderr, "(skipping missing %s) ", k_images[im]);
            continue;
        }
        CU_ASSERT_FATAL(r.width == 512 && r.height == 512 && r.channels == 1 && r.bit_depth == 8);
        uint8_t *plain = r.data;
        int fail[6] = {0};
        double sum_npcr = 0, sum_uaci = 0, sum_npcr_k = 0, sum_uaci_k = 0, min_ent = 9;
        double sum_corr = 0;
        int corr_fail = 0;
        for (int t = 0; t < TRIALS; t++) {
            dcmc_key key;
            uint8_t nonce[16];
            for (int i = 0; i < 32; i++)
                key.bytes[i] = (uint8_t)dcmc_test_next(&rng);
            for (int i = 0; i < 16; i++)
                nonce[i] = (uint8_t)dcmc_test_next(&rng);
            encrypt_vals(&key, nonce, plain, n, c0);
            double ent = dcmc_metric_entropy(c0, n, 8), chi = dcmc_metric_chi2(c0, n, 8);
            min_ent = ent < min_ent ? ent : min_ent;
            fail[0] += chi >= 293.25;
            for (int d = 0; d < 4; d++) {
                double c = fabs(dcmc_metric_correlation(c0, 512, 512, d));
                sum_corr += c;
                corr_fail += c >= 0.005;
            }
            /* One pixel, one level: key and nonce fixed. */
            size_t pos = dcmc_test_next(&rng) % n;
            uint8_t saved = plain[pos];
            plain[pos] = saved == 255 ? 254 : saved + 1;
            encrypt_vals(&key, nonce, plain, n, c1);
            plain[pos] = saved;
            double npcr, uaci;
            dcmc_metric_npcr_uaci(c0, c1, n, 8, &npcr, &uaci);
            fail[1] += npcr < npcr_min;
            fail[2] += uaci < uaci_lo || uaci > uaci_hi;
            sum_npcr += npcr;
            sum_uaci += uaci;
            /* One key bit, same nonce. */
            int bit = (int)(dcmc_test_next(&rng) % 256);
            key.bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            encrypt_vals(&key, nonce, plain, n, c1);
            dcmc_metric_npcr_uaci(c0, c1, n, 8, &npcr, &uaci);
            fail[3] += npcr < npcr_min;
            fail[4] += uaci < uaci_lo || uaci > uaci_hi;
            sum_npcr_k += npcr;
            sum_uaci_k += uaci;
        }
        const double se_n = 3 * sd_n / sqrt(TRIALS), se_u = 3 * sd_u / sqrt(TRIALS);
        fprintf(stderr, "\n  %s: fails chi2 %d npcr %d uaci %d npcr_key %d uaci_key %d of %d; "
                "mean npcr %.5f%% uaci %.5f%% (key: %.5f%% %.5f%%); min entropy %.5f; mean |corr| %.5f, %d of %d above 0.005",
                k_images[im], fail[0], fail[1], fail[2], fail[3], fail[4], TRIALS,
                100 * sum_npcr / TRIALS, 100 * sum_uaci / TRIALS, 100 * sum_npcr_k / TRIALS,
                100 * sum_uaci_k / TRIALS, min_ent, sum_corr / (4 * TRIALS), corr_fail, 4 * TRIALS);
        for (int f = 0; f < 5; f++)
            CU_ASSERT(fail[f] <= 2);
        CU_ASSERT(fabs(sum_npcr / TRIALS - mu_n) < se_n);
        CU_ASSERT(fabs(sum_uaci / TRIALS - mu_u) < se_u);
        CU_ASSERT(fabs(sum_npcr_k / TRIALS - mu_n) < se_n);
        CU_ASSERT(fabs(sum_uaci_k / TRIALS - mu_u) < se_u);
        CU_ASSERT(min_ent >= 7.9990);
        /* Random 512x512 data: |r| ~ |N(0, 1/512)|, mean 0.00156, P(|r| >= 0.005) = 1 %; four
         * or more of 32 would happen with probability 5e-4. */
        CU_ASSERT(corr_fail <= 3);
        CU_ASSERT(sum_corr / (4 * TRIALS) < 0.0025);
        dcmc_raster_free(&r);
    }
    free(c0);
    free(c1);
}

/* The metrics themselves against values worked out by hand. */
static void test_metrics_by_hand(void)
{
    uint32_t a[4] = {0, 0, 255, 255}, b[4] = {0, 255, 255, 0};
    double npcr, uaci;
    dcmc_metric_npcr_uaci(a, b, 4, 8, &npcr, &uaci);
    CU_ASSERT_DOUBLE_EQUAL(npcr, 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(uaci, 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_entropy(a, 4, 8), 1.0, 1e-12);
    /* 4 values, 256 bins: expected 1/64 each; two bins of 2 -> 2*(2-e)^2/e + 254*e. */
    double e = 4.0 / 256;
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_chi2(a, 4, 8), 2 * (2 - e) * (2 - e) / e + 254 * e, 1e-9);
    uint32_t g[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}; /* a ramp: perfectly correlated */
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_correlation(g, 3, 3, 0), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_correlation(g, 3, 3, 1), 1.0, 1e-12);
    uint32_t chk[16] = {0, 9, 0, 9, 9, 0, 9, 0, 0, 9, 0, 9, 9, 0, 9, 0}; /* checkerboard */
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_correlation(chk, 4, 4, 0), -1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_correlation(chk, 4, 4, 2), 1.0, 1e-12);
}

static void test_more_metrics_by_hand(void)
{
    /* PSNR: mean squared error 65025/2 against a peak of 255 is 10 log10(2) dB. */
    uint32_t a[2] = {0, 0}, b[2] = {0, 255};
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_psnr(a, b, 2, 8), 10 * log10(2.0), 1e-9);
    CU_ASSERT(isinf(dcmc_metric_psnr(a, a, 2, 8)));
    /* Local entropy: a constant image has none; blocks of two equally frequent values have 1 bit. */
    static uint32_t img[88 * 88];
    for (size_t i = 0; i < 88 * 88; i++)
        img[i] = 7;
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_local_entropy(img, 88, 88, 8, 4, 44, 1), 0.0, 1e-12);
    for (size_t i = 0; i < 88 * 88; i++)
        img[i] = (uint32_t)(i % 2) * 200;
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_local_entropy(img, 88, 88, 8, 4, 44, 1), 1.0, 1e-12);
    CU_ASSERT(isnan(dcmc_metric_local_entropy(img, 88, 88, 8, 5, 44, 1))); /* only 4 blocks */
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_ssim(img, img, 88, 88, 8), 1.0, 1e-12);
    /* Sampled correlation of a perfectly correlated ramp is 1 whatever pairs are drawn. */
    for (size_t i = 0; i < 88 * 88; i++)
        img[i] = (uint32_t)(i % 88 + i / 88);
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_correlation_sampled(img, 88, 88, 0, 3000, 9), 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(dcmc_metric_correlation_sampled(img, 88, 88, 1, 3000, 9), 1.0, 1e-9);
}

/* Every metric against tests/metrics/refs.txt, computed by numpy (tests/metrics/refgen.py) from
 * the same input images, rebuilt here from the generator's formula. */
static void numpy_images(unsigned w, unsigned h, unsigned bits, uint64_t seed, uint64_t amp,
                         uint32_t flip, uint32_t *a, uint32_t *b)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    uint64_t s = seed;
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            uint64_t r = s >> 33;
            uint64_t v = ((uint64_t)(x * 3 + y * 2 + ((x * y) >> 4)) * (mask / 255) + r % amp) & mask;
            a[y * w + x] = (uint32_t)v;
            b[y * w + x] = (uint32_t)v ^ (((r >> 20) & 3) == 0 ? flip : 0);
        }
}

static double c_metric(const char *name, const uint32_t *a, const uint32_t *b, unsigned w,
                       unsigned h, unsigned bits)
{
    const size_t n = (size_t)w * h;
    const unsigned hb = bits > 16 ? 16 : bits;
    double np, ua, crit[3];
    int d;
    if (!strcmp(name, "entropy"))
        return dcmc_metric_entropy(a, n, hb);
    if (!strcmp(name, "chi2"))
        return dcmc_metric_chi2(a, n, hb);
    if (sscanf(name, "corr_sampled%d", &d) == 1)
        return dcmc_metric_correlation_sampled(a, w, h, d, 500, 7 + (uint64_t)d);
    if (sscanf(name, "corr%d", &d) == 1)
        return dcmc_metric_correlation(a, w, h, d);
    if (!strcmp(name, "lse"))
        return dcmc_metric_local_entropy(a, w, h, hb, 4, 22, 5);
    if (!strcmp(name, "psnr"))
        return dcmc_metric_psnr(a, b, n, bits);
    if (!strcmp(name, "ssim"))
        return dcmc_metric_ssim(a, b, w, h, bits);
    dcmc_metric_npcr_uaci(a, b, n, bits, &np, &ua);
    if (!strcmp(name, "npcr"))
        return np;
    if (!strcmp(name, "uaci"))
        return ua;
    const char *tag = strrchr(name, '_');
    double alpha = !tag ? 0 : !strcmp(tag, "_05") ? 0.05 : !strcmp(tag, "_01") ? 0.01 : 0.001;
    if (dcmc_metric_npcr_uaci_critical(n, bits, alpha, &crit[0], &crit[1], &crit[2]) != 0)
        return NAN;
    return !strncmp(name, "npcr_crit", 9) ? crit[0] : !strncmp(name, "uaci_lo", 7) ? crit[1] : crit[2];
}

static void test_metrics_numpy(void)
{
    FILE *f = fopen(dcmc_test_path("tests/metrics/refs.txt"), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[256], name[64];
    unsigned w = 0, h = 0, bits = 0;
    uint32_t *a = NULL, *b = NULL;
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long seed, amp;
        unsigned flip;
        double want;
        if (line[0] == '#')
            continue;
        if (sscanf(line, "case %63s %u %u %u %llu %llu %u", name, &w, &h, &bits, &seed, &amp,
                   &flip) == 7) {
            free(a);
            free(b);
            a = malloc((size_t)w * h * sizeof *a);
            b = malloc((size_t)w * h * sizeof *b);
            numpy_images(w, h, bits, seed, amp, flip, a, b);
            continue;
        }
        CU_ASSERT_FATAL(a != NULL && sscanf(line, "%63s %lf", name, &want) == 2);
        double got = c_metric(name, a, b, w, h, bits);
        if (!(fabs(got - want) <= 1e-9 * fmax(1, fabs(want))))
            fprintf(stderr, "\n  %s (%ux%u, %u bits): numpy %.12g, C %.12g\n", name, w, h, bits,
                    want, got);
        CU_ASSERT(fabs(got - want) <= 1e-9 * fmax(1, fabs(want)));
        checked++;
    }
    fclose(f);
    free(a);
    free(b);
    CU_ASSERT(checked >= 4 * 24); /* four images, every metric */
}

/* The random-data references the suite reports beside each figure: the published means. */
static void test_random_references(void)
{
    double lo, hi, mean;
    CU_ASSERT_EQUAL_FATAL(dcmc_metric_local_entropy_interval(512, 512, 8, 30, 44, 200, 0.05, 3, &lo,
                                                             &hi, &mean), 0);
    CU_ASSERT(fabs(mean - 7.902469) < 0.0003); /* Wu et al. 2013 */
    CU_ASSERT(lo < mean && mean < hi && hi - lo < 0.01);
    double e = dcmc_metric_entropy_expected(512 * 512, 8, 10, 4);
    CU_ASSERT(fabs(e - 7.99930) < 0.00005);
}

/* The XOR baselines fail the differential tests, as they must: one changed pixel changes one
 * cipher pixel. And the chaos keystream is the generator of the cipher. */
static void test_baselines(void)
{
    dcmc_layout l = {64, 64, 1, 0, 8, 8, 7, 0};
    dcmc_key key;
    memset(key.bytes, 9, 32);
    uint8_t nonce[16] = {1}, p0[4096], p1[4096];
    for (int i = 0; i < 4096; i++)
        p0[i] = p1[i] = (uint8_t)(i / 64 + i % 64);
    p1[1000]++;
    for (int bl = DCMC_BASELINE_LOGISTIC_XOR; bl <= DCMC_BASELINE_AES256_CTR; bl++) {
        uint8_t c0[4096], c1[4096];
        memcpy(c0, p0, sizeof c0);
        memcpy(c1, p1, sizeof c1);
        CU_ASSERT_EQUAL(dcmc_baseline_encrypt((dcmc_baseline)bl, &key, nonce, &l, c0, 4096), DCMC_OK);
        CU_ASSERT_EQUAL(dcmc_baseline_encrypt((dcmc_baseline)bl, &key, nonce, &l, c1, 4096), DCMC_OK);
        int diff = 0, changed = 0;
        for (int i = 0; i < 4096; i++) {
            diff += c0[i] != c1[i];
            changed += c0[i] != p0[i];
        }
        CU_ASSERT_EQUAL(diff, 1);
        CU_ASSERT(changed > 4000);
        CU_ASSERT_EQUAL(dcmc_baseline_encrypt((dcmc_baseline)bl, &key, nonce, &l, c0, 4096), DCMC_OK);
        CU_ASSERT(memcmp(c0, p0, 4096) == 0); /* XOR: its own inverse */
    }
    uint8_t ks[64], ks2[64];
    CU_ASSERT_EQUAL(dcmc_chaos_keystream(&key, nonce, ks, sizeof ks), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_chaos_keystream(&key, nonce, ks2, sizeof ks2), DCMC_OK);
    CU_ASSERT(memcmp(ks, ks2, sizeof ks) == 0);
    nonce[0] ^= 1;
    CU_ASSERT_EQUAL(dcmc_chaos_keystream(&key, nonce, ks2, sizeof ks2), DCMC_OK);
    CU_ASSERT(memcmp(ks, ks2, sizeof ks) != 0);
}

int dcmc_test_register_stats(void)
{
    static const dcmc_test_case cases[] = {
        {"metrics against hand-computed values", test_metrics_by_hand},
        {"PSNR, SSIM, local entropy, sampled correlation by hand", test_more_metrics_by_hand},
        {"metrics against numpy (tests/metrics/refs.txt)", test_metrics_numpy},
        {"random-data references by Monte Carlo", test_random_references},
        {"XOR baselines fail NPCR; chaos keystream", test_baselines},
        {"NPCR/UACI/chi2/entropy/correlation on real images", test_real_images},
        {NULL, NULL},
    };
    return dcmc_test_add_suite("stats", cases);
}
