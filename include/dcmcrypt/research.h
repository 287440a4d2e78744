/*
 * research.h - evaluation baselines, never for patient data: the comparisons dcmcryptstat draws
 * (the bare logistic-chaos keystream XORed in, AES-256-CTR) and the chaos generator alone for
 * statistical test suites (dieharder). Not part of the product API and not installed: it lives in
 * the in-tree library dcmcrypt_research, which links the core statically because it shares the
 * core's internal key schedule and generator. May change in any release.
 */
#ifndef DCMCRYPT_RESEARCH_H
#define DCMCRYPT_RESEARCH_H

#include "dcmcrypt/dcmcrypt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dcmc_baseline {
    DCMC_BASELINE_LOGISTIC_XOR = 1, /* the chaos keystream XORed in: no network, no diffusion */
    DCMC_BASELINE_AES256_CTR = 2,   /* AES-256-CTR keystream XORed into the values (OpenSSL) */
} dcmc_baseline;

/* Encrypt one frame in place with a baseline, keyed by key and nonce like the real cipher; XOR
 * baselines are their own inverse. */
DCMC_API DCMC_NONNULL(2, 3, 4) dcmc_status
    dcmc_baseline_encrypt(dcmc_baseline b, const dcmc_key *key,
                          const uint8_t nonce[DCMC_NONCE_BYTES], const dcmc_layout *layout,
                          uint8_t *frame, size_t bytes);
/* n bytes of the logistic-chaos keystream alone (32-bit words, little endian) of frame 0 for
 * key and nonce: the generator of docs/format.md section 9, for statistical test suites. */
DCMC_API dcmc_status dcmc_chaos_keystream(const dcmc_key *key,
                                          const uint8_t nonce[DCMC_NONCE_BYTES], uint8_t *out,
                                          size_t n);

#ifdef __cplusplus
}
#endif

#endif
