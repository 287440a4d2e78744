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

#include "dcmcrypt.h"
#include "dcmcrypt_dicom.h"
#include "dcmcrypt_io.h"
#include "dcmcrypt_metrics.h"

static const char *k_usage =
    "usage: dcmcryptstat [options] file...\n"
    "Evaluate the cipher and its comparison schemes on DICOM, PNG or TIFF images (first frame,\n"
    "first sample plane): histogram, chi-square, entropy, local entropy, adjacent correlation,\n"
    "NPCR/UACI for a one-pixel and a one-key-bit change, PSNR/SSIM of the decryption, time.\n"
    "  -o, --out-dir DIR   write report.md and PNG figures there (default: report on stdout)\n"
    "      --json          JSON lines on stdout instead of the Markdown report\n"
    "      --schemes LIST  comma-separated (default: all): at-resnet-cm, resnet-cm,\n"
    "                      at-resnet-cm-chaos, resnet-cm-chaos, logistic-xor, aes-256-ctr\n"
    "      --pairs N       random pairs for the sampled correlation (default 3000)\n"
    "      --trials N      Monte Carlo images for the random-data references (default 200)\n"
    "      --key-file F    key (default: a fixed evaluation key, so runs are reproducible)\n"
    "      --keystream N   write N bytes of the logistic keystream alone to stdout and exit\n"
    "  -h, --help          this text;  --version  versions\n"
    "exit status: 0 done, 1 usage, 2 an input could not be read, 4 output not written\n";

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
} result;

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

/* Encrypt a copy of px with a scheme; decrypt into dec if asked. Returns ms of the encryption. */
static double run_scheme(const scheme *s, const image *im, const dcmc_key *key,
                         const uint8_t nonce[16], const uint8_t *px, uint8_t *ct, uint8_t *dec)
{
    memcpy(ct, px, im->bytes);
    double t0 = now_ms();
    if (s->preset) {
        dcmc_options o;
        dcmc_options_default(&o);
        dcmc_preset_by_id((uint8_t)s->preset, &o.preset);
        o.flags = s->standard ? DCMC_FLAG_STANDARD_LAYER : 0;
        o.nonce = nonce;
        dcmc_header h;
        uint8_t *pl = NULL, *a = NULL;
        size_t pll = 0, al = 0;
        dcmc_image_encrypt(key, NULL, &o, &im->l, 1, ct, im->bytes, NULL, 0, &h, &pl, &pll);
        t0 = now_ms() - t0;
        if (dec) {
            memcpy(dec, ct, im->bytes);
            dcmc_image_decrypt(key, &h, 0, dec, im->bytes, pl, pll, &a, &al);
        }
        dcmc_free(pl, pll);
        dcmc_free(a, al);
        return t0;
    }
    dcmc_baseline_encrypt(s->baseline, key, nonce, &im->l, ct, im->bytes);
    t0 = now_ms() - t0;
    if (dec) {
        memcpy(dec, ct, im->bytes);
        dcmc_baseline_encrypt(s->baseline, key, nonce, &im->l, dec, im->bytes);
    }
    return t0;
}

static void evaluate(const scheme *s, const image *im, const dcmc_key *key0, size_t pairs,
                     result *r)
{
    const size_t w = im->l.cols, h = im->l.rows, n = w * h;
    const unsigned bits = im->l.bits_stored;
    static const uint8_t nonce[16] = {0x64, 0x63, 0x6d, 0x63, 0x72, 0x79, 0x70, 0x74,
                                      0x73, 0x74, 0x61, 0x74, 0x00, 0x00, 0x00, 0x01};
    uint8_t *ct = malloc(im->bytes), *ct2 = malloc(im->bytes), *dec = malloc(im->bytes);
    uint8_t *p2 = malloc(im->bytes);
    uint32_t *v0 = malloc(n * sizeof *v0), *v1 = malloc(n * sizeof *v1);
    uint32_t *vp = malloc(n * sizeof *vp);
    r->ms = run_scheme(s, im, key0, nonce, im->px, ct, dec);
    values(im, ct, v0);
    values(im, im->px, vp);
    values(im, dec, v1);
    r->psnr = dcmc_metric_psnr(vp, v1, n, bits);
    r->ssim = dcmc_metric_ssim(vp, v1, w, h, bits);
    const unsigned hb = bits > 16 ? 16 : bits; /* histograms of at most 2^16 bins */
    uint32_t *vh = malloc(n * sizeof *vh);
    for (size_t i = 0; i < n; i++)
        vh[i] = v0[i] >> (bits - hb);
    r->entropy = dcmc_metric_entropy(vh, n, hb);
    r->chi2 = dcmc_metric_chi2(vh, n, hb);
    r->lse = dcmc_metric_local_entropy(vh, w, h, hb, 30, 44, 7);
    free(vh);
    for (int d = 0; d < 4; d++) {
        r->corr[d] = dcmc_metric_correlation(v0, w, h, d);
        r->corr_s[d] = dcmc_metric_correlation_sampled(v0, w, h, d, pairs, 11 + (uint64_t)d);
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
    run_scheme(s, im, key0, nonce, p2, ct2, NULL);
    values(im, ct2, v1);
    dcmc_metric_npcr_uaci(v0, v1, n, bits, &r->npcr, &r->uaci);
    /* One key bit. */
    dcmc_key k1 = *key0;
    k1.bytes[13] ^= 0x10;
    run_scheme(s, im, &k1, nonce, im->px, ct2, NULL);
    values(im, ct2, v1);
    dcmc_metric_npcr_uaci(v0, v1, n, bits, &r->npcr_key, &r->uaci_key);
    free(ct);
    free(ct2);
    free(dec);
    free(p2);
    free(v0);
    free(v1);
    free(vp);
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
    size_t pairs = 3000, trials = 200;
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
    if (nfiles == 0 || pairs < 2 || trials < 10) {
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
    if (!json)
        fprintf(rep, "# dcmcryptstat report\n\n%s\n\nKey space in force: 256-bit master key "
                     "(HKDF subkeys); the logistic generator alone is seeded with 64 + 57 = 121 "
                     "key bits. Ideal and critical values are for uniformly random images of the "
                     "same size and depth (alpha = 0.05): a perfect cipher fails each such test "
                     "in 1 run of 20, so judge a scheme over several images, not one cell.\n",
                dcmc_build_info());
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
        const double ent_ideal = dcmc_metric_entropy_expected(n, hb, 5, 1);
        dcmc_metric_local_entropy_interval(im.l.cols, im.l.rows, hb, 30, 44, trials, 0.05, 2,
                                           &lse_lo, &lse_hi, &lse_mean);
        if (!json)
            fprintf(rep,
                    "\n## %s (%ux%u, %u bits)\n\nReferences: entropy %.5f (random data), "
                    "chi-square < %.2f, local entropy (30 blocks of 44x44) in [%.6f, %.6f] "
                    "(mean %.6f, %zu random images), NPCR >= %.4f %%, UACI in [%.4f, %.4f] %%, "
                    "|correlation| ~ %.4f.\n\n"
                    "| scheme | entropy | chi2 | corr h / v / d / a (all pairs) | corr h (%zu pairs) | LSE | "
                    "NPCR %% | UACI %% | NPCR key %% | UACI key %% | PSNR | SSIM | ms | pass |\n"
                    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
                    im.name, im.l.cols, im.l.rows, bits, ent_ideal, chi2_crit, lse_lo, lse_hi,
                    lse_mean, trials, 100 * npcr_min, 100 * uaci_lo, 100 * uaci_hi,
                    0.7978845608028654 / sqrt((double)n), pairs);
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
            result r;
            evaluate(&k_schemes[s], &im, &key, pairs, &r);
            int pass_chi = r.chi2 < chi2_crit, pass_np = r.npcr >= npcr_min,
                pass_ua = r.uaci >= uaci_lo && r.uaci <= uaci_hi,
                pass_npk = r.npcr_key >= npcr_min,
                pass_uak = r.uaci_key >= uaci_lo && r.uaci_key <= uaci_hi,
                pass_lse = isnan(lse_lo) || (r.lse >= lse_lo && r.lse <= lse_hi),
                pass_dec = isinf(r.psnr);
            if (json) {
                fprintf(rep,
                        "{\"file\":\"%s\",\"scheme\":\"%s\",\"rows\":%u,\"cols\":%u,\"bits\":%u,"
                        "\"entropy\":%.6f,\"entropy_ideal\":%.6f,\"chi2\":%.3f,\"chi2_crit\":%.3f,"
                        "\"corr_h\":%.6f,\"corr_v\":%.6f,\"corr_d\":%.6f,\"corr_a\":%.6f,"
                        "\"corr_h_sampled\":%.6f,\"corr_v_sampled\":%.6f,\"corr_d_sampled\":%.6f,"
                        "\"corr_a_sampled\":%.6f,\"pairs\":%zu,\"lse\":%.6f,\"lse_lo\":%.6f,"
                        "\"lse_hi\":%.6f,\"npcr\":%.6f,\"uaci\":%.6f,\"npcr_key\":%.6f,"
                        "\"uaci_key\":%.6f,\"npcr_crit\":%.6f,\"uaci_lo\":%.6f,\"uaci_hi\":%.6f,"
                        "\"psnr\":%s,\"ssim\":%.6f,\"ms\":%.3f}\n",
                        im.name, k_schemes[s].name, im.l.rows, im.l.cols, bits, r.entropy,
                        ent_ideal, r.chi2, chi2_crit, r.corr[0], r.corr[1], r.corr[2], r.corr[3],
                        r.corr_s[0], r.corr_s[1], r.corr_s[2], r.corr_s[3], pairs, r.lse, lse_lo,
                        lse_hi, 100 * r.npcr, 100 * r.uaci, 100 * r.npcr_key, 100 * r.uaci_key,
                        100 * npcr_min, 100 * uaci_lo, 100 * uaci_hi,
                        isinf(r.psnr) ? "\"inf\"" : "null", r.ssim, r.ms);
            } else {
                fprintf(rep,
                        "| %s | %.5f | %.1f %s | %.4f / %.4f / %.4f / %.4f | %.4f | %.6f %s | "
                        "%.4f %s | %.4f %s | %.4f %s | %.4f %s | %s | %.4f | %.1f | %s |\n",
                        k_schemes[s].name, r.entropy, r.chi2, pass_chi ? "ok" : "FAIL", r.corr[0],
                        r.corr[1], r.corr[2], r.corr[3], r.corr_s[0], r.lse,
                        isnan(lse_lo) ? "n/a (image too small)" : pass_lse ? "ok" : "FAIL", 100 * r.npcr, pass_np ? "ok" : "FAIL",
                        100 * r.uaci, pass_ua ? "ok" : "FAIL", 100 * r.npcr_key,
                        pass_npk ? "ok" : "FAIL", 100 * r.uaci_key, pass_uak ? "ok" : "FAIL",
                        isinf(r.psnr) ? "inf" : "finite", r.ssim, r.ms,
                        pass_chi && pass_np && pass_ua && pass_npk && pass_uak && pass_lse && pass_dec
                            ? "all"
                            : "no");
            }
            fflush(rep);
        }
        free(im.px);
    }
    if (rep != stdout && fclose(rep) != 0) {
        fprintf(stderr, "dcmcryptstat: cannot write the report: %s\n", strerror(errno));
        return 4;
    }
    return rc;
}
