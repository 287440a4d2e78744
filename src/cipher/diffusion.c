/*
 * diffusion.c - chained diffusion (docs/format.md section 9): a forward and a backward pass of
 * keyed modular addition, each value chained to its two predecessors (one rotated), so that one
 * changed value changes every cipher value. Two predecessors rather than one: with one, the map
 * from c[i+1] to c[i] is injective and a difference, once there, could never vanish, which makes
 * differences distinguishable from random ones (NPCR above its ideal 1 - 2^-BS).
 *
 * The passes that consume their keystream front to back (encryption's forward pass, decryption's
 * undoing of the backward pass) work on pieces, so that keystream is never held whole.
 */
#include "cipher/internal.h"

static inline uint32_t rotl_bits(uint32_t v, unsigned rho, unsigned bits, uint32_t mask)
{
    return rho == 0 ? v : ((v << rho) | (v >> (bits - rho))) & mask;
}

static inline uint32_t mask_of(unsigned bits)
{
    return bits >= 32 ? 0xFFFFFFFFu : ((uint32_t)1 << bits) - 1;
}

void dcmci_diffuse_forward(uint32_t *v, const uint32_t *k, size_t m, unsigned bits, uint32_t c[2])
{
    const uint32_t mask = mask_of(bits);
    const unsigned rho = (bits + 1) / 3;
    uint32_t p1 = c[0], p2 = c[1]; /* u[i-1], u[i-2] */
    for (size_t i = 0; i < m; i++) {
        uint32_t u = ((v[i] + rotl_bits(p1, rho, bits, mask) + p2) & mask) ^ k[i];
        v[i] = u;
        p2 = p1;
        p1 = u;
    }
    c[0] = p1;
    c[1] = p2;
}

void dcmci_diffuse_backward(uint32_t *v, const uint32_t *d, size_t n, unsigned bits)
{
    const uint32_t mask = mask_of(bits);
    const unsigned rho = (bits + 1) / 3;
    uint32_t p1 = 0, p2 = 0; /* c[i+1], c[i+2] */
    for (size_t i = n; i-- > 0;) {
        uint32_t c = ((v[i] + rotl_bits(p1, rho, bits, mask) + p2) & mask) ^ d[i];
        v[i] = c;
        p2 = p1;
        p1 = c;
    }
}

void dcmci_undiffuse_backward(uint32_t *v, size_t n, size_t i0, size_t i1, const uint32_t *d,
                              unsigned bits)
{
    const uint32_t mask = mask_of(bits);
    const unsigned rho = (bits + 1) / 3;
    /* Front to back: u[i] needs c[i+1] and c[i+2], still in place. */
    for (size_t i = i0; i < i1; i++) {
        uint32_t c1 = i + 1 < n ? v[i + 1] : 0, c2 = i + 2 < n ? v[i + 2] : 0;
        v[i] = ((v[i] ^ d[i - i0]) - rotl_bits(c1, rho, bits, mask) - c2) & mask;
    }
}

void dcmci_undiffuse_forward(uint32_t *v, const uint32_t *k, size_t n, unsigned bits)
{
    const uint32_t mask = mask_of(bits);
    const unsigned rho = (bits + 1) / 3;
    /* Back to front: Y[i] needs u[i-1] and u[i-2]. */
    for (size_t i = n; i-- > 0;) {
        uint32_t u1 = i >= 1 ? v[i - 1] : 0, u2 = i >= 2 ? v[i - 2] : 0;
        v[i] = ((v[i] ^ k[i]) - rotl_bits(u1, rho, bits, mask) - u2) & mask;
    }
}
