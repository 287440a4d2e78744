/*
 * keystream.c - the per-frame keystreams of docs/format.md section 9: the chaos keystream
 * combined with ChaCha20 (the standard layer, on by default), and the diffusion keystream. The
 * two are independent, so with two or more threads they are generated side by side.
 */
#include <string.h>

#include "cipher/internal.h"

/* d[i] = o2[i] mod M from the 'diffusion' generator. */
static dcmc_status diffusion_stream(const uint8_t prk[32], uint32_t frame, uint32_t mask,
                                    uint32_t *d, size_t n)
{
    uint8_t key[32];
    dcmci_logistic g;
    dcmc_status st = dcmci_subkey(prk, "diffusion", frame, key);
    if (st == DCMC_OK) {
        dcmci_logistic_seed(&g, key);
        dcmci_logistic_fill(&g, d, n);
        for (size_t i = 0; i < n; i++)
            d[i] &= mask;
        dcmc_wipe(&g, sizeof g);
    }
    dcmc_wipe(key, sizeof key);
    return st;
}

/* k[i] = (o1[i] XOR c[i]) mod M: chaos words XORed into the ChaCha20 words (or zeros). */
static dcmc_status mixed_stream(const uint8_t prk[32], uint32_t frame, int standard_layer,
                                uint32_t mask, uint32_t *k, size_t n)
{
    uint8_t key[32];
    dcmci_logistic g;
    uint32_t blk[256];
    dcmc_status st = DCMC_OK;
    if (standard_layer) {
        /* ChaCha20 bytes read as little-endian words (a plain copy on little-endian hosts). */
        if ((st = dcmci_subkey(prk, "chacha", frame, key)) != DCMC_OK ||
            (st = dcmci_chacha20_stream(key, (uint8_t *)k, n * sizeof *k)) != DCMC_OK)
            goto out;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (size_t i = 0; i < n; i++)
            k[i] = dcmci_load32le((const uint8_t *)&k[i]);
#endif
    } else {
        memset(k, 0, n * sizeof *k);
    }
    if ((st = dcmci_subkey(prk, "chaos", frame, key)) != DCMC_OK)
        goto out;
    dcmci_logistic_seed(&g, key);
    /* Chaos words in blocks, XORed in without a second frame-sized buffer. */
    for (size_t i = 0; i < n; i += 256) {
        size_t m = n - i < 256 ? n - i : 256;
        dcmci_logistic_fill(&g, blk, m);
        for (size_t j = 0; j < m; j++)
            k[i + j] = (k[i + j] ^ blk[j]) & mask;
    }
    dcmc_wipe(&g, sizeof g);
    dcmc_wipe(blk, sizeof blk);
out:
    dcmc_wipe(key, sizeof key);
    return st;
}

dcmc_status dcmci_keystream_frame(const uint8_t prk[32], uint32_t frame, int standard_layer,
                                 uint32_t mask, uint32_t *k, uint32_t *d, size_t n, int threads)
{
    dcmc_status sd = DCMC_OK, sk = DCMC_OK;
    (void)threads;
#pragma omp parallel sections num_threads(threads > 1 ? 2 : 1)
    {
#pragma omp section
        sd = diffusion_stream(prk, frame, mask, d, n);
#pragma omp section
        sk = mixed_stream(prk, frame, standard_layer, mask, k, n);
    }
    return sd != DCMC_OK ? sd : sk;
}
