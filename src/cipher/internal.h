/*
 * internal.h - what the cipher modules share: the key schedule and standard primitives (keys.c),
 * the logistic generator (logistic.c), keystream and diffusion (keystream.c, diffusion.c) and the
 * coupling (coupling.c). Not installed; the public API is include/dcmcrypt.h.
 */
#ifndef DCMC_CIPHER_INTERNAL_H
#define DCMC_CIPHER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/team.h"
#include "core/util.h"
#include "dcmcrypt/dcmcrypt.h"

/* ---- keys.c ---- */
dcmc_status dcmci_prk_derive(const dcmc_key *key, const uint8_t nonce[DCMC_NONCE_BYTES],
                            uint8_t prk[32]);
/* subkey(label, frame) of docs/format.md section 3. */
dcmc_status dcmci_subkey(const uint8_t prk[32], const char *label, uint32_t frame, uint8_t out[32]);
/* XOR n bytes of the keystream of an OpenSSL stream cipher or mode (an EVP_CIPHER: ChaCha20,
 * AES-CTR) into buf, any n (OpenSSL's int lengths are fed in chunks). */
struct evp_cipher_st; /* OpenSSL's EVP_CIPHER */
dcmc_status dcmci_stream_xor(const struct evp_cipher_st *cipher, const uint8_t *key,
                             const uint8_t *iv, uint8_t *buf, size_t n);
/* XOR n bytes of the ChaCha20 keystream (zero IV) into buf; _stream writes the keystream itself. */
dcmc_status dcmci_chacha20_xor(const uint8_t key[32], uint8_t *buf, size_t n);
dcmc_status dcmci_chacha20_stream(const uint8_t key[32], uint8_t *buf, size_t n);
/* The same keystream (zero IV) in consecutive pieces of any length. */
typedef struct dcmci_chacha20 {
    void *ctx; /* EVP_CIPHER_CTX */
} dcmci_chacha20;
dcmc_status dcmci_chacha20_open(dcmci_chacha20 *g, const uint8_t key[32]);
dcmc_status dcmci_chacha20_next(dcmci_chacha20 *g, uint8_t *buf, size_t n);
void dcmci_chacha20_close(dcmci_chacha20 *g);

typedef struct dcmci_mac {
    void *ctx; /* EVP_MAC_CTX */
} dcmci_mac;
dcmc_status dcmci_mac_init(dcmci_mac *m, const uint8_t key[32]);
dcmc_status dcmci_mac_update(dcmci_mac *m, const uint8_t *data, size_t n);
dcmc_status dcmci_mac_final(dcmci_mac *m, uint8_t out[DCMC_MAC_BYTES]); /* also releases */
void dcmci_mac_abort(dcmci_mac *m);
int dcmci_ct_equal(const void *a, const void *b, size_t n);
dcmc_status dcmci_random(uint8_t *buf, size_t n);

/* ---- logistic.c: the fixed-point logistic map of section 9 ---- */
typedef struct dcmci_logistic {
    uint64_t x;     /* state, the real x/2^64 */
    uint64_t delta; /* r = 4 - delta/2^64 */
    uint32_t n;     /* step counter (only its low 16 bits are used) */
} dcmci_logistic;

#define DCMCI_LOGISTIC_TRANSIENT 1024u

/* Seed from a 32-byte subkey and discard the transient. */
void dcmci_logistic_seed(dcmci_logistic *g, const uint8_t key[32]);
/* n outputs o (bits 8..39 of the state). */
void dcmci_logistic_fill(dcmci_logistic *g, uint32_t *out, size_t n);
/* n outputs of each of two generators, the same as two fills one after the other. */
void dcmci_logistic_fill2(dcmci_logistic *a, uint32_t *oa, dcmci_logistic *b, uint32_t *ob,
                          size_t n);

/* ---- keystream.c / diffusion.c ---- */
/* Section 9 for one frame of n values: the keystream k (chaos XOR ChaCha20, or chaos alone
 * without the standard layer) and the diffusion keystream d, masked to `mask` (= M - 1), and the
 * two chained diffusion passes. Only one of the two streams is held whole (n words in `whole`);
 * the other is generated DCMCI_KS_CHUNK values at a time (in `chunk`) as its pass consumes it,
 * beside the first on a second thread when the team has two. */
#define DCMCI_KS_CHUNK 16384u
typedef struct dcmci_ks_frame {
    const uint8_t *prk;
    uint32_t frame, mask;
    unsigned bits;
    int standard_layer;
    dcmci_team *team; /* two threads while the team has them (core/team.h), else one */
} dcmci_ks_frame;
/* Encrypting, v <- diffusion of v: the forward pass keyed by k, then the backward pass keyed by
 * d; decrypting, the inverse. Sets *ks_ns to the time of both keystreams and the pass fed piece
 * by piece. */
dcmc_status dcmci_diffuse_frame(const dcmci_ks_frame *f, uint32_t *v, size_t n, uint32_t *whole,
                                uint32_t *chunk, int decrypt, uint64_t *ks_ns);

/* diffusion.c: the passes, on pieces. c[2] carries the chain (the two previous outputs) from
 * one piece to the next; it starts {0, 0}. */
void dcmci_diffuse_forward(uint32_t *v, const uint32_t *k, size_t m, unsigned bits, uint32_t c[2]);
void dcmci_diffuse_backward(uint32_t *v, const uint32_t *d, size_t n, unsigned bits);
/* Undo the backward pass for values [i0, i1) of n (d holds d[i0..i1)), front to back. */
void dcmci_undiffuse_backward(uint32_t *v, size_t n, size_t i0, size_t i1, const uint32_t *d,
                              unsigned bits);
void dcmci_undiffuse_forward(uint32_t *v, const uint32_t *k, size_t n, unsigned bits);

/* ---- coupling.c: additive coupling over 2x2 cells (section 8) ---- */
typedef struct dcmci_net_plan dcmci_net_plan;
typedef struct dcmci_coupling {
    dcmci_net_plan *plan;  /* NULL when the frame has no full 2x2 cell */
    size_t cell_rows, cell_cols, rows, cols;
    unsigned samples, rounds;
    uint8_t *weights;     /* the weight stream of one frame */
    size_t weight_bytes;
} dcmci_coupling;

dcmc_status dcmci_coupling_init(dcmci_coupling *c, const dcmc_preset *pr, const dcmc_layout *l,
                               dcmci_team *team);
void dcmci_coupling_free(dcmci_coupling *c);
/* Derive the frame's network weights, then run the rounds on the plane-major values v. */
dcmc_status dcmci_coupling_run(dcmci_coupling *c, const uint8_t prk[32], uint32_t frame,
                              uint32_t *v, int decrypt);

/* ---- frame.c: words <-> values ---- */
/* The plane-major values of a frame of n = rows*cols pixels, and back to canonical words. */
void dcmci_frame_values(const dcmc_layout *l, size_t n, const uint8_t *in, uint32_t *v);
void dcmci_frame_words(const dcmc_layout *l, size_t n, const uint32_t *v, uint8_t *out,
                      size_t frame_bytes);
/* Bits outside the stored field that are not canonical, XORed out: residue word of each word.
 * Returns 1 if any residue word is non-zero. res may be NULL to only test. */
int dcmci_frame_residue(const dcmc_layout *l, const uint8_t *frame, uint8_t *res);
/* XOR a residue back into a frame of canonical words. */
void dcmci_frame_residue_apply(const dcmc_layout *l, uint8_t *frame, const uint8_t *res);

#endif
