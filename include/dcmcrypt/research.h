/*
 * research.h - evaluation baselines, never for patient data: the comparisons dcmcryptstat draws
 * (the bare logistic-chaos keystream XORed in, AES-256-CTR) and the chaos generator alone for
 * statistical test suites (dieharder). Not part of the product API and not installed: it lives in
 * the in-tree library dcmcrypt_research, which links the core statically because it shares the
 * core's internal key schedule and generator. May change in any release.
 *
 * It also runs the AT-ResNet-CM paper's own system as published (research/paper/README.md): a
 * trained float encoder E and decoder D around a double-precision logistic-map XOR. That system
 * is lossy, so it can never produce an object that claims to decrypt; floating point lives here
 * and never on the product's key path.
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

/* ---- the paper's trained networks (src/research/paper*.c) ---- */

/* Weight file format version this library reads (research/paper/README.md, "Weight file"). */
#define DCMC_PAPER_WEIGHTS_VERSION 1u

typedef struct dcmc_paper_model dcmc_paper_model;

/* Read a weight file (one encoder and one decoder) and check it before any weight is used: file
 * missing or unreadable DCMC_ERR_IO; shorter than its header or its N says DCMC_ERR_TRUNCATED;
 * wrong magic, longer than N says, bad flag or shapes, N not what the shapes imply, a value not
 * finite DCMC_ERR_FORMAT; another format version DCMC_ERR_UNSUPPORTED; SHA-256 mismatch (a
 * damaged file) DCMC_ERR_INTEGRITY. *out is NULL on any failure. */
DCMC_API dcmc_status dcmc_paper_model_load(const char *path, dcmc_paper_model **out);
DCMC_API void dcmc_paper_model_free(dcmc_paper_model *m);
/* What the file says: attention on (1) or off (0); the pixel depth it was trained for. */
DCMC_API int dcmc_paper_model_attention(const dcmc_paper_model *m);
DCMC_API unsigned dcmc_paper_model_bits(const dcmc_paper_model *m);

/* One network on one h x w image of values in [0, 1] (row-major), out: h x w values in (0, 1).
 * decoder 0: E, 1: D. threads 0: OpenMP's default. Float32 activations, sums of products in
 * float and of the global pooling in double: within 1e-4 of the float64 reference. */
DCMC_API dcmc_status dcmc_paper_forward(const dcmc_paper_model *m, int decoder, size_t h,
                                        size_t w, const float *in, float *out, int threads);

/* XOR the paper's keystream into n values of `bits` (1..16) bits: the logistic map
 * x <- r x (1 - x) in double precision, r in [3.99, 4) and x0 in (0, 1) from an HKDF subkey of
 * key and nonce ("paper-logistic"), 1000 steps discarded, then one value per pixel,
 * floor(x 2^bits) mod 2^bits. Its own inverse. */
DCMC_API dcmc_status dcmc_paper_xor(const dcmc_key *key, const uint8_t nonce[DCMC_NONCE_BYTES],
                                    unsigned bits, uint32_t *v, size_t n);

/* The published system on one frame in place (one sample, bits stored 1..16, any size):
 * encrypt x -> q = round(E(x / L) L) -> q XOR keystream, with L = 2^bits - 1 whatever depth the
 * model was trained for (an 8-bit model on a 16-bit image sees the same [0, 1] range, far from
 * its training data); decrypt c -> q = c XOR keystream -> round(D(q / L) L): lossy. Signed
 * images are shifted up by 2^(bits-1) before the networks, as in training, and back after. */
DCMC_API dcmc_status dcmc_paper_encrypt(const dcmc_paper_model *m, const dcmc_key *key,
                                        const uint8_t nonce[DCMC_NONCE_BYTES],
                                        const dcmc_layout *layout, uint8_t *frame, size_t bytes);
DCMC_API dcmc_status dcmc_paper_decrypt(const dcmc_paper_model *m, const dcmc_key *key,
                                        const uint8_t nonce[DCMC_NONCE_BYTES],
                                        const dcmc_layout *layout, uint8_t *frame, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
