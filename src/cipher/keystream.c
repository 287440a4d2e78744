/*
 * keystream.c - the per-frame keystreams of docs/format.md section 9, the chaos keystream
 * combined with ChaCha20 (the standard layer, on by default) and the diffusion keystream, fed to
 * the diffusion passes. The two streams are independent, so with two or more threads one is
 * generated whole while the other is generated piece by piece into the pass that consumes it; on
 * one thread both are generated together, piece by piece.
 */
#include <string.h>

#include "cipher/internal.h"

/* k: (o1 XOR c) mod M, chaos words o1 XORed into ChaCha20 words c (zeros without the layer). */
typedef struct mixed_gen {
    dcmci_logistic chaos;
    dcmci_chacha20 chacha;
    uint32_t mask;
} mixed_gen;

static dcmc_status mixed_open(mixed_gen *g, const dcmci_ks_frame *f)
{
    uint8_t key[32];
    memset(g, 0, sizeof *g);
    g->mask = f->mask;
    dcmc_status st = dcmci_subkey(f->prk, "chaos", f->frame, key);
    if (st == DCMC_OK) {
        dcmci_logistic_seed(&g->chaos, key);
        if (f->standard_layer && (st = dcmci_subkey(f->prk, "chacha", f->frame, key)) == DCMC_OK)
            st = dcmci_chacha20_open(&g->chacha, key);
    }
    dcmc_wipe(key, sizeof key);
    return st;
}

/* The ChaCha20 words of the next m values of k (zeros without the standard layer). */
static dcmc_status chacha_next(mixed_gen *g, uint32_t *k, size_t m)
{
    if (g->chacha.ctx == NULL) {
        memset(k, 0, m * sizeof *k);
        return DCMC_OK;
    }
    /* ChaCha20 bytes read as little-endian words (a plain copy on little-endian hosts). */
    dcmc_status st = dcmci_chacha20_next(&g->chacha, (uint8_t *)k, m * sizeof *k);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < m; i++)
        k[i] = dcmci_load32le((const uint8_t *)&k[i]);
#endif
    return st;
}

static dcmc_status mixed_next(mixed_gen *g, uint32_t *k, size_t m)
{
    uint32_t blk[256];
    dcmc_status st = chacha_next(g, k, m);
    for (size_t i = 0; st == DCMC_OK && i < m; i += 256) {
        const size_t b = m - i < 256 ? m - i : 256;
        dcmci_logistic_fill(&g->chaos, blk, b);
        for (size_t j = 0; j < b; j++)
            k[i + j] = (k[i + j] ^ blk[j]) & g->mask;
    }
    dcmc_wipe(blk, sizeof blk);
    return st;
}

/* The next m values of k and of d at once: on one thread the two logistic orbits interleave. */
static dcmc_status both_next(mixed_gen *g, dcmci_logistic *dg, uint32_t *k, uint32_t *d, size_t m)
{
    uint32_t blk[256];
    dcmc_status st = chacha_next(g, k, m);
    for (size_t i = 0; st == DCMC_OK && i < m; i += 256) {
        const size_t b = m - i < 256 ? m - i : 256;
        dcmci_logistic_fill2(&g->chaos, blk, dg, d + i, b);
        for (size_t j = 0; j < b; j++) {
            k[i + j] = (k[i + j] ^ blk[j]) & g->mask;
            d[i + j] &= g->mask;
        }
    }
    dcmc_wipe(blk, sizeof blk);
    return st;
}

static void mixed_close(mixed_gen *g)
{
    if (g->chacha.ctx != NULL)
        dcmci_chacha20_close(&g->chacha);
    dcmc_wipe(g, sizeof *g);
}

/* d: o2 mod M from the 'diffusion' generator. */
static dcmc_status diffusion_open(dcmci_logistic *g, const dcmci_ks_frame *f)
{
    uint8_t key[32];
    dcmc_status st = dcmci_subkey(f->prk, "diffusion", f->frame, key);
    if (st == DCMC_OK)
        dcmci_logistic_seed(g, key);
    dcmc_wipe(key, sizeof key);
    return st;
}

static void diffusion_next(dcmci_logistic *g, uint32_t mask, uint32_t *d, size_t m)
{
    dcmci_logistic_fill(g, d, m);
    for (size_t i = 0; i < m; i++)
        d[i] &= mask;
}

static dcmc_status mixed_whole(const dcmci_ks_frame *f, uint32_t *k, size_t n)
{
    mixed_gen g;
    dcmc_status st = mixed_open(&g, f);
    if (st == DCMC_OK)
        st = mixed_next(&g, k, n);
    mixed_close(&g);
    return st;
}

static dcmc_status diffusion_whole(const dcmci_ks_frame *f, uint32_t *d, size_t n)
{
    dcmci_logistic g;
    dcmc_status st = diffusion_open(&g, f);
    if (st == DCMC_OK)
        diffusion_next(&g, f->mask, d, n);
    dcmc_wipe(&g, sizeof g);
    return st;
}

/* The pass that takes its keystream front to back, fed piece by piece: encryption's forward pass
 * (k), decryption's undoing of the backward pass (d). */
static dcmc_status piecewise_pass(const dcmci_ks_frame *f, uint32_t *v, size_t n, uint32_t *chunk,
                                  int decrypt)
{
    mixed_gen k;
    dcmci_logistic d;
    uint32_t c[2] = {0, 0};
    dcmc_status st = decrypt ? diffusion_open(&d, f) : mixed_open(&k, f);
    for (size_t i = 0; st == DCMC_OK && i < n; i += DCMCI_KS_CHUNK) {
        const size_t m = n - i < DCMCI_KS_CHUNK ? n - i : DCMCI_KS_CHUNK;
        if (decrypt) {
            diffusion_next(&d, f->mask, chunk, m);
            dcmci_undiffuse_backward(v, n, i, i + m, chunk, f->bits);
        } else if ((st = mixed_next(&k, chunk, m)) == DCMC_OK) {
            dcmci_diffuse_forward(v + i, chunk, m, f->bits, c);
        }
    }
    if (decrypt)
        dcmc_wipe(&d, sizeof d);
    else
        mixed_close(&k);
    return st;
}

/* One thread: both streams made together, a piece at a time, the pass that reads its stream
 * front to back fed from the piece, the other stream kept whole. */
static dcmc_status streams_one_thread(const dcmci_ks_frame *f, uint32_t *v, size_t n,
                                      uint32_t *whole, uint32_t *chunk, int decrypt)
{
    mixed_gen k;
    dcmci_logistic d;
    uint32_t c[2] = {0, 0};
    dcmc_status st = mixed_open(&k, f);
    if (st == DCMC_OK)
        st = diffusion_open(&d, f);
    for (size_t i = 0; st == DCMC_OK && i < n; i += DCMCI_KS_CHUNK) {
        const size_t m = n - i < DCMCI_KS_CHUNK ? n - i : DCMCI_KS_CHUNK;
        if ((st = both_next(&k, &d, decrypt ? whole + i : chunk, decrypt ? chunk : whole + i, m)) !=
            DCMC_OK)
            break;
        if (decrypt)
            dcmci_undiffuse_backward(v, n, i, i + m, chunk, f->bits);
        else
            dcmci_diffuse_forward(v + i, chunk, m, f->bits, c);
    }
    mixed_close(&k);
    dcmc_wipe(&d, sizeof d);
    return st;
}

dcmc_status dcmci_diffuse_frame(const dcmci_ks_frame *f, uint32_t *v, size_t n, uint32_t *whole,
                                uint32_t *chunk, int decrypt, uint64_t *ks_ns)
{
    dcmc_status sw = DCMC_OK, sp = DCMC_OK;
    const uint64_t t0 = dcmci_now_ns();
    if (dcmci_team_size(f->team) <= 1) {
        sp = streams_one_thread(f, v, n, whole, chunk, decrypt);
    } else {
        /* For the team: each section's elapsed and CPU time. One thread alone would take the
         * calling thread's section at the calling thread's pace, and the other section's CPU
         * time at that same pace. */
        uint64_t wall[2] = {0, 0}, cpu[2] = {0, 0};
        int by_caller[2] = {0, 0};
#pragma omp parallel sections num_threads(2)
        {
#pragma omp section
            {
                const uint64_t c0 = dcmci_thread_cpu_ns();
                sw = decrypt ? mixed_whole(f, whole, n) : diffusion_whole(f, whole, n);
                wall[0] = dcmci_now_ns() - t0;
                cpu[0] = dcmci_thread_cpu_ns() - c0;
                by_caller[0] = dcmci_thread_id() == 0;
            }
#pragma omp section
            {
                const uint64_t c0 = dcmci_thread_cpu_ns();
                sp = piecewise_pass(f, v, n, chunk, decrypt);
                wall[1] = dcmci_now_ns() - t0;
                cpu[1] = dcmci_thread_cpu_ns() - c0;
                by_caller[1] = dcmci_thread_id() == 0;
            }
        }
        const uint64_t elapsed = dcmci_now_ns() - t0;
        if (by_caller[0] != by_caller[1]) {
            const int mine = by_caller[1];
            const double pace = cpu[mine] > 0 ? (double)wall[mine] / (double)cpu[mine] : 1.0;
            dcmci_team_account(f->team, elapsed,
                               wall[mine] + (uint64_t)(pace * (double)cpu[1 - mine]));
        } else { /* one thread took both sections: no measure of a second */
            dcmci_team_account(f->team, elapsed, elapsed);
        }
    }
    *ks_ns = dcmci_now_ns() - t0;
    if (sw != DCMC_OK || sp != DCMC_OK)
        return sw != DCMC_OK ? sw : sp;
    if (decrypt)
        dcmci_undiffuse_forward(v, whole, n, f->bits);
    else
        dcmci_diffuse_backward(v, whole, n, f->bits);
    return DCMC_OK;
}
