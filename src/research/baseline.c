/*
 * baseline.c - the comparison schemes of the evaluation suite: the logistic keystream XORed into
 * the pixel values with nothing else (how XOR chaos ciphers of the literature work, and why they
 * fail NPCR/UACI), AES-256-CTR the same way, and the chaos keystream alone for dieharder.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cipher/internal.h"
#include "dcmcrypt/research.h"
#include "research/internal.h"

dcmc_status dcmci_research_subkey(const dcmc_key *key, const uint8_t nonce[DCMC_NONCE_BYTES],
                                  const char *label, uint8_t sub[32])
{
    uint8_t prk[32];
    dcmc_status st = dcmci_prk_derive(key, nonce, prk);
    if (st == DCMC_OK)
        st = dcmci_subkey(prk, label, 0, sub);
    dcmc_wipe(prk, sizeof prk);
    return st;
}

dcmc_status dcmc_chaos_keystream(const dcmc_key *key, const uint8_t nonce[DCMC_NONCE_BYTES],
                                 uint8_t *out, size_t n)
{
    if (key == NULL || nonce == NULL || (out == NULL && n))
        return DCMC_ERR_ARG;
    uint8_t sub[32];
    const dcmc_status st = dcmci_research_subkey(key, nonce, "chaos", sub);
    if (st == DCMC_OK) {
        dcmci_logistic g;
        dcmci_logistic_seed(&g, sub);
        uint32_t w[256];
        for (size_t off = 0; off < n; off += sizeof w) {
            size_t m = n - off < sizeof w ? n - off : sizeof w;
            dcmci_logistic_fill(&g, w, (m + 3) / 4);
            for (size_t i = 0; i < m; i++)
                out[off + i] = (uint8_t)(w[i / 4] >> (8 * (i % 4)));
        }
        dcmc_wipe(&g, sizeof g);
    }
    dcmc_wipe(sub, sizeof sub);
    return st;
}

/* The len keystream words of baseline b (little-endian words of its byte stream). */
static dcmc_status baseline_keystream(dcmc_baseline b, const dcmc_key *key,
                                      const uint8_t nonce[DCMC_NONCE_BYTES], uint32_t *k,
                                      size_t len)
{
    const size_t bytes = len * sizeof *k; /* the caller allocated it: no overflow */
    memset(k, 0, bytes);
    if (b == DCMC_BASELINE_LOGISTIC_XOR)
        return dcmc_chaos_keystream(key, nonce, (uint8_t *)k, bytes);
    if (b == DCMC_BASELINE_AES256_CTR)
        return dcmci_stream_xor(EVP_aes_256_ctr(), key->bytes, nonce, (uint8_t *)k, bytes);
    return DCMC_ERR_ARG;
}

dcmc_status dcmc_baseline_encrypt(dcmc_baseline b, const dcmc_key *key,
                                  const uint8_t nonce[DCMC_NONCE_BYTES], const dcmc_layout *layout,
                                  uint8_t *frame, size_t bytes)
{
    if (key == NULL || nonce == NULL || frame == NULL)
        return DCMC_ERR_ARG;
    size_t fb;
    dcmc_status st = dcmc_layout_frame_bytes(layout, &fb);
    if (st != DCMC_OK)
        return st;
    if (bytes != fb)
        return bytes < fb ? DCMC_ERR_TRUNCATED : DCMC_ERR_ARG;
    const size_t n = (size_t)layout->rows * layout->cols, len = n * layout->samples;
    const size_t words_bytes = len * sizeof(uint32_t); /* len < 2^32 (frame_bytes checked it) */
    const uint32_t mask = layout->bits_stored >= 32 ? 0xFFFFFFFFu
                                                    : ((uint32_t)1 << layout->bits_stored) - 1;
    uint32_t *v = malloc(words_bytes), *k = malloc(words_bytes);
    if (v == NULL || k == NULL) {
        free(v);
        free(k);
        return DCMC_ERR_NOMEM;
    }
    st = baseline_keystream(b, key, nonce, k, len);
    if (st == DCMC_OK) {
        dcmci_frame_values(layout, n, frame, v);
        for (size_t i = 0; i < len; i++)
            v[i] = (v[i] ^ k[i]) & mask; /* little-endian words on the hosts we support */
        dcmci_frame_words(layout, n, v, frame, fb);
    }
    dcmc_free(v, words_bytes);
    dcmc_free(k, words_bytes);
    return st;
}
