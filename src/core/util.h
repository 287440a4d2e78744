/*
 * util.h - internal helpers shared by every module: overflow-checked size arithmetic, the one
 * definition of the fixed-point rounding and saturation rules, little-endian load/store.
 */
#ifndef DCMC_CORE_UTIL_H
#define DCMC_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <limits.h>

#include "dcmcrypt/dcmcrypt.h"

/* Arithmetic right shift of negative values is implementation-defined in C; every compiler we
 * build with shifts arithmetically, and the cipher depends on it, so make it a build error. */
/* cppcheck-suppress shiftNegativeLHS ; implementation-defined, not undefined: what we assert */
_Static_assert((-1 >> 1) == -1, "arithmetic right shift required");

/* a*b and a+b without overflow; return 0 on overflow. */
static inline int dcmci_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}
static inline int dcmci_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return 0;
    *out = a + b;
    return 1;
}

/* Round-half-up arithmetic shift: floor((v + 2^(s-1)) / 2^s); s = 0 leaves v. 32-bit arithmetic
 * (so loops over it vectorise): callers guarantee |v| < 2^30, which every network value meets
 * by a wide margin (docs/format.md section 7). */
static inline int32_t dcmci_rshift_round(int32_t v, unsigned s)
{
    return s == 0 ? v : (v + (int32_t)(1u << (s - 1))) >> s;
}
static inline int32_t dcmci_clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline uint32_t dcmci_load32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t dcmci_load64le(const uint8_t *p)
{
    return (uint64_t)dcmci_load32le(p) | (uint64_t)dcmci_load32le(p + 4) << 32;
}
static inline void dcmci_store32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void dcmci_store64le(uint8_t *p, uint64_t v)
{
    dcmci_store32le(p, (uint32_t)v);
    dcmci_store32le(p + 4, (uint32_t)(v >> 32));
}
static inline void dcmci_store32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Monotonic clock in nanoseconds (timing only, never in the cipher path). */
uint64_t dcmci_now_ns(void);
/* CPU time the calling thread has used, in nanoseconds (time it ran, not time it waited). */
uint64_t dcmci_thread_cpu_ns(void);

/* Threads to use for a request of n (0 = OpenMP default). */
int dcmci_threads_resolve(int n);

#endif
