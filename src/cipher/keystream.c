/*
 * keystream.c - the per-frame keystreams of docs/format.md section 9: the chaos keystream
 * combined with ChaCha20 (the standard layer, on by default), and the diffusion keystream.
 */
#include <string.h>

#include "cipher/internal.h"

dcmc_status dcmc_keystream_frame(const uint8_t prk[32], uint32_t frame, int standard_layer,
                                 uint32_t mask, uint32_t *k, uint32_t *d, size_t n)
{
    uint8_t key[32];
    dcmc_logistic g;
    dcmc_status st;

    if ((st = dcmc_subkey(prk, "diffusion", frame, key)) != DCMC_OK)
        goto out;
    dcmc_logistic_seed(&g, key);
    dcmc_logistic_fill(&g, d, n);

    if (standard_layer) {
        /* ChaCha20 bytes read as little-endian words (a plain copy on little-endian hosts). */
        if ((st = dcmc_subkey(prk, "chacha", frame, key)) != DCMC_OK)
            goto out;
        if ((st = dcmc_chacha20_stream(key, (uint8_t *)k, n * sizeof *k)) != DCMC_OK)
            goto out;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (size_t i = 0; i < n; i++)
            k[i] = dcmc_load32le((const uint8_t *)&k[i]);
#endif
    } else {
        memset(k, 0, n * sizeof *k);
    }
    if ((st = dcmc_subkey(prk, "chaos", frame, key)) != DCMC_OK)
        goto out;
    dcmc_logistic_seed(&g, key);
    /* Generate the chaos words in blocks and XOR them in, without a second frame-sized buffer. */
    uint32_t blk[256];
    for (size_t i = 0; i < n; i += 256) {
        size_t m = n - i < 256 ? n - i : 256;
        dcmc_logistic_fill(&g, blk, m);
        for (size_t j = 0; j < m; j++)
            k[i + j] = (k[i + j] ^ blk[j]) & mask;
    }
    for (size_t i = 0; i < n; i++)
        d[i] &= mask;
    dcmc_wipe(blk, sizeof blk);
out:
    dcmc_wipe(key, sizeof key);
    dcmc_wipe(&g, sizeof g);
    return st;
}
