/*
 * dcmcrypt-bench - frames/s and GOP/s of the frame cipher on square frames (512x512 unless
 * --size), per preset, bit depth and thread count, split into network, keystream and diffusion,
 * with the peak memory of each configuration. One line per configuration, in key=value form for
 * scripts. --contended runs a busy thread on every core beside it (a machine shared with other
 * work); --torch also runs bench/torch_ref.py (the same network in PyTorch) and prints the speed
 * ratio. Timing only: nothing here asserts a speed.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cipher/internal.h"
#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/io.h"
#include "nn/kernels.h"
#include "runtime.h"

#include <openssl/evp.h>

#define DIM 512u

static unsigned g_size = DIM; /* frame side of the timed runs (--size); the digest keeps DIM */

/* Network operations (2 per multiply-accumulate) of one frame: 2*rounds evaluations at half size. */
static double network_ops(const dcmc_preset *p, unsigned samples)
{
    double hw = (g_size / 2.0) * (g_size / 2.0), cin = 2.0 * samples, c = 16;
    double macs = hw * (9 * cin * c + p->blocks * 2 * 9 * c * c + 9 * c * cin);
    if (p->attention)
        macs += hw * p->blocks * (2.0 * p->sa_kernel * p->sa_kernel + 3 * c);
    return 2.0 * macs * 2 * p->rounds;
}

static void load_frame(uint8_t *px, unsigned dim, unsigned bits, const char *src_dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/png/nema-wg04_CT1_chest_512x512_gray%u.png", src_dir, bits);
    dcmc_raster r;
    if (dim == DIM && dcmc_png_read(path, &r) == DCMC_OK && r.width == DIM && r.height == DIM &&
        r.channels == 1 && r.bit_depth == bits) {
        memcpy(px, r.data, r.size);
        dcmc_raster_free(&r);
        return;
    }
    /* No sample data or another size: a smooth synthetic frame (the cipher's cost does not
     * depend on content). */
    for (size_t i = 0; i < (size_t)dim * dim; i++) {
        unsigned v = (unsigned)((i % dim) * 3 + (i / dim) * 5);
        if (bits == 8)
            px[i] = (uint8_t)v;
        else
            px[2 * i] = (uint8_t)v, px[2 * i + 1] = (uint8_t)(v >> 8 & 0x0F);
    }
}

/* Peak resident memory: Linux keeps a high-water mark (VmHWM) that writing 5 to
 * /proc/self/clear_refs resets, so every configuration reports its own peak. -1 elsewhere. */
static void peak_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static double peak_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtod(line + 6, NULL);
    if (f)
        fclose(f);
    return kib < 0 ? -1 : kib / 1024;
}

/* --contended: one thread per online core spinning at normal priority, as other work on a shared
 * machine would. They run from contention_start() to contention_stop(). */
static atomic_int g_spin_stop;
static pthread_t g_spinners[256];
static int g_nspinners;

static void *spin(void *arg)
{
    volatile unsigned long x = 0;
    (void)arg;
    while (!atomic_load_explicit(&g_spin_stop, memory_order_relaxed))
        x = x + 1;
    return NULL;
}

static void contention_start(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > 256)
        n = 256;
    atomic_store(&g_spin_stop, 0);
    for (g_nspinners = 0; g_nspinners < n; g_nspinners++)
        if (pthread_create(&g_spinners[g_nspinners], NULL, spin, NULL) != 0)
            break;
}

static void contention_stop(void)
{
    atomic_store(&g_spin_stop, 1);
    for (int i = 0; i < g_nspinners; i++)
        pthread_join(g_spinners[i], NULL);
    g_nspinners = 0;
}

_Noreturn static void fail(const char *what)
{
    fprintf(stderr, "dcmcrypt-bench: %s\n", what);
    exit(2);
}

static double run(const char *preset, unsigned bits, int threads, int frames, const char *data_dir,
                  int contended)
{
    peak_reset();
    dcmc_header h;
    memset(&h, 0, sizeof h);
    h.version = DCMC_FORMAT_VERSION;
    h.flags = DCMC_FLAG_STANDARD_LAYER;
    dcmc_layout l = {g_size, g_size, 1, 0, bits, bits, bits - 1, 0};
    h.layout = l;
    h.frames = (uint32_t)frames;
    dcmc_key key;
    size_t fb;
    if (dcmc_preset_by_name(preset, &h.preset) != DCMC_OK || dcmc_key_generate(&key) != DCMC_OK ||
        dcmci_random(h.nonce, sizeof h.nonce) != DCMC_OK ||
        dcmc_layout_frame_bytes(&l, &fb) != DCMC_OK)
        fail("cannot set up");
    uint8_t *px = malloc(fb), *ct = malloc(fb);
    dcmc_frame_cipher *fc;
    if (!px || !ct || dcmc_frame_cipher_new(&fc, &key, &h, threads) != DCMC_OK)
        fail("cannot set up");
    load_frame(px, g_size, bits, data_dir);
    /* warm-up: page faults, thread pool */
    if (dcmc_frame_encrypt(fc, 0, px, ct, fb) != DCMC_OK)
        fail("encryption failed");
    if (contended)
        contention_start();
    uint64_t net = 0, ks = 0, dif = 0, t0 = dcmci_now_ns();
    for (int f = 0; f < frames; f++) {
        if (dcmc_frame_encrypt(fc, (uint32_t)f, px, ct, fb) != DCMC_OK)
            fail("encryption failed");
        dcmc_frame_timing t;
        dcmc_frame_cipher_timing(fc, &t);
        net += t.network_ns;
        ks += t.keystream_ns;
        dif += t.diffusion_ns;
    }
    double total = (double)(dcmci_now_ns() - t0) / 1e6 / frames;
    if (contended)
        contention_stop();
    double ops = network_ops(&h.preset, 1);
    printf("preset=%s bits=%u size=%u threads=%d contended=%d ms_per_frame=%.2f frames_per_s=%.2f "
           "gops=%.1f network_ms=%.2f keystream_ms=%.2f diffusion_ms=%.2f network_gops=%.1f "
           "peak_mib=%.1f simd=%s\n",
           preset, bits, g_size, threads, contended, total, 1e3 / total, ops / (total * 1e6),
           (double)net / 1e6 / frames, (double)ks / 1e6 / frames, (double)dif / 1e6 / frames,
           ops / ((double)net / frames), peak_mib(), dcmc_simd_path());
    fflush(stdout);
    dcmc_frame_cipher_free(fc);
    free(px);
    free(ct);
    return total;
}

/* SHA-256 of the cipher frames of fixed key, nonce and content for several layouts: scripts
 * compare it across builds (optimised vs -O0) and machines. */
static int digest(const char *data_dir)
{
    static const dcmc_layout layouts[] = {
        {DIM, DIM, 1, 0, 8, 8, 7, 0}, {DIM, DIM, 1, 0, 16, 16, 15, 0}, {DIM, DIM, 1, 0, 16, 12, 11, 1},
        {241, 317, 3, 0, 8, 8, 7, 0},  {99, 101, 3, 1, 16, 10, 9, 0},  {64, 60, 1, 0, 32, 32, 31, 1},
    };
    const char *presets[] = {"at-resnet-cm", "resnet-cm"};
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
        for (int p = 0; p < 2; p++) {
            for (int threads = 1; threads <= 2; threads++) {
                const dcmc_layout *l = &layouts[li];
                dcmc_header h;
                memset(&h, 0, sizeof h);
                h.version = DCMC_FORMAT_VERSION;
                h.flags = DCMC_FLAG_STANDARD_LAYER;
                h.layout = *l;
                h.frames = 1;
                for (int i = 0; i < 16; i++)
                    h.nonce[i] = (uint8_t)(i + 1);
                dcmc_key key;
                for (int i = 0; i < 32; i++)
                    key.bytes[i] = (uint8_t)(7 * i + 3);
                size_t fb = 0;
                uint8_t *px = NULL;
                if (dcmc_preset_by_name(presets[p], &h.preset) != DCMC_OK ||
                    dcmc_layout_frame_bytes(l, &fb) != DCMC_OK || (px = malloc(fb)) == NULL)
                    fail("cannot set up");
                if (l->rows == DIM && l->samples == 1 && l->bits_allocated == l->bits_stored)
                    load_frame(px, DIM, l->bits_allocated, data_dir);
                else
                    for (size_t i = 0; i < fb; i++)
                        px[i] = (uint8_t)(i * 2654435761u >> 13);
                dcmc_frame_cipher *fc;
                if (dcmc_frame_cipher_new(&fc, &key, &h, threads) != DCMC_OK ||
                    dcmc_frame_encrypt(fc, 0, px, px, fb) != DCMC_OK) {
                    fprintf(stderr, "dcmcrypt-bench: digest run failed\n");
                    return 2;
                }
                unsigned char md[32];
                unsigned int mdl = 0;
                if (EVP_Digest(px, fb, md, &mdl, EVP_sha256(), NULL) != 1)
                    fail("SHA-256 failed");
                printf("%s %ux%u s%u p%u ba%u bs%u sg%u threads=%d sha256=", presets[p], l->rows,
                       l->cols, l->samples, l->planar, l->bits_allocated, l->bits_stored,
                       l->is_signed, threads);
                for (unsigned i = 0; i < mdl; i++)
                    printf("%02x", md[i]);
                printf("\n");
                dcmc_frame_cipher_free(fc);
                free(px);
            }
        }
    }
    return 0;
}

static double torch_ms(const char *script, const char *preset, int threads, int frames)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s' --threads %d --frames %d "
             "--size %u%s",
             script, threads, frames, g_size, strcmp(preset, "resnet-cm") == 0 ? " --no-attention" : "");
    /* NOLINTNEXTLINE(cert-env33-c): our own script at a build-time path, run on request */
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[1024];
    double ms = -1;
    while (fgets(line, sizeof line, p)) {
        fputs(line, stdout);
        char *m = strstr(line, "ms_per_frame=");
        if (m)
            ms = strtod(m + 13, NULL); /* no number: 0, which the caller takes as unavailable */
    }
    return pclose(p) == 0 ? ms : -1;
}

/* An integer option in [lo, hi], or exit 1. */
static int int_arg(const char *opt, const char *s, int lo, int hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "dcmcrypt-bench: %s wants an integer from %d to %d, not '%s'\n", opt, lo,
                hi, s);
        exit(1);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    app_runtime_init(argv);
    int frames = 20, torch = 0, only_threads = 0, bits_only = 0, contended = 0;
    const char *preset_only = NULL, *data_dir = DCMC_SAMPLE_DIR, *script = DCMC_TORCH_SCRIPT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc)
            frames = int_arg(argv[i], argv[i + 1], 0, INT_MAX), i++;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            only_threads = int_arg(argv[i], argv[i + 1], 0, INT_MAX), i++;
        else if (strcmp(argv[i], "--bits") == 0 && i + 1 < argc)
            bits_only = int_arg(argv[i], argv[i + 1], 0, 32), i++;
        else if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
            preset_only = argv[++i];
        else if (strcmp(argv[i], "--simd") == 0 && i + 1 < argc) {
            if (dcmci_simd_force(argv[++i]) != DCMC_OK) {
                fprintf(stderr, "dcmcrypt-bench: SIMD path '%s' not available\n", argv[i]);
                return 1;
            }
        } else if (strcmp(argv[i], "--digest") == 0)
            return digest(data_dir);
        else if (strcmp(argv[i], "--torch") == 0)
            torch = 1;
        else if (strcmp(argv[i], "--contended") == 0)
            contended = 1;
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            g_size = (unsigned)int_arg(argv[i], argv[i + 1], 16, 16384), i++;
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data_dir = argv[++i];
        else {
            printf("usage: dcmcrypt-bench [--frames N] [--threads N] [--bits 8|16] [--preset NAME]\n"
                   "                      [--size N] [--contended] [--simd scalar|avx2|avx512-vnni]\n"
                   "                      [--torch] [--data DIR] [--digest]\n"
                   "One line per configuration: NxN frames (--size, default 512), frames/s, GOP/s of\n"
                   "the network (2 ops per multiply-accumulate), the split into network, keystream\n"
                   "and diffusion, and the configuration's peak resident memory. --contended runs a\n"
                   "busy thread on every core meanwhile (a shared machine). --torch runs the PyTorch\n"
                   "reference (bench/torch_ref.py) beside it, under the same contention.\n"
                   "--digest prints SHA-256 of fixed-key cipher frames (build comparisons).\n");
            return strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ? 0 : 1;
        }
    }
    if (frames < 1)
        frames = 1;
    printf("# %s; SIMD %s\n", dcmc_build_info(), dcmc_simd_path());
    const char *presets[] = {"at-resnet-cm", "resnet-cm"};
    const unsigned bitsv[] = {8, 16};
    const int threadsv[] = {1, 2};
    for (int p = 0; p < 2; p++) {
        if (preset_only && strcmp(preset_only, presets[p]) != 0)
            continue;
        for (int b = 0; b < 2; b++) {
            if (bits_only && (unsigned)bits_only != bitsv[b])
                continue;
            for (int t = 0; t < 2; t++) {
                if (only_threads && only_threads != threadsv[t])
                    continue;
                double ms = run(presets[p], bitsv[b], threadsv[t], frames, data_dir, contended);
                if (torch && b == 1) {
                    if (contended)
                        contention_start();
                    double tm = torch_ms(script, presets[p], threadsv[t], frames);
                    if (contended)
                        contention_stop();
                    if (tm > 0)
                        printf("ratio preset=%s threads=%d torch_over_dcmcrypt=%.2f\n", presets[p],
                               threadsv[t], tm / ms);
                    else
                        printf("# PyTorch reference not available (python3-torch missing?)\n");
                }
            }
        }
    }
    return 0;
}
