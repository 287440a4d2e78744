/*
 * dcmcrypt-demo - encrypts and decrypts PNG/TIFF images with the library and says what happened:
 * sizes, times, whether the round trip is exact, and the cipher image's basic statistics. It is
 * the README's first command until the DICOM tools exist, and a quick check of a build.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/io.h"
#include "dcmcrypt/metrics.h"
#include "paper_weights.h"
#include "runtime.h"

static const char *k_usage =
    "usage: dcmcrypt-demo [options] image...\n"
    "Encrypt and decrypt PNG or TIFF images (8/16-bit, gray or RGB) and report the result.\n"
    "  -o, --out-dir DIR     also write NAME.enc.png (cipher image) and NAME.dec.png\n"
    "      --key-file FILE   key (64 hex characters or 32 bytes); default: a fresh random key\n"
    "      --preset NAME     at-resnet-cm (default) or resnet-cm; paper-at-resnet-cm or\n"
    "                        paper-resnet-cm: the paper's trained system as published (gray\n"
    "                        images; lossy by design: its PSNR and largest error are reported)\n"
    "      --paper-weights DIR  its weight files (default: installed, else the source tree)\n"
    "      --no-standard-layer  chaos keystream only (research; the paper's cipher)\n"
    "      --threads N       threads (default: all cores, OMP_NUM_THREADS respected)\n"
    "  -q, --quiet           print only errors\n"
    "  -h, --help            this text\n"
    "      --version         versions and the SIMD path in use\n"
    "Exit status: 0 all exact (paper-*: all ran), 1 usage, 2 unreadable input or weights, 3 round\n"
    "trip not exact, 4 write failed.\n";

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int write_copy(const char *dir, const char *name, const char *suffix, const dcmc_raster *r,
                      const uint8_t *data)
{
    char path[4096];
    char stem[1024];
    snprintf(stem, sizeof stem, "%s", name);
    char *dot = strrchr(stem, '.');
    if (dot)
        *dot = 0;
    snprintf(path, sizeof path, "%s/%s.%s.png", dir, stem, suffix);
    dcmc_raster out = *r;
    out.data = (void *)data;
    dcmc_status st = dcmc_png_write(path, &out);
    if (st != DCMC_OK) {
        fprintf(stderr, "dcmcrypt-demo: cannot write %s: %s\n", path, dcmc_status_str(st));
        return 4;
    }
    return 0;
}

/* The command line. */
typedef struct args {
    const char *out_dir, *key_file, *paper, *paper_dir; /* paper: a paper-* scheme's variant */
    int quiet, nfiles;
    dcmc_options opt;
    char **files; /* compacted into argv itself: never ahead of the scan */
} args;

/* -1 to go on, or the exit code now (--help, --version, a usage error). */
static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    dcmc_options_default(&a->opt);
    a->files = argv + 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const int has_val = i + 1 < argc;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(k_usage, stdout);
            return 0;
        } else if (!strcmp(o, "--version")) {
            printf("%s\nSIMD path: %s\n", dcmc_build_info(), dcmc_simd_path());
            return 0;
        } else if ((!strcmp(o, "-o") || !strcmp(o, "--out-dir")) && has_val) {
            a->out_dir = argv[++i];
        } else if (!strcmp(o, "--key-file") && has_val) {
            a->key_file = argv[++i];
        } else if (!strcmp(o, "--paper-weights") && has_val) {
            a->paper_dir = argv[++i];
        } else if (!strcmp(o, "--preset") && has_val) {
            if ((a->paper = app_paper_variant(argv[++i])) == NULL &&
                dcmc_preset_by_name(argv[i], &a->opt.preset) != DCMC_OK) {
                fprintf(stderr, "dcmcrypt-demo: unknown preset '%s'\n", argv[i]);
                return 1;
            }
        } else if (!strcmp(o, "--no-standard-layer")) {
            a->opt.flags &= ~DCMC_FLAG_STANDARD_LAYER;
        } else if (!strcmp(o, "--threads") && has_val) {
            char *end;
            const long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > 1024) {
                fprintf(stderr, "dcmcrypt-demo: --threads needs a number from 1 to 1024\n");
                return 1;
            }
            a->opt.threads = (int)t;
        } else if (!strcmp(o, "-q") || !strcmp(o, "--quiet")) {
            a->quiet = 1;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "dcmcrypt-demo: unknown or incomplete option '%s'\n%s", o, k_usage);
            return 1;
        } else {
            a->files[a->nfiles++] = argv[i];
        }
    }
    if (a->nfiles == 0) {
        fputs(k_usage, stderr);
        return 1;
    }
    return -1;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* The entropy of the cipher image px (r's layout). */
static double cipher_entropy(const dcmc_raster *r, const uint8_t *px)
{
    const size_t n = (size_t)r->width * r->height * r->channels;
    uint32_t *v = malloc(n * sizeof *v);
    double ent = 0;
    if (v) {
        for (size_t i = 0; i < n; i++)
            v[i] = r->bit_depth == 8 ? px[i] : ((const uint16_t *)(const void *)px)[i];
        ent = dcmc_metric_entropy(v, n, r->bit_depth);
        free(v);
    }
    return ent;
}

/* The paper's system on a gray image: encrypt, decrypt, and what the lossy decoder cost. */
static int paper_trip(const args *a, const dcmc_paper_model *m, const dcmc_key *key,
                      const char *file, const dcmc_raster *r, const dcmc_layout *l, int rc)
{
    static const uint8_t nonce[DCMC_NONCE_BYTES] = {0x70, 0x61, 0x70, 0x65, 0x72};
    const size_t n = (size_t)r->width * r->height;
    uint8_t *px = malloc(r->size);
    uint32_t *v0 = malloc(n * sizeof *v0), *v1 = malloc(n * sizeof *v1);
    dcmc_status st = !px || !v0 || !v1 ? DCMC_ERR_NOMEM
                     : r->channels != 1 ? DCMC_ERR_UNSUPPORTED : DCMC_OK;
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (st == DCMC_OK) {
        memcpy(px, r->data, r->size);
        st = dcmc_paper_encrypt(m, key, nonce, l, px, r->size);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st == DCMC_OK && a->out_dir)
        rc = rc ? rc : write_copy(a->out_dir, base_name(file), "enc", r, px);
    if (st == DCMC_OK)
        st = dcmc_paper_decrypt(m, key, nonce, l, px, r->size);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    if (st == DCMC_OK) {
        if (a->out_dir)
            rc = rc ? rc : write_copy(a->out_dir, base_name(file), "dec", r, px);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            v0[i] = r->bit_depth == 8 ? ((const uint8_t *)r->data)[i]
                                      : ((const uint16_t *)(const void *)r->data)[i];
            v1[i] = r->bit_depth == 8 ? px[i] : ((const uint16_t *)(const void *)px)[i];
            worst = v0[i] > v1[i] ? fmax(worst, v0[i] - v1[i]) : fmax(worst, v1[i] - v0[i]);
        }
        if (!a->quiet)
            printf("%s: %ux%u %u-bit gray, encrypted in %.1f ms, decrypted in %.1f ms, lossy as "
                   "published: PSNR %.2f dB, largest error %.0f of %u levels\n", base_name(file),
                   r->width, r->height, r->bit_depth, ms_between(&t0, &t1), ms_between(&t1, &t2),
                   dcmc_metric_psnr(v0, v1, n, r->bit_depth), worst, (1u << r->bit_depth) - 1);
    } else {
        fprintf(stderr, "dcmcrypt-demo: %s: %s\n", file, r->channels != 1
                ? "the paper's system takes gray images only" : dcmc_status_str(st));
        rc = 2;
    }
    free(px);
    free(v0);
    free(v1);
    return rc;
}

/* Encrypt a copy of r's pixels, decrypt it, compare, say so. rc: the exit status so far; the
 * new one (2, 3 or 4 on failure). */
static int round_trip(const args *a, const dcmc_key *key, const char *file, const dcmc_raster *r,
                      const dcmc_layout *l, int rc)
{
    uint8_t *px = malloc(r->size);
    if (!px)
        return 2;
    memcpy(px, r->data, r->size);
    dcmc_header h;
    uint8_t *pl = NULL, *attrs = NULL;
    size_t pll = 0, al = 0;
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dcmc_status st = dcmc_image_encrypt(key, NULL, &a->opt, l, 1, px, r->size, NULL, 0, &h, &pl,
                                        &pll);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double te = ms_between(&t0, &t1);
    if (st != DCMC_OK) {
        fprintf(stderr, "dcmcrypt-demo: %s: encrypt: %s\n", file, dcmc_status_str(st));
        rc = 2;
    } else {
        const double ent = cipher_entropy(r, px);
        if (a->out_dir && !rc)
            rc = write_copy(a->out_dir, base_name(file), "enc", r, px);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        st = dcmc_image_decrypt(key, &h, a->opt.threads, px, r->size, pl, pll, &attrs, &al);
        clock_gettime(CLOCK_MONOTONIC, &t2);
        const int exact = st == DCMC_OK && memcmp(px, r->data, r->size) == 0;
        if (a->out_dir && st == DCMC_OK && !rc)
            rc = write_copy(a->out_dir, base_name(file), "dec", r, px);
        if (!a->quiet || !exact)
            printf("%s: %ux%u %u-bit %s, encrypted in %.1f ms, decrypted in %.1f ms, "
                   "cipher entropy %.4f of %u bits, round trip %s\n",
                   base_name(file), r->width, r->height, r->bit_depth,
                   r->channels == 1 ? "gray" : "RGB", te, ms_between(&t1, &t2), ent, r->bit_depth,
                   exact ? "exact" : (st != DCMC_OK ? dcmc_status_str(st) : "NOT EXACT"));
        if (!exact)
            rc = 3;
    }
    dcmc_free(pl, pll);
    dcmc_free(attrs, al);
    free(px);
    return rc;
}

int main(int argc, char **argv)
{
    app_runtime_init(argv);
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.out_dir && mkdir(a.out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "dcmcrypt-demo: cannot create %s: %s\n", a.out_dir, strerror(errno));
        return 4;
    }
    dcmc_key key;
    dcmc_status st = a.key_file ? dcmc_key_read_file(a.key_file, &key) : dcmc_key_generate(&key);
    if (st != DCMC_OK) {
        fprintf(stderr, "dcmcrypt-demo: key: %s\n", dcmc_status_str(st));
        return 2;
    }
    dcmc_paper_model *model = NULL;
    char msg[4600];
    if (a.paper && app_paper_load(a.paper_dir, a.paper, &model, msg, sizeof msg) != DCMC_OK) {
        fprintf(stderr, "dcmcrypt-demo: %s\n", msg);
        dcmc_wipe(&key, sizeof key);
        return 2;
    }
    if (!a.quiet && a.paper)
        printf("dcmcrypt %s, the paper's system as published (paper-%s: trained encoder, "
               "logistic XOR, trained decoder), key %s\n", DCMC_VERSION_STRING, a.paper,
               a.key_file ? a.key_file : "random");
    else if (!a.quiet)
        printf("dcmcrypt %s, preset %s%s, SIMD %s, key %s\n", DCMC_VERSION_STRING,
               dcmc_preset_name(a.opt.preset.id),
               a.opt.flags & DCMC_FLAG_STANDARD_LAYER ? " + ChaCha20" : " (chaos only)",
               dcmc_simd_path(), a.key_file ? a.key_file : "random");
    rc = 0;
    for (int f = 0; f < a.nfiles; f++) {
        dcmc_raster r;
        dcmc_layout l;
        st = dcmc_raster_read(a.files[f], &r);
        if (st == DCMC_OK && (st = dcmc_raster_layout(&r, &l)) != DCMC_OK)
            dcmc_raster_free(&r);
        if (st != DCMC_OK) {
            fprintf(stderr, "dcmcrypt-demo: %s: %s\n", a.files[f], dcmc_status_str(st));
            rc = rc ? rc : 2;
            continue;
        }
        rc = model ? paper_trip(&a, model, &key, a.files[f], &r, &l, rc)
                   : round_trip(&a, &key, a.files[f], &r, &l, rc);
        dcmc_raster_free(&r);
    }
    dcmc_paper_model_free(model);
    dcmc_wipe(&key, sizeof key);
    return rc;
}
