/*
 * dcmcrypt-demo - encrypts and decrypts PNG/TIFF images with the library and says what happened:
 * sizes, times, whether the round trip is exact, and the cipher image's basic statistics. It is
 * the README's first command until the DICOM tools exist, and a quick check of a build.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/io.h"
#include "dcmcrypt/metrics.h"

static const char *k_usage =
    "usage: dcmcrypt-demo [options] image...\n"
    "Encrypt and decrypt PNG or TIFF images (8/16-bit, gray or RGB) and report the result.\n"
    "  -o, --out-dir DIR     also write NAME.enc.png (cipher image) and NAME.dec.png\n"
    "      --key-file FILE   key (64 hex characters or 32 bytes); default: a fresh random key\n"
    "      --preset NAME     at-resnet-cm (default) or resnet-cm\n"
    "      --no-standard-layer  chaos keystream only (research; the paper's cipher)\n"
    "      --threads N       threads (default: all cores, OMP_NUM_THREADS respected)\n"
    "  -q, --quiet           print only errors\n"
    "  -h, --help            this text\n"
    "      --version         versions and the SIMD path in use\n"
    "Exit status: 0 all exact, 1 usage, 2 unreadable input, 3 round trip not exact, 4 write failed.\n";

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

int main(int argc, char **argv)
{
    const char *out_dir = NULL, *key_file = NULL;
    int quiet = 0, nfiles = 0;
    dcmc_options opt;
    dcmc_options_default(&opt);
    char **files = calloc((size_t)argc, sizeof *files);
    if (!files)
        return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_usage, stdout);
            free(files);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("%s\nSIMD path: %s\n", dcmc_build_info(), dcmc_simd_path());
            free(files);
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out-dir")) && has_val) {
            out_dir = argv[++i];
        } else if (!strcmp(a, "--key-file") && has_val) {
            key_file = argv[++i];
        } else if (!strcmp(a, "--preset") && has_val) {
            if (dcmc_preset_by_name(argv[++i], &opt.preset) != DCMC_OK) {
                fprintf(stderr, "dcmcrypt-demo: unknown preset '%s'\n", argv[i]);
                free(files);
                return 1;
            }
        } else if (!strcmp(a, "--no-standard-layer")) {
            opt.flags &= ~DCMC_FLAG_STANDARD_LAYER;
        } else if (!strcmp(a, "--threads") && has_val) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > 1024) {
                fprintf(stderr, "dcmcrypt-demo: --threads needs a number from 1 to 1024\n");
                free(files);
                return 1;
            }
            opt.threads = (int)t;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dcmcrypt-demo: unknown or incomplete option '%s'\n%s", a, k_usage);
            free(files);
            return 1;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles == 0) {
        fputs(k_usage, stderr);
        free(files);
        return 1;
    }
    if (out_dir && mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "dcmcrypt-demo: cannot create %s: %s\n", out_dir, strerror(errno));
        free(files);
        return 4;
    }
    dcmc_key key;
    dcmc_status st = key_file ? dcmc_key_read_file(key_file, &key) : dcmc_key_generate(&key);
    if (st != DCMC_OK) {
        fprintf(stderr, "dcmcrypt-demo: key: %s\n", dcmc_status_str(st));
        free(files);
        return 2;
    }
    if (!quiet)
        printf("dcmcrypt %s, preset %s%s, SIMD %s, key %s\n", DCMC_VERSION_STRING,
               dcmc_preset_name(opt.preset.id),
               opt.flags & DCMC_FLAG_STANDARD_LAYER ? " + ChaCha20" : " (chaos only)",
               dcmc_simd_path(), key_file ? key_file : "random");
    int rc = 0;
    for (int f = 0; f < nfiles; f++) {
        dcmc_raster r;
        dcmc_layout l;
        st = dcmc_raster_read(files[f], &r);
        if (st == DCMC_OK && (st = dcmc_raster_layout(&r, &l)) != DCMC_OK)
            dcmc_raster_free(&r);
        if (st != DCMC_OK) {
            fprintf(stderr, "dcmcrypt-demo: %s: %s\n", files[f], dcmc_status_str(st));
            rc = rc ? rc : 2;
            continue;
        }
        uint8_t *px = malloc(r.size);
        if (!px) {
            dcmc_raster_free(&r);
            rc = 2;
            continue;
        }
        memcpy(px, r.data, r.size);
        dcmc_header h;
        uint8_t *pl = NULL, *attrs = NULL;
        size_t pll = 0, al = 0;
        struct timespec t0, t1, t2;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        st = dcmc_image_encrypt(&key, NULL, &opt, &l, 1, px, r.size, NULL, 0, &h, &pl, &pll);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const double enc_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (st != DCMC_OK) {
            fprintf(stderr, "dcmcrypt-demo: %s: encrypt: %s\n", files[f], dcmc_status_str(st));
            rc = 2;
        } else {
            size_t n = (size_t)r.width * r.height * r.channels;
            uint32_t *v = malloc(n * sizeof *v);
            double ent = 0;
            if (v) {
                for (size_t i = 0; i < n; i++)
                    v[i] = r.bit_depth == 8 ? px[i] : ((uint16_t *)(void *)px)[i];
                ent = dcmc_metric_entropy(v, n, r.bit_depth);
                free(v);
            }
            if (out_dir && !rc)
                rc = write_copy(out_dir, base_name(files[f]), "enc", &r, px);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            st = dcmc_image_decrypt(&key, &h, opt.threads, px, r.size, pl, pll, &attrs, &al);
            clock_gettime(CLOCK_MONOTONIC, &t2);
            int exact = st == DCMC_OK && memcmp(px, r.data, r.size) == 0;
            if (out_dir && st == DCMC_OK && !rc)
                rc = write_copy(out_dir, base_name(files[f]), "dec", &r, px);
            double te = enc_ms;
            double td = (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6;
            if (!quiet || !exact)
                printf("%s: %ux%u %u-bit %s, encrypted in %.1f ms, decrypted in %.1f ms, "
                       "cipher entropy %.4f of %u bits, round trip %s\n",
                       base_name(files[f]), r.width, r.height, r.bit_depth,
                       r.channels == 1 ? "gray" : "RGB", te, td, ent, r.bit_depth,
                       exact ? "exact" : (st != DCMC_OK ? dcmc_status_str(st) : "NOT EXACT"));
            if (!exact)
                rc = 3;
        }
        dcmc_free(pl, pll);
        dcmc_free(attrs, al);
        free(px);
        dcmc_raster_free(&r);
    }
    dcmc_wipe(&key, sizeof key);
    free(files);
    return rc;
}
