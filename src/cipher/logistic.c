/*
 * logistic.c - the logistic map x <- r x (1 - x) in Q0.64 fixed point with a 128-bit product,
 * so its orbit is the same on every machine (docs/format.md section 9). It is one of two
 * keystream layers, never the only protection of patient data by default.
 */
#include "cipher/internal.h"

typedef unsigned __int128 u128;

void dcmci_logistic_seed(dcmci_logistic *g, const uint8_t key[32])
{
    uint64_t x = dcmci_load64le(key);
    /* Start away from the edges, where the orbit needs many steps to leave 0 or 1. */
    if (x < ((uint64_t)1 << 56) || x > UINT64_MAX - ((uint64_t)1 << 56) + 1)
        x ^= (uint64_t)1 << 63;
    g->x = x;
    /* r in (3.99218, 4): the fully chaotic end of the parameter range. */
    g->delta = ((uint64_t)1 << 50) + (dcmci_load64le(key + 8) & (((uint64_t)1 << 57) - 1));
    g->n = 0;
    uint32_t sink[64];
    for (unsigned i = 0; i < DCMCI_LOGISTIC_TRANSIENT; i += 64)
        dcmci_logistic_fill(g, sink, 64);
}

/* One step of the map: x <- r x (1 - x), r = 4 - delta/2^64, then the step counter mixed in. */
static inline uint64_t step_of(uint64_t x, uint64_t delta, uint32_t step)
{
    /* 2^64 - x as a 128-bit value, so x = 0 gives p = 0 instead of overflowing. */
    uint64_t p = (uint64_t)(((u128)x * (((u128)1 << 64) - x)) >> 64);
    u128 y = ((u128)p << 2) - (((u128)delta * p) >> 64);
    return (uint64_t)y ^ (uint64_t)(step & 0xFFFFu);
}

void dcmci_logistic_fill(dcmci_logistic *g, uint32_t *out, size_t n)
{
    uint64_t x = g->x;
    uint32_t step = g->n;
    for (size_t i = 0; i < n; i++) {
        x = step_of(x, g->delta, ++step);
        out[i] = (uint32_t)(x >> 8);
    }
    g->x = x;
    g->n = step;
}

void dcmci_logistic_fill2(dcmci_logistic *a, uint32_t *oa, dcmci_logistic *b, uint32_t *ob,
                          size_t n)
{
    /* Each orbit is a chain of dependent 128-bit multiplies: two chains in one loop keep the
     * multiplier busy while the other waits (about twice the rate of one after the other). */
    uint64_t xa = a->x, xb = b->x;
    uint32_t sa = a->n, sb = b->n;
    for (size_t i = 0; i < n; i++) {
        xa = step_of(xa, a->delta, ++sa);
        xb = step_of(xb, b->delta, ++sb);
        oa[i] = (uint32_t)(xa >> 8);
        ob[i] = (uint32_t)(xb >> 8);
    }
    a->x = xa;
    a->n = sa;
    b->x = xb;
    b->n = sb;
}
