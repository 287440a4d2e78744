/*
 * dcmcryptstat - the evaluation suite: for each image (DICOM, PNG, TIFF) and each scheme, the
 * statistics image-cipher papers report, beside the ideal and critical values of random data,
 * as a Markdown report, JSON lines (--json) and PNG figures (--out-dir). --keystream N writes the
 * chaos keystream alone for dieharder. The maths is in src/metrics; this file only drives it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/research.h"
#include "dcmcrypt/dicom.h"
#include "dcmcrypt/io.h"
#include "dcmcrypt/metrics.h"
#include "statfig.h"

static const char *k_usage =
    "usage: dcmcryptstat [options] file...\n"
    "Evaluate the cipher and its comparison schemes on DICOM, PNG or TIFF images (first frame,\n"
    "first sample plane): histogram, chi-square, entropy, local entropy, adjacent correlation,\n"
    "NPCR/UACI for a one-pixel and a one-key-bit change, PSNR/SSIM of the decryption, time.\n"
    "  -o, --out-dir DIR   write report.md (results.jsonl with --json) and, per image and\n"
    "                      scheme, NAME.SCHEME.{triplet,hist,scatter}.png there\n"
    "                      (default: the report on stdout, no figures)\n"
    "      --json          JSON lines on stdout instead of the Markdown report\n"
    "      --schemes LIST  comma-separated (default: all): at-resnet-cm, resnet-cm,\n"
    "                      at-resnet-cm-chaos, resnet-cm-chaos, logistic-xor, aes-256-ctr\n"
    "      --pairs N       random pairs for the sampled correlation (default 3000)\n"
    "      --trials N      Monte Carlo images for the random-data references (default 200)\n"
    "      --runs N        repeat each evaluation with N nonces (default 1, the literature's\n"
    "                      single test); N > 1 reports means and failure counts and judges\n"
    "                      each test by its failure rate and mean (see the man page)\n"
    "      --key-file F    key (default: a fixed evaluation key, so runs are reproducible)\n"
    "      --keystream N   write N bytes of the logistic keystream alone to stdout and exit\n"
    "  -h, --help          this text;  --version  versions\n"
    "exit status: 0 done, 1 usage, 2 an input could not be read, 4 report or figure not written\n";

typedef struct scheme {
    const char *name;
    int preset;   /* 0: a baseline */
    int standard; /* ChaCha20 layer */
    dcmc_baseline baseline;
} scheme;

static const scheme k_schemes[] = {
    {"at-resnet-cm", DCMC_PRESET_AT_RESNET_CM, 1, 0},
    {"resnet-cm", DCMC_PRESET_RESNET_CM, 1, 0},
    {"at-resnet-cm-chaos", DCMC_PRESET_AT_RESNET_CM, 0, 0},
    {"resnet-cm-chaos", DCMC_PRESET_RESNET_CM, 0, 0},
    {"logistic-xor", 0, 0, DCMC_BASELINE_LOGISTIC_XOR},
    {"aes-256-ctr", 0, 0, DCMC_BASELINE_AES256_CTR},
};
#define NSCHEMES (sizeof k_schemes / sizeof k_schemes[0])

typedef struct image {
    char name[256];
    dcmc_layout l; /* one sample plane: samples 1 */
    size_t bytes;
    uint8_t *px;
} image;

typedef struct result {
    double entropy, chi2, corr[4], corr_s[4], lse, npcr, uaci, npcr_key, uaci_key, psnr, ssim, ms;
    double corr_abs; /* mean |corr| over the four directions, as papers tabulate it */
} result;

/* The judged tests, each at alpha = 0.05 (decryption: exact or not). */
enum { T_CHI2, T_LSE, T_NPCR, T_UACI, T_NPCR_KEY, T_UACI_KEY, T_DEC, NTESTS };
static const char *const k_test_names[NTESTS] = {"chi2", "lse", "npcr", "uaci",
                                                 "npcr_key", "uaci_key", "decrypt"};

/* Add w * r to sum (w = 1/runs makes sum the mean over the runs); ms keeps the minimum, the
 * fastest run. first: start afresh. */
static void result_add(result *sum, const result *r, double w, int first)
{
    const double ms = first ? r->ms : fmin(sum->ms, r->ms);
    if (first)
        memset(sum, 0, sizeof *sum);
    sum->entropy += w * r->entropy;
    sum->chi2 += w * r->chi2;
    for (int d = 0; d < 4; d++) {
        sum->corr[d] += w * r->corr[d];
        sum->corr_s[d] += w * r->corr_s[d];
    }
    sum->lse += w * r->lse;
    sum->npcr += w * r->npcr;
    sum->uaci += w * r->uaci;
    sum->npcr_key += w * r->npcr_key;
    sum->uaci_key += w * r->uaci_key;
    sum->ssim += w * r->ssim;
    sum->corr_abs += w * r->corr_abs;
    sum->ms = ms;
}

/* The largest number of failures of a 5 % test in n runs that an ideal cipher exceeds with
 * probability below 0.1 % (binomial tail); 0 for a single run. The report judges some 200
 * tests (images x schemes x tests): at 1 % an ideal cipher would fail two of them. */
static int binomial_k_max(size_t n)
{
    if (n <= 1)
        return 0;
    for (int k = 0; k <= (int)n; k++) {
        double tail = 0; /* P(X > k) */
        for (int j = k + 1; j <= (int)n; j++)
            tail += exp(lgamma((double)n + 1) - lgamma(j + 1.0) - lgamma((double)n - j + 1) +
                        j * log(0.05) + ((double)n - j) * log(0.95));
        if (tail < 0.001)
            return k;
    }
    return (int)n;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The first frame's first sample plane as a one-sample image of the same word size. */
static int load_image(const char *path, image *im, char *msg, size_t mlen)
{
    memset(im, 0, sizeof *im);
    const char *base = strrchr(path, '/');
    snprintf(im->name, sizeof im->name, "%s", base ? base + 1 : path);
    dcmc_raster r;
    dcmc_status st = dcmc_raster_read(path, &r);
    dcmc_layout full;
    uint8_t *data = NULL;
    size_t len = 0;
    if (st == DCMC_OK) {
        st = dcmc_raster_layout(&r, &full);
        if (st != DCMC_OK && r.channels != 1) {
            /* alpha: keep the first channel */
            full = (dcmc_layout){r.height, r.width, r.channels, 0, r.bit_depth, r.bit_depth,
                                 r.bit_depth - 1, 0};
            st = DCMC_OK;
        }
        data = r.data;
        len = r.size;
    } else {
        dcmc_dicom_info info;
        st = dcmc_dicom_read_pixels(path, &info, &data, &len, msg, mlen);
        if (st != DCMC_OK)
            return -1;
        full = info.layout;
    }
    if (st != DCMC_OK || full.bits_allocated < 8) {
        snprintf(msg, mlen, "%s", st != DCMC_OK ? dcmc_status_str(st) : "1-bit images are not evaluated");
        free(data);
        return -1;
    }
    im->l = full;
    im->l.samples = 1;
    im->l.planar = 0;
    dcmc_layout_frame_bytes(&im->l, &im->bytes);
    im->px = malloc(im->bytes);
    const size_t B = full.bits_allocated / 8, n = (size_t)full.rows * full.cols;
    for (size_t i = 0; i < n; i++) {
        size_t src = full.planar ? i : i * full.samples;
        memcpy(im->px + i * B, data + src * B, B);
    }
    free(data);
    return 0;
}

static void values(const image *im, const uint8_t *px, uint32_t *v)
{
    const size_t n = (size_t)im->l.rows * im->l.cols, B = im->l.bits_allocated / 8;
    const unsigned low = im->l.high_bit - im->l.bits_stored + 1;
    const uint64_t mask = ((uint64_t)1 << im->l.bits_stored) - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = 0;
        for (size_t b = 0; b < B; b++)
            w |= (uint64_t)px[i * B + b] << (8 * b);
        v[i] = (uint32_t)((w >> low) & mask);
    }
}

/* Encrypt a copy of px with a scheme; decrypt into dec if asked. *ms gets the milliseconds of
 * the encryption. A failure of the cipher is returned, never measured as if it were ciphertext. */
static dcmc_status run_scheme(const scheme *s, const image *im, const dcmc_key *key,
                              const uint8_t nonce[16], const uint8_t *px, uint8_t *ct,
                              uint8_t *dec, double *ms)
{
    memcpy(ct, px, im->bytes);
    double t0 = now_ms();
    dcmc_status st;
    if (s->preset) {
        dcmc_options o;
        dcmc_options_default(&o);
        st = dcmc_preset_by_id((uint8_t)s->preset, &o.preset);
        o.flags = s->standard ? DCMC_FLAG_STANDARD_LAYER : 0;
        o.nonce = nonce;
        dcmc_header h;
        uint8_t *pl = NULL, *a = NULL;
        size_t pll = 0, al = 0;
        if (st == DCMC_OK)
            st = dcmc_image_encrypt(key, NULL, &o, &im->l, 1, ct, im->bytes, NULL, 0, &h, &pl, &pll);
        *ms = now_ms() - t0;
        if (st == DCMC_OK && dec) {
            memcpy(dec, ct, im->bytes);
            st = dcmc_image_decrypt(key, &h, 0, dec, im->bytes, pl, pll, &a, &al);
        }
        dcmc_free(pl, pll);
        dcmc_free(a, al);
        return st;
    }
    st = dcmc_baseline_encrypt(s->baseline, key, nonce, &im->l, ct, im->bytes);
    *ms = now_ms() - t0;
    if (st == DCMC_OK && dec) {
        memcpy(dec, ct, im->bytes);
        st = dcmc_baseline_encrypt(s->baseline, key, nonce, &im->l, dec, im->bytes);
    }
    return st;
}

/* Evaluate one scheme on one image; with fig_base, also write fig_base.{triplet,hist,scatter}.png
 * (returns the status of the figures). */
static dcmc_status evaluate(const scheme *s, const image *im, const dcmc_key *key0,
                            const uint8_t nonce[16], size_t pairs, const char *fig_base, result *r)
{
    const size_t w = im->l.cols, h = im->l.rows, n = w * h;
    const unsigned bits = im->l.bits_stored;
    uint8_t *ct = malloc(im->bytes), *ct2 = malloc(im->bytes), *dec = malloc(im->bytes);
    uint8_t *p2 = malloc(im->bytes);
    uint32_t *v0 = malloc(n * sizeof *v0), *v1 = malloc(n * sizeof *v1);
    uint32_t *vp = malloc(n * sizeof *vp), *vh = malloc(n * sizeof *vh);
    dcmc_status fig = DCMC_OK;
    memset(r, 0, sizeof *r);
    if (!ct || !ct2 || !dec || !p2 || !v0 || !v1 || !vp || !vh) {
        r->psnr = NAN;
        fig = DCMC_ERR_NOMEM;
        goto out;
    }
    double ms2 = 0, ms3 = 0;
    fig = run_scheme(s, im, key0, nonce, im->px, ct, dec, &r->ms);
    if (fig != DCMC_OK) {
        r->psnr = NAN;
        goto out;
    }
    values(im, ct, v0);
    values(im, im->px, vp);
    values(im, dec, v1);
    r->psnr = dcmc_metric_psnr(vp, v1, n, bits);
    r->ssim = dcmc_metric_ssim(vp, v1, w, h, bits);
    if (fig_base) {
        char path[4200];
        size_t *first = malloc(pairs * sizeof *first), *second = malloc(pairs * sizeof *second);
        snprintf(path, sizeof path, "%s.triplet.png", fig_base);
        fig = fig_triplet(path, w, h, vp, v0, v1);
        snprintf(path, sizeof path, "%s.hist.png", fig_base);
        if (fig == DCMC_OK)
            fig = fig_histograms(path, n, bits, vp, v0);
        snprintf(path, sizeof path, "%s.scatter.png", fig_base);
        if (fig == DCMC_OK) /* the pairs of the sampled horizontal correlation (seed 11) */
            fig = !first || !second ? DCMC_ERR_NOMEM
                  : dcmc_metric_pair_positions(w, h, 0, pairs, 11, first, second) != 0
                      ? DCMC_ERR_ARG
                      : fig_scatter(path, n, bits, vp, v0, first, second, pairs);
        free(first);
        free(second);
    }
    const unsigned hb = bits > 16 ? 16 : bits; /* histograms of at most 2^16 bins */
    for (size_t i = 0; i < n; i++)
        vh[i] = v0[i] >> (bits - hb);
    r->entropy = dcmc_metric_entropy(vh, n, hb);
    r->chi2 = dcmc_metric_chi2(vh, n, hb);
    r->lse = dcmc_metric_local_entropy(vh, w, h, hb, 30, 44, 7);
    for (int d = 0; d < 4; d++) {
        r->corr[d] = dcmc_metric_correlation(v0, w, h, d);
        r->corr_s[d] = dcmc_metric_correlation_sampled(v0, w, h, d, pairs, 11 + (uint64_t)d);
        r->corr_abs += fabs(r->corr[d]) / 4;
    }
    /* One pixel, one level (the middle pixel), key and nonce fixed. */
    memcpy(p2, im->px, im->bytes);
    const size_t mid = (h / 2) * w + w / 2, B = im->l.bits_allocated / 8;
    const unsigned low = im->l.high_bit - im->l.bits_stored + 1;
    uint64_t word = 0;
    for (size_t b = 0; b < B; b++)
        word |= (uint64_t)p2[mid * B + b] << (8 * b);
    word ^= (uint64_t)1 << low; /* one level up or down */
    for (size_t b = 0; b < B; b++)
        p2[mid * B + b] = (uint8_t)(word >> (8 * b));
    dcmc_status st = run_scheme(s, im, key0, nonce, p2, ct2, NULL, &ms2);
    r->ms = fmin(r->ms, ms2); /* the fastest of three */
    values(im, ct2, v1);
    dcmc_metric_npcr_uaci(v0, v1, n, bits, &r->npcr, &r->uaci);
    /* One key bit. */
    dcmc_key k1 = *key0;
    k1.bytes[13] ^= 0x10;
    if (st == DCMC_OK)
        st = run_scheme(s, im, &k1, nonce, im->px, ct2, NULL, &ms3);
    r->ms = fmin(r->ms, ms3);
    values(im, ct2, v1);
    dcmc_metric_npcr_uaci(v0, v1, n, bits, &r->npcr_key, &r->uaci_key);
    if (st != DCMC_OK) {
        r->psnr = NAN;
        fig = st;
    }
out:
    free(ct);
    free(ct2);
    free(dec);
    free(p2);
    free(v0);
    free(v1);
    free(vp);
    free(vh);
    return fig;
}

static int keystream(size_t n)
{
    dcmc_key key;
    memset(key.bytes, 0x5c, sizeof key.bytes);
    uint8_t nonce[16] = {0};
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || dcmc_chaos_keystream(&key, nonce, buf, n) != DCMC_OK)
        return 2;
    size_t off = 0;
    while (off < n) {
        size_t w = fwrite(buf + off, 1, n - off, stdout);
        if (w == 0)
            break; /* reader closed the pipe (dieharder reads what it needs) */
        off += w;
    }
    free(buf);
    return fflush(stdout) == 0 || off < n ? 0 : 4;
}

int main(int argc, char **argv)
{
    const char *out_dir = NULL, *key_file = NULL, *schemes = NULL;
    int json = 0, nfiles = 0;
    size_t pairs = 3000, trials = 200, runs = 1;
    /* Positional arguments are compacted into argv itself: never ahead of the scan. */
    char **files = argv + 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("dcmcryptstat (dcmcrypt %s)\n%s\n%s\n", DCMC_VERSION_STRING, dcmc_build_info(),
                   dcmc_dicom_versions());
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out-dir")) && v) {
            out_dir = argv[++i];
        } else if (!strcmp(a, "--key-file") && v) {
            key_file = argv[++i];
        } else if (!strcmp(a, "--schemes") && v) {
            schemes = argv[++i];
        } else if (!strcmp(a, "--pairs") && v) {
            pairs = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--runs") && v) {
            runs = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--trials") && v) {
            trials = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--keystream") && v) {
            return keystream((size_t)strtoull(argv[++i], NULL, 10));
        } else if (a[0] == '-') {
            fprintf(stderr, "dcmcryptstat: unknown or incomplete option '%s'\n%s", a, k_usage);
            return 1;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles == 0 || pairs < 2 || trials < 10 || runs < 1 || runs > 10000) {
        fputs(k_usage, stderr);
        return 1;
    }
    dcmc_key key;
    if (key_file) {
        if (dcmc_key_read_file(key_file, &key) != DCMC_OK) {
            fprintf(stderr, "dcmcryptstat: cannot read key file %s\n", key_file);
            return 1;
        }
    } else {
        for (int i = 0; i < 32; i++)
            key.bytes[i] = (uint8_t)(0xA5 ^ (i * 29));
    }
    FILE *rep = stdout;
    if (out_dir) {
        char p[4096];
        if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "dcmcryptstat: cannot create %s: %s\n", out_dir, strerror(errno));
            return 4;
        }
        snprintf(p, sizeof p, "%s/%s", out_dir, json ? "results.jsonl" : "report.md");
        if (!(rep = fopen(p, "w"))) {
            fprintf(stderr, "dcmcryptstat: cannot write %s: %s\n", p, strerror(errno));
            return 4;
        }
    }
    int rc = 0;
    char runs_note[512];
    if (runs > 1)
        snprintf(runs_note, sizeof runs_note,
                 "Each image and scheme was evaluated %zu times with a fresh nonce (the key "
                 "fixed): cells give the mean and (failures/runs). A test passes when it failed "
                 "at most %d times (an ideal cipher fails more often with probability < 0.1 %%) "
                 "and, for chi-square, NPCR and UACI, the mean lies within 3.29 standard errors "
                 "of the random-data value (two-sided 0.1 %%). Figures are from the first run; ms is the fastest run.",
                 runs, binomial_k_max(runs));
    else
        snprintf(runs_note, sizeof runs_note,
                 "One run per image and scheme (key and nonce fixed): each cell is the "
                 "literature's single test. `--runs N` repeats with N nonces and judges the "
                 "failure rate instead.");
    if (!json)
        fprintf(rep, "# dcmcryptstat report\n\n%s\n\nKey space in force: 256-bit master key "
                     "(HKDF subkeys); the logistic generator alone is seeded with 64 + 57 = 121 "
                     "key bits. Ideal and critical values are for uniformly random images of the "
                     "same size and depth (alpha = 0.05): a perfect cipher fails each such test "
                     "in 1 run of 20, so judge a scheme over several images, not one cell.\n\n%s\n",
                dcmc_build_info(), runs_note);
    for (int f = 0; f < nfiles; f++) {
        image im;
        char msg[DCMC_DICOM_MSG] = "";
        if (load_image(files[f], &im, msg, sizeof msg) != 0) {
            fprintf(stderr, "dcmcryptstat: %s: %s\n", files[f], msg);
            rc = 2;
            continue;
        }
        const size_t n = (size_t)im.l.rows * im.l.cols;
        const unsigned bits = im.l.bits_stored, hb = bits > 16 ? 16 : bits;
        double npcr_min, uaci_lo, uaci_hi, lse_lo = NAN, lse_hi = NAN, lse_mean = NAN;
        dcmc_metric_npcr_uaci_critical(n, bits, 0.05, &npcr_min, &uaci_lo, &uaci_hi);
        const double bins = (double)((size_t)1 << hb);
        /* Wilson-Hilferty: 293.25 for 255 degrees of freedom, as the tables give. */
        const double dof = bins - 1, wh = 1 - 2 / (9 * dof) + 1.6448536269514722 * sqrt(2 / (9 * dof));
        const double chi2_crit = dof * wh * wh * wh;
        const int k_max = binomial_k_max(runs);
        /* Random-data means and standard deviations behind the critical values. */
        const double Lv = bits >= 32 ? 4294967295.0 : (double)(((uint64_t)1 << bits) - 1);
        const double npcr_mu = Lv / (Lv + 1), npcr_sd = (npcr_mu - npcr_min) / 1.6448536269514722;
        const double uaci_mu = (uaci_lo + uaci_hi) / 2,
                     uaci_sd = (uaci_hi - uaci_lo) / (2 * 1.959963984540054);
        const double ent_ideal = dcmc_metric_entropy_expected(n, hb, 5, 1);
        dcmc_metric_local_entropy_interval(im.l.cols, im.l.rows, hb, 30, 44, trials, 0.05, 2,
                                           &lse_lo, &lse_hi, &lse_mean);
        if (!json)
            fprintf(rep,
                    "\n## %s (%ux%u, %u bits)\n\nReferences: entropy %.5f (random data), "
                    "chi-square < %.2f, local entropy (30 blocks of 44x44) in [%.6f, %.6f] "
                    "(mean %.6f, %zu random images), NPCR >= %.4f %%, UACI in [%.4f, %.4f] %%, "
                    "|correlation| ~ %.4f over all pairs, ~ %.4f over %zu pairs. Time: the fastest of the "
                    "three encryptions, in ms.\n\n"
                    "| scheme | entropy | chi2 | corr h / v / d / a (all pairs) | corr h (%zu pairs) | LSE | "
                    "NPCR %% | UACI %% | NPCR key %% | UACI key %% | PSNR | SSIM | ms | pass |\n"
                    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
                    im.name, im.l.cols, im.l.rows, bits, ent_ideal, chi2_crit, lse_lo, lse_hi,
                    lse_mean, trials, 100 * npcr_min, 100 * uaci_lo, 100 * uaci_hi,
                    0.7978845608028654 / sqrt((double)n), 0.7978845608028654 / sqrt((double)pairs),
                    pairs, pairs);
        char figs[16384] = "";
        int nfig = 0;
        for (size_t s = 0; s < NSCHEMES; s++) {
            if (schemes) { /* exact names only: "resnet-cm" must not pick "at-resnet-cm" */
                const char *p = schemes;
                int found = 0;
                size_t ln = strlen(k_schemes[s].name);
                while ((p = strstr(p, k_schemes[s].name)) != NULL) {
                    if ((p == schemes || p[-1] == ',') && (p[ln] == '\0' || p[ln] == ','))
                        found = 1;
                    p += ln;
                }
                if (!found)
                    continue;
            }
            char base[4096], stem[300];
            /* File names: the image's name without extension, then the scheme. */
            snprintf(stem, sizeof stem, "%s", im.name);
            char *dot = strrchr(stem, '.');
            if (dot && dot != stem)
                *dot = '\0';
            snprintf(base, sizeof base, "%s/%s.%s", out_dir ? out_dir : ".", stem,
                     k_schemes[s].name);
            result m = {0}; /* means over the runs */
            int fails[NTESTS] = {0};
            for (size_t run = 0; run < runs; run++) {
                result r;
                uint8_t nonce[16] = {0x64, 0x63, 0x6d, 0x63, 0x72, 0x79, 0x70, 0x74,
                                     0x73, 0x74, 0x61, 0x74, 0, 0, 0, 1};
                for (int b = 0; b < 4; b++) /* run r: a fresh nonce, as every file gets */
                    nonce[11 - b] ^= (uint8_t)(run >> (8 * b));
                const char *fb = out_dir && run == 0 ? base : NULL;
                dcmc_status fst = evaluate(&k_schemes[s], &im, &key, nonce, pairs, fb, &r);
                if (fst != DCMC_OK) {
                    fprintf(stderr, "dcmcryptstat: %s: %s\n", fb ? base : im.name,
                            dcmc_status_str(fst));
                    rc = 4;
                } else if (fb) {
                    nfig += snprintf(figs + nfig, sizeof figs - (size_t)nfig,
                                     "| %s | ![original, encrypted, decrypted](%s.%s.triplet.png) | "
                                     "![histograms](%s.%s.hist.png) | ![scatter](%s.%s.scatter.png) |\n",
                                     k_schemes[s].name, stem, k_schemes[s].name, stem,
                                     k_schemes[s].name, stem, k_schemes[s].name);
                    if (nfig >= (int)sizeof figs)
                        nfig = (int)sizeof figs - 1;
                }
                fails[T_CHI2] += !(r.chi2 < chi2_crit);
                fails[T_LSE] += !isnan(lse_lo) && !(r.lse >= lse_lo && r.lse <= lse_hi);
                fails[T_NPCR] += !(r.npcr >= npcr_min);
                fails[T_UACI] += !(r.uaci >= uaci_lo && r.uaci <= uaci_hi);
                fails[T_NPCR_KEY] += !(r.npcr_key >= npcr_min);
                fails[T_UACI_KEY] += !(r.uaci_key >= uaci_lo && r.uaci_key <= uaci_hi);
                fails[T_DEC] += !isinf(r.psnr);
                result_add(&m, &r, 1.0 / (double)runs, run == 0);
            }
            /* One run: the literature's single test. Several: at most k_max failures of each
             * 5 % test (binomial, P < 0.1 %), and the means of the differential and histogram
             * measures within 3.29 standard errors of the random-data value (two-sided 0.1 %). */
            const double se = 3.2905267314919255 / sqrt((double)runs);
            int ok[NTESTS];
            for (int t = 0; t < NTESTS; t++)
                ok[t] = t == T_DEC ? fails[t] == 0 : fails[t] <= k_max;
            if (runs > 1) {
                ok[T_CHI2] &= fabs(m.chi2 - dof) <= se * sqrt(2 * dof);
                ok[T_NPCR] &= fabs(m.npcr - npcr_mu) <= se * npcr_sd;
                ok[T_NPCR_KEY] &= fabs(m.npcr_key - npcr_mu) <= se * npcr_sd;
                ok[T_UACI] &= fabs(m.uaci - uaci_mu) <= se * uaci_sd;
                ok[T_UACI_KEY] &= fabs(m.uaci_key - uaci_mu) <= se * uaci_sd;
            }
            int all = 1;
            for (int t = 0; t < NTESTS; t++)
                all &= ok[t];
            if (json) {
                fprintf(rep,
                        "{\"file\":\"%s\",\"scheme\":\"%s\",\"rows\":%u,\"cols\":%u,\"bits\":%u,"
                        "\"runs\":%zu,\"entropy\":%.6f,\"entropy_ideal\":%.6f,\"chi2\":%.3f,"
                        "\"chi2_crit\":%.3f,"
                        "\"corr_h\":%.6f,\"corr_v\":%.6f,\"corr_d\":%.6f,\"corr_a\":%.6f,"
                        "\"corr_h_sampled\":%.6f,\"corr_v_sampled\":%.6f,\"corr_d_sampled\":%.6f,"
                        "\"corr_a_sampled\":%.6f,\"pairs\":%zu,\"lse\":%.6f,\"lse_lo\":%.6f,"
                        "\"lse_hi\":%.6f,\"npcr\":%.6f,\"uaci\":%.6f,\"npcr_key\":%.6f,"
                        "\"uaci_key\":%.6f,\"npcr_crit\":%.6f,\"uaci_lo\":%.6f,\"uaci_hi\":%.6f,"
                        "\"corr_abs\":%.6f,\"psnr\":%s,\"ssim\":%.6f,\"ms\":%.3f,",
                        im.name, k_schemes[s].name, im.l.rows, im.l.cols, bits, runs, m.entropy,
                        ent_ideal, m.chi2, chi2_crit, m.corr[0], m.corr[1], m.corr[2], m.corr[3],
                        m.corr_s[0], m.corr_s[1], m.corr_s[2], m.corr_s[3], pairs, m.lse, lse_lo,
                        lse_hi, 100 * m.npcr, 100 * m.uaci, 100 * m.npcr_key, 100 * m.uaci_key,
                        100 * npcr_min, 100 * uaci_lo, 100 * uaci_hi, m.corr_abs,
                        fails[T_DEC] == 0 ? "\"inf\"" : "null", m.ssim, m.ms);
                fputs("\"fails\":{", rep);
                for (int t = 0; t < NTESTS; t++)
                    fprintf(rep, "%s\"%s\":%d", t ? "," : "", k_test_names[t], fails[t]);
                fputs("},\"pass\":{", rep);
                for (int t = 0; t < NTESTS; t++)
                    fprintf(rep, "%s\"%s\":%s", t ? "," : "", k_test_names[t], ok[t] ? "true" : "false");
                fprintf(rep, "},\"pass_all\":%s}\n", all ? "true" : "false");
            } else {
                char c[NTESTS][48];
                for (int t = 0; t < NTESTS; t++) {
                    if (runs > 1)
                        snprintf(c[t], sizeof c[t], "(%d/%zu) %s", fails[t], runs, ok[t] ? "ok" : "FAIL");
                    else
                        snprintf(c[t], sizeof c[t], "%s", ok[t] ? "ok" : "FAIL");
                }
                fprintf(rep,
                        "| %s | %.5f | %.1f %s | %.4f / %.4f / %.4f / %.4f | %.4f | %.6f %s | "
                        "%.4f %s | %.4f %s | %.4f %s | %.4f %s | %s | %.4f | %.1f | %s |\n",
                        k_schemes[s].name, m.entropy, m.chi2, c[T_CHI2], m.corr[0], m.corr[1],
                        m.corr[2], m.corr[3], m.corr_s[0], m.lse,
                        isnan(lse_lo) ? "n/a (image too small)" : c[T_LSE], 100 * m.npcr,
                        c[T_NPCR], 100 * m.uaci, c[T_UACI], 100 * m.npcr_key, c[T_NPCR_KEY],
                        100 * m.uaci_key, c[T_UACI_KEY], fails[T_DEC] == 0 ? "inf" : "FINITE",
                        m.ssim, m.ms, all ? "all" : "no");
            }
            fflush(rep);
        }
        if (!json && nfig > 0)
            fprintf(rep,
                    "\nFigures (paper's Figures 11-13). Triplets: original, encrypted, decrypted; "
                    "the original and the decryption share the original's min-max window. "
                    "Histograms: plain left, cipher right, 256 bins over the %u-bit range, each "
                    "panel scaled to its highest bin; the dotted line is the count of a uniform "
                    "histogram. Scatter: the %zu sampled horizontal pairs, pixel value on x, its "
                    "right neighbour on y; plain left, cipher right. Plain panels span the "
                    "original's own range, cipher panels 0 to %u.\n\n"
                    "| scheme | triplet | histograms | horizontal scatter |\n"
                    "| --- | --- | --- | --- |\n%s",
                    bits, pairs, (1u << (bits > 31 ? 31 : bits)) - 1, figs);
        free(im.px);
    }
    if (rep != stdout && fclose(rep) != 0) {
        fprintf(stderr, "dcmcryptstat: cannot write the report: %s\n", strerror(errno));
        return 4;
    }
    return rc;
}
