/*
 * network.h - the keyed integer AT-ResNet (docs/format.md sections 5-7). Plan, then compute: a
 * plan fixes the shapes and allocates every buffer once; loading weights and running the networks
 * allocate nothing. Work is split between threads by output rows only, and every reduction is an
 * exact integer sum or max, so the thread count cannot change a result.
 */
#ifndef DCMC_NN_NETWORK_H
#define DCMC_NN_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "dcmcrypt/dcmcrypt.h"

typedef struct dcmci_net_plan dcmci_net_plan;

/* A plan for networks of `preset` on `planes` input (and output) planes of h x w values of
 * `bits` bits, run on `threads` threads (>= 1). */
dcmc_status dcmci_net_plan_new(dcmci_net_plan **out, const dcmc_preset *preset, unsigned planes,
                              size_t h, size_t w, unsigned bits, int threads);
void dcmci_net_plan_free(dcmci_net_plan *p);

/* Bytes of weight stream all 2*rounds networks consume (section 6). */
size_t dcmci_net_weight_bytes(const dcmc_preset *preset, unsigned planes);
/* Load the weights of every network from that many bytes. */
void dcmci_net_load(dcmci_net_plan *p, const uint8_t *stream);

/* target[c][i] = target[c][i] + sign * N_index(in)[c][i]  (mod 2^bits), planes of h*w values.
 * index = 2r for F_r, 2r+1 for G_r; sign is +1 (encrypt) or -1 (decrypt). */
void dcmci_net_apply(dcmci_net_plan *p, unsigned index, const uint32_t *in, uint32_t *target,
                    int sign);

/* The raw network output mod 2^bits, for tests and known-answer vectors. */
void dcmci_net_eval(dcmci_net_plan *p, unsigned index, const uint32_t *in, uint32_t *out);

#endif
