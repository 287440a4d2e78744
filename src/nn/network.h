/*
 * network.h - the keyed integer AT-ResNet (docs/format.md sections 5-7). Plan, then compute: a
 * plan fixes the shapes and allocates every buffer once; loading weights and running the networks
 * allocate nothing. Work is split between threads by output rows only, and every reduction is an
 * exact integer sum or max, so the thread count cannot change a result. Large frames run in
 * bands of rows, so that only the residual stream is held whole; the bits are the same.
 */
#ifndef DCMC_NN_NETWORK_H
#define DCMC_NN_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "core/team.h"
#include "dcmcrypt/dcmcrypt.h"

typedef struct dcmci_net_plan dcmci_net_plan;

/* A plan for networks of `preset` on `planes` input (and output) planes of h x w values of
 * `bits` bits, run on up to team->threads threads (>= 1), as many as the team says for each
 * region (core/team.h). The team is borrowed and must outlive the plan. */
dcmc_status dcmci_net_plan_new(dcmci_net_plan **out, const dcmc_preset *preset, unsigned planes,
                              size_t h, size_t w, unsigned bits, dcmci_team *team);
void dcmci_net_plan_free(dcmci_net_plan *p);

/* Bytes of weight stream all 2*rounds networks consume (section 6). */
size_t dcmci_net_weight_bytes(const dcmc_preset *preset, unsigned planes);
/* Load the weights of every network from that many bytes. */
void dcmci_net_load(dcmci_net_plan *p, const uint8_t *stream);

/* Where the network's planes lie: they come in pairs interleaved along a row, as the two
 * columns of a frame's 2x2 cells do (section 8), so the coupling runs on the frame's values in
 * place. Value (plane c, row y, column x) is base[(c / 2) * pair + y * row + 2 * x + c % 2]. */
typedef struct dcmci_net_io {
    uint32_t *base;
    size_t pair, row;
} dcmci_net_io;

/* target[c][y][x] += sign * N_index(in)[c][y][x]  (mod 2^bits) for every plane, row and column.
 * index = 2r for F_r, 2r+1 for G_r; sign is +1 (encrypt) or -1 (decrypt). in and target may lie
 * in one buffer but must not overlap. */
void dcmci_net_apply(dcmci_net_plan *p, unsigned index, const dcmci_net_io *in,
                     const dcmci_net_io *target, int sign);

/* The raw network output mod 2^bits on plane-major buffers (planes of h*w values), for tests
 * and known-answer vectors. */
void dcmci_net_eval(dcmci_net_plan *p, unsigned index, const uint32_t *in, uint32_t *out);

/* Test hook, not API: plans made from now on run in bands of this many rows (at least the
 * minimum the spatial attention needs); 0 returns to the automatic choice (whole frames up to
 * 2^21 cells). Any band height computes the same bits. */
void dcmci_net_band_force(size_t rows);

#endif
