/*
 * dcmcryptstat - the evaluation suite: for each image (DICOM, PNG, TIFF) and each scheme, the
 * statistics image-cipher papers report, beside the ideal and critical values of random data,
 * as a Markdown report, JSON lines (--json) and PNG + SVG figures (--out-dir). --keystream N writes the
 * chaos keystream alone for dieharder. The maths is in src/metrics; this file only drives it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/research.h"
#include "dcmcrypt/dicom.h"
#include "dcmcrypt/io.h"
#include "dcmcrypt/metrics.h"
#include "paper_weights.h"
#include "stateval.h"
#include "runtime.h"

static const char *k_usage =
    "usage: dcmcryptstat [options] file...\n"
    "Evaluate the cipher and its comparison schemes on DICOM, PNG or TIFF images (first frame,\n"
    "first sample plane): histogram, chi-square, entropy, local entropy, adjacent correlation,\n"
    "NPCR/UACI for a one-pixel and a one-key-bit change, PSNR/SSIM and largest error of the\n"
    "decryption, time.\n"
    "  -o, --out-dir DIR   write report.md (results.jsonl with --json) and, per image and\n"
    "                      scheme, NAME.SCHEME.{triplet,hist,scatter}.{png,svg} there\n"
    "                      (default: the report on stdout, no figures)\n"
    "      --json          JSON lines on stdout instead of the Markdown report\n"
    "      --schemes LIST  comma-separated (default: all): at-resnet-cm, resnet-cm,\n"
    "                      at-resnet-cm-chaos, resnet-cm-chaos, logistic-xor, aes-256-ctr,\n"
    "                      paper-at-resnet-cm, paper-resnet-cm (the paper's trained, lossy\n"
    "                      system; skipped with a note when its weights are missing, an\n"
    "                      error when named here)\n"
    "      --paper-weights DIR  the paper's weight files (default: the installed\n"
    "                      share/dcmcrypt/paper, else the source tree's research/paper/weights)\n"
    "      --pairs N       random pairs for the sampled correlation (default 3000)\n"
    "      --trials N      Monte Carlo images for the random-data references (default 200)\n"
    "      --runs N        repeat each evaluation with N nonces (default 1, the literature's\n"
    "                      single test); N > 1 reports means and failure counts and judges\n"
    "                      each test by its failure rate and mean (see the man page)\n"
    "      --key-file F    key (default: a fixed evaluation key, so runs are reproducible)\n"
    "      --keystream N   write N bytes of the logistic keystream alone to stdout and exit\n"
    "  -h, --help          this text;  --version  versions\n"
    "exit status: 0 done, 1 usage, 2 an input could not be read, 4 report or figure not written,\n"
    "70 internal error (a bug in dcmcrypt: please report it)\n";

static const scheme k_schemes[] = {
    {"at-resnet-cm", DCMC_PRESET_AT_RESNET_CM, 1, 0},
    {"resnet-cm", DCMC_PRESET_RESNET_CM, 1, 0},
    {"at-resnet-cm-chaos", DCMC_PRESET_AT_RESNET_CM, 0, 0},
    {"resnet-cm-chaos", DCMC_PRESET_RESNET_CM, 0, 0},
    {"logistic-xor", 0, 0, DCMC_BASELINE_LOGISTIC_XOR},
    {"aes-256-ctr", 0, 0, DCMC_BASELINE_AES256_CTR},
    {"paper-at-resnet-cm", 0, 0, 0}, /* app_paper_variant(name): the paper's trained system */
    {"paper-resnet-cm", 0, 0, 0},
};
#define NSCHEMES (sizeof k_schemes / sizeof k_schemes[0])

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
    sum->psnr += w * r->psnr; /* inf for an exact scheme; the same every run for the paper's */
    sum->max_err = fmax(sum->max_err, r->max_err);
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

/* DCMC_ERR_INTERNAL: a bug in dcmcrypt itself (EX_SOFTWARE). */
enum { EXIT_INTERNAL = EX_SOFTWARE };

/* The exit status of two failures: a bug first, then the later one (0: none). */
static int worse(int rc, int now)
{
    return rc == EXIT_INTERNAL || now == 0 ? rc : now;
}

/* The command line. */
typedef struct args {
    const char *out_dir, *key_file, *schemes, *paper_dir;
    int json, nfiles;
    size_t pairs, trials, runs;
    const char **files; /* argc entries: free() */
    dcmc_paper_model *models[NSCHEMES]; /* a paper-* scheme's networks, NULL: skipped */
} args;

/* -1 to go on, or the exit code now (--help, --version, --keystream, a usage error). */
static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->pairs = 3000;
    a->trials = 200;
    a->runs = 1;
    if (!(a->files = calloc((size_t)argc, sizeof *a->files))) {
        fprintf(stderr, "dcmcryptstat: out of memory\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const int v = i + 1 < argc; /* a value follows */
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(k_usage, stdout);
            return 0;
        } else if (!strcmp(o, "--version")) {
            printf("dcmcryptstat (dcmcrypt %s)\n%s\n%s\n", DCMC_VERSION_STRING, dcmc_build_info(),
                   dcmc_dicom_versions());
            return 0;
        } else if (!strcmp(o, "--json")) {
            a->json = 1;
        } else if ((!strcmp(o, "-o") || !strcmp(o, "--out-dir")) && v) {
            a->out_dir = argv[++i];
        } else if (!strcmp(o, "--key-file") && v) {
            a->key_file = argv[++i];
        } else if (!strcmp(o, "--paper-weights") && v) {
            a->paper_dir = argv[++i];
        } else if (!strcmp(o, "--schemes") && v) {
            a->schemes = argv[++i];
        } else if (!strcmp(o, "--pairs") && v) {
            a->pairs = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(o, "--runs") && v) {
            a->runs = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(o, "--trials") && v) {
            a->trials = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(o, "--keystream") && v) {
            return keystream((size_t)strtoull(argv[++i], NULL, 10));
        } else if (o[0] == '-') {
            fprintf(stderr, "dcmcryptstat: unknown or incomplete option '%s'\n%s", o, k_usage);
            return 1;
        } else {
            a->files[a->nfiles++] = argv[i];
        }
    }
    if (a->nfiles == 0 || a->pairs < 2 || a->trials < 10 || a->runs < 1 || a->runs > 10000) {
        fputs(k_usage, stderr);
        return 1;
    }
    return -1;
}

/* What random data of an image's size and depth gives: the critical values the tests use, and
 * the means and standard deviations behind them. */
typedef struct refs {
    double npcr_min, uaci_lo, uaci_hi, lse_lo, lse_hi, lse_mean, dof, chi2_crit, ent_ideal;
    double npcr_mu, npcr_sd, uaci_mu, uaci_sd;
    int k_max;
} refs;

static void image_refs(const image *im, const args *a, refs *f)
{
    const size_t n = (size_t)im->l.rows * im->l.cols;
    const unsigned bits = im->l.bits_stored, hb = bits > 16 ? 16 : bits;
    f->lse_lo = f->lse_hi = f->lse_mean = NAN;
    dcmc_metric_npcr_uaci_critical(n, bits, 0.05, &f->npcr_min, &f->uaci_lo, &f->uaci_hi);
    const double bins = (double)((size_t)1 << hb);
    /* Wilson-Hilferty: 293.25 for 255 degrees of freedom, as the tables give. */
    f->dof = bins - 1;
    const double wh = 1 - 2 / (9 * f->dof) + 1.6448536269514722 * sqrt(2 / (9 * f->dof));
    f->chi2_crit = f->dof * wh * wh * wh;
    f->k_max = binomial_k_max(a->runs);
    const double Lv = bits >= 32 ? 4294967295.0 : (double)(((uint64_t)1 << bits) - 1);
    f->npcr_mu = Lv / (Lv + 1);
    f->npcr_sd = (f->npcr_mu - f->npcr_min) / 1.6448536269514722;
    f->uaci_mu = (f->uaci_lo + f->uaci_hi) / 2;
    f->uaci_sd = (f->uaci_hi - f->uaci_lo) / (2 * 1.959963984540054);
    f->ent_ideal = dcmc_metric_entropy_expected(n, hb, 5, 1);
    dcmc_metric_local_entropy_interval(im->l.cols, im->l.rows, hb, 30, 44, a->trials, 0.05, 2,
                                       &f->lse_lo, &f->lse_hi, &f->lse_mean);
}

static void md_preamble(FILE *rep, size_t runs)
{
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
    fprintf(rep, "# dcmcryptstat report\n\n%s\n\nKey space in force: 256-bit master key "
                 "(HKDF subkeys); the logistic generator alone is seeded with 64 + 57 = 121 "
                 "key bits. Ideal and critical values are for uniformly random images of the "
                 "same size and depth (alpha = 0.05): a perfect cipher fails each such test "
                 "in 1 run of 20, so judge a scheme over several images, not one cell.\n\n%s\n",
            dcmc_build_info(), runs_note);
}

static void md_image_header(FILE *rep, const image *im, const refs *f, const args *a)
{
    const size_t n = (size_t)im->l.rows * im->l.cols, pairs = a->pairs;
    fprintf(rep,
            "\n## %s (%ux%u, %u bits)\n\nReferences: entropy %.5f (random data), "
            "chi-square < %.2f, local entropy (30 blocks of 44x44) in [%.6f, %.6f] "
            "(mean %.6f, %zu random images), NPCR >= %.4f %%, UACI in [%.4f, %.4f] %%, "
            "|correlation| ~ %.4f over all pairs, ~ %.4f over %zu pairs. Time: the fastest of the "
            "three encryptions, in ms.\n\n"
            "| scheme | entropy | chi2 | corr h / v / d / a (all pairs) | corr h (%zu pairs) | LSE | "
            "NPCR %% | UACI %% | NPCR key %% | UACI key %% | PSNR dB | SSIM | max err | ms | pass |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
            "| --- |\n",
            im->name, im->l.cols, im->l.rows, im->l.bits_stored, f->ent_ideal, f->chi2_crit,
            f->lse_lo, f->lse_hi, f->lse_mean, a->trials, 100 * f->npcr_min, 100 * f->uaci_lo,
            100 * f->uaci_hi, 0.7978845608028654 / sqrt((double)n),
            0.7978845608028654 / sqrt((double)pairs), pairs, pairs);
}

static void md_figures(FILE *rep, size_t pairs, const char *figs)
{
    fprintf(rep,
            "\nFigures (paper's Figures 11-13; each also as SVG beside the PNG). Triplets: "
            "original, encrypted, decrypted, each with its gray scale bar; the original and the "
            "decryption share the original's min-max window. Histograms: plain left over the "
            "original's range, cipher right over every level, at most 256 bins (count and width "
            "written over each panel), one linear y axis for both; the dashed line is a uniform "
            "histogram, and a background bin far above the rest is cut with its count written "
            "over it. Scatter: the %zu sampled horizontal pairs, value at (x,y) on x, at (x+1,y) "
            "on y. Axes in stored values.\n\n"
            "| scheme | triplet | histograms | horizontal scatter |\n"
            "| --- | --- | --- | --- |\n%s",
            pairs, figs);
}

/* Is `name` in the comma-separated list (NULL: all)? Exact names only: "resnet-cm" must not
 * pick "at-resnet-cm". */
static int scheme_selected(const char *list, const char *name)
{
    if (!list)
        return 1;
    const size_t ln = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += ln)
        if ((p == list || p[-1] == ',') && (p[ln] == '\0' || p[ln] == ','))
            return 1;
    return 0;
}

/* One scheme on one image over the runs. */
typedef struct verdict {
    result m; /* means over the runs */
    int fails[NTESTS], ok[NTESTS], all;
} verdict;

/* One run: at most k_max failures of each 5 % test (binomial, P < 0.1 %). Several: also the
 * means of the differential and histogram measures within 3.29 standard errors of the
 * random-data value (two-sided 0.1 %). */
static void judge(const refs *f, size_t runs, verdict *v)
{
    const double se = 3.2905267314919255 / sqrt((double)runs);
    const result *m = &v->m;
    for (int t = 0; t < NTESTS; t++)
        v->ok[t] = t == T_DEC ? v->fails[t] == 0 : v->fails[t] <= f->k_max;
    if (runs > 1) {
        v->ok[T_CHI2] &= fabs(m->chi2 - f->dof) <= se * sqrt(2 * f->dof);
        v->ok[T_NPCR] &= fabs(m->npcr - f->npcr_mu) <= se * f->npcr_sd;
        v->ok[T_NPCR_KEY] &= fabs(m->npcr_key - f->npcr_mu) <= se * f->npcr_sd;
        v->ok[T_UACI] &= fabs(m->uaci - f->uaci_mu) <= se * f->uaci_sd;
        v->ok[T_UACI_KEY] &= fabs(m->uaci_key - f->uaci_mu) <= se * f->uaci_sd;
    }
    v->all = 1;
    for (int t = 0; t < NTESTS; t++)
        v->all &= v->ok[t];
}

static void count_fails(const refs *f, const result *r, int *fails)
{
    fails[T_CHI2] += !(r->chi2 < f->chi2_crit);
    fails[T_LSE] += !isnan(f->lse_lo) && !(r->lse >= f->lse_lo && r->lse <= f->lse_hi);
    fails[T_NPCR] += !(r->npcr >= f->npcr_min);
    fails[T_UACI] += !(r->uaci >= f->uaci_lo && r->uaci <= f->uaci_hi);
    fails[T_NPCR_KEY] += !(r->npcr_key >= f->npcr_min);
    fails[T_UACI_KEY] += !(r->uaci_key >= f->uaci_lo && r->uaci_key <= f->uaci_hi);
    fails[T_DEC] += !isinf(r->psnr);
}

/* Evaluate scheme sc on im a->runs times (figures in base.* from the first run, when base is
 * not NULL). 0, or the exit status of a failed run or figure; *figs_ok: the figures were
 * written. */
static int evaluate_runs(const args *a, const scheme *sc, const image *im, const dcmc_key *key,
                         const refs *f, const char *base, verdict *v, int *figs_ok)
{
    int rc = 0;
    memset(v, 0, sizeof *v);
    *figs_ok = 0;
    for (size_t run = 0; run < a->runs; run++) {
        result r;
        uint8_t nonce[16] = {0x64, 0x63, 0x6d, 0x63, 0x72, 0x79, 0x70, 0x74,
                             0x73, 0x74, 0x61, 0x74, 0, 0, 0, 1};
        for (int b = 0; b < 4; b++) /* run r: a fresh nonce, as every file gets */
            nonce[11 - b] ^= (uint8_t)(run >> (8 * b));
        const char *fb = base && run == 0 ? base : NULL;
        const dcmc_status fst =
            stat_evaluate(sc, a->models[sc - k_schemes], im, key, nonce, a->pairs, fb, &r);
        if (fst != DCMC_OK) {
            fprintf(stderr, "dcmcryptstat: %s: %s\n", fb ? base : im->name, dcmc_status_str(fst));
            rc = worse(rc, fst == DCMC_ERR_INTERNAL ? EXIT_INTERNAL : 4);
        } else if (fb) {
            *figs_ok = 1;
        }
        count_fails(f, &r, v->fails);
        result_add(&v->m, &r, 1.0 / (double)a->runs, run == 0);
    }
    judge(f, a->runs, v);
    return rc;
}

/* PSNR in dB: exact (inf), finite (a lossy decryption), or failed (none). */
static const char *psnr_text(const verdict *v, char *buf, size_t n, const char *inf,
                             const char *none)
{
    if (v->fails[T_DEC] == 0)
        return inf;
    if (!isfinite(v->m.psnr))
        return none;
    snprintf(buf, n, "%.4f", v->m.psnr);
    return buf;
}

static void json_row(FILE *rep, const image *im, const scheme *sc, const args *a, const refs *f,
                     const verdict *v)
{
    const result *m = &v->m;
    char psnr[32];
    fprintf(rep,
            "{\"file\":\"%s\",\"scheme\":\"%s\",\"rows\":%u,\"cols\":%u,\"bits\":%u,"
            "\"runs\":%zu,\"entropy\":%.6f,\"entropy_ideal\":%.6f,\"chi2\":%.3f,"
            "\"chi2_crit\":%.3f,"
            "\"corr_h\":%.6f,\"corr_v\":%.6f,\"corr_d\":%.6f,\"corr_a\":%.6f,"
            "\"corr_h_sampled\":%.6f,\"corr_v_sampled\":%.6f,\"corr_d_sampled\":%.6f,"
            "\"corr_a_sampled\":%.6f,\"pairs\":%zu,\"lse\":%.6f,\"lse_lo\":%.6f,"
            "\"lse_hi\":%.6f,\"npcr\":%.6f,\"uaci\":%.6f,\"npcr_key\":%.6f,"
            "\"uaci_key\":%.6f,\"npcr_crit\":%.6f,\"uaci_lo\":%.6f,\"uaci_hi\":%.6f,"
            "\"corr_abs\":%.6f,\"psnr\":%s,\"ssim\":%.6f,\"max_error\":%.0f,\"ms\":%.3f,",
            im->name, sc->name, im->l.rows, im->l.cols, im->l.bits_stored, a->runs, m->entropy,
            f->ent_ideal, m->chi2, f->chi2_crit, m->corr[0], m->corr[1], m->corr[2], m->corr[3],
            m->corr_s[0], m->corr_s[1], m->corr_s[2], m->corr_s[3], a->pairs, m->lse, f->lse_lo,
            f->lse_hi, 100 * m->npcr, 100 * m->uaci, 100 * m->npcr_key, 100 * m->uaci_key,
            100 * f->npcr_min, 100 * f->uaci_lo, 100 * f->uaci_hi, m->corr_abs,
            psnr_text(v, psnr, sizeof psnr, "\"inf\"", "null"), m->ssim, m->max_err, m->ms);
    fputs("\"fails\":{", rep);
    for (int t = 0; t < NTESTS; t++)
        fprintf(rep, "%s\"%s\":%d", t ? "," : "", k_test_names[t], v->fails[t]);
    fputs("},\"pass\":{", rep);
    for (int t = 0; t < NTESTS; t++)
        fprintf(rep, "%s\"%s\":%s", t ? "," : "", k_test_names[t], v->ok[t] ? "true" : "false");
    fprintf(rep, "},\"pass_all\":%s}\n", v->all ? "true" : "false");
}

static void md_row(FILE *rep, const scheme *sc, size_t runs, const refs *f, const verdict *v)
{
    const result *m = &v->m;
    char psnr[32];
    char c[NTESTS][48];
    for (int t = 0; t < NTESTS; t++) {
        if (runs > 1)
            snprintf(c[t], sizeof c[t], "(%d/%zu) %s", v->fails[t], runs, v->ok[t] ? "ok" : "FAIL");
        else
            snprintf(c[t], sizeof c[t], "%s", v->ok[t] ? "ok" : "FAIL");
    }
    fprintf(rep,
            "| %s | %.5f | %.1f %s | %.4f / %.4f / %.4f / %.4f | %.4f | %.6f %s | "
            "%.4f %s | %.4f %s | %.4f %s | %.4f %s | %s | %.4f | %.0f | %.1f | %s |\n",
            sc->name, m->entropy, m->chi2, c[T_CHI2], m->corr[0], m->corr[1], m->corr[2],
            m->corr[3], m->corr_s[0], m->lse, isnan(f->lse_lo) ? "n/a (image too small)" : c[T_LSE],
            100 * m->npcr, c[T_NPCR], 100 * m->uaci, c[T_UACI], 100 * m->npcr_key, c[T_NPCR_KEY],
            100 * m->uaci_key, c[T_UACI_KEY], psnr_text(v, psnr, sizeof psnr, "inf", "n/a"),
            m->ssim, m->max_err, m->ms, v->all ? "all" : "no");
}

/* Every selected scheme on one loaded image: its table (or JSON lines) and figures. 0, or the
 * exit status of a failure. */
static int report_image(FILE *rep, const args *a, const dcmc_key *key, const image *im)
{
    refs f;
    image_refs(im, a, &f);
    if (!a->json)
        md_image_header(rep, im, &f, a);
    char figs[16384] = "", stem[300], base[4096];
    size_t nfig = 0;
    int rc = 0;
    /* File names: the image's name without extension, then the scheme. */
    snprintf(stem, sizeof stem, "%s", im->name);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = '\0';
    for (size_t s = 0; s < NSCHEMES; s++) {
        const scheme *sc = &k_schemes[s];
        if (!scheme_selected(a->schemes, sc->name) ||
            (app_paper_variant(sc->name) && !a->models[s])) /* weights missing: said once */
            continue;
        snprintf(base, sizeof base, "%s/%s.%s", a->out_dir ? a->out_dir : ".", stem, sc->name);
        verdict v;
        int figs_ok;
        rc = worse(rc, evaluate_runs(a, sc, im, key, &f, a->out_dir ? base : NULL, &v, &figs_ok));
        if (figs_ok && nfig < sizeof figs)
            nfig += (size_t)snprintf(figs + nfig, sizeof figs - nfig,
                                     "| %s | ![original, encrypted, decrypted](%s.%s.triplet.png) | "
                                     "![histograms](%s.%s.hist.png) | ![scatter](%s.%s.scatter.png) |\n",
                                     sc->name, stem, sc->name, stem, sc->name, stem, sc->name);
        if (a->json)
            json_row(rep, im, sc, a, &f, &v);
        else
            md_row(rep, sc, a->runs, &f, &v);
        fflush(rep);
    }
    if (!a->json && nfig > 0)
        md_figures(rep, a->pairs, figs);
    return rc;
}

/* The report's stream: stdout, or DIR/report.md (results.jsonl) with --out-dir. NULL after
 * saying why. */
static FILE *open_report(const args *a)
{
    if (!a->out_dir)
        return stdout;
    char p[4096];
    if (mkdir(a->out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "dcmcryptstat: cannot create %s: %s\n", a->out_dir, strerror(errno));
        return NULL;
    }
    snprintf(p, sizeof p, "%s/%s", a->out_dir, a->json ? "results.jsonl" : "report.md");
    FILE *rep = fopen(p, "w");
    if (!rep)
        fprintf(stderr, "dcmcryptstat: cannot write %s: %s\n", p, strerror(errno));
    return rep;
}

/* The report on every file: the exit status. */
static int run(const args *a)
{
    dcmc_key key;
    if (a->key_file) {
        if (dcmc_key_read_file(a->key_file, &key) != DCMC_OK) {
            fprintf(stderr, "dcmcryptstat: cannot read key file %s\n", a->key_file);
            return 1;
        }
    } else {
        for (int i = 0; i < 32; i++)
            key.bytes[i] = (uint8_t)(0xA5 ^ (i * 29));
    }
    FILE *rep = open_report(a);
    if (!rep)
        return 4;
    if (!a->json)
        md_preamble(rep, a->runs);
    int rc = 0;
    for (int f = 0; f < a->nfiles; f++) {
        image im;
        char msg[DCMC_DICOM_MSG] = "";
        if (stat_load_image(a->files[f], &im, msg, sizeof msg) != 0) {
            fprintf(stderr, "dcmcryptstat: %s: %s\n", a->files[f], msg);
            rc = worse(rc, 2);
            continue;
        }
        rc = worse(rc, report_image(rep, a, &key, &im));
        free(im.px);
    }
    if (rep != stdout && fclose(rep) != 0) {
        fprintf(stderr, "dcmcryptstat: cannot write the report: %s\n", strerror(errno));
        return worse(rc, 4);
    }
    return rc;
}

/* The networks of every selected paper-* scheme. Missing or refused weights skip the scheme
 * with one line, or stop the run (exit 2) when --schemes named it: -1 to go on. */
static int load_models(args *a)
{
    for (size_t s = 0; s < NSCHEMES; s++) {
        const char *variant = app_paper_variant(k_schemes[s].name);
        if (!variant || !scheme_selected(a->schemes, k_schemes[s].name))
            continue;
        char msg[4600];
        if (app_paper_load(a->paper_dir, variant, &a->models[s], msg, sizeof msg) == DCMC_OK)
            continue;
        fprintf(stderr, "dcmcryptstat: %s: %s\n", a->schemes ? "error" : "skipping "
                "paper-* scheme", msg);
        if (a->schemes)
            return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    app_runtime_init(argv);
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc < 0)
        rc = load_models(&a);
    if (rc < 0)
        rc = run(&a);
    for (size_t s = 0; s < NSCHEMES; s++)
        dcmc_paper_model_free(a.models[s]);
    free(a.files);
    return rc;
}
