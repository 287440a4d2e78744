/*
 * coupling.c - additive (NICE/RevNet) coupling of docs/format.md section 8: the 2x2 cells of each
 * sample plane split into planes A and B, then B += F_r(A), A += G_r(B) mod M for every round.
 * Exact by construction whatever the networks compute; decryption subtracts in reverse order.
 */
#include <stdlib.h>
#include <string.h>

#include "cipher/internal.h"
#include "nn/network.h"

dcmc_status dcmci_coupling_init(dcmci_coupling *c, const dcmc_preset *pr, const dcmc_layout *l,
                               int threads)
{
    memset(c, 0, sizeof *c);
    c->rows = l->rows;
    c->cols = l->cols;
    c->cell_rows = l->rows / 2;
    c->cell_cols = l->cols / 2;
    c->samples = l->samples;
    c->rounds = pr->rounds;
    if (c->cell_rows == 0 || c->cell_cols == 0)
        return DCMC_OK;
    const unsigned planes = 2 * l->samples;
    dcmc_status st = dcmci_net_plan_new(&c->plan, pr, planes, c->cell_rows, c->cell_cols,
                                       l->bits_stored, threads);
    if (st != DCMC_OK)
        return st;
    size_t n = c->cell_rows * c->cell_cols * planes; /* < 2^32 * 2: no overflow on 64-bit */
    c->a = malloc(n * sizeof *c->a);
    c->b = malloc(n * sizeof *c->b);
    c->weight_bytes = dcmci_net_weight_bytes(pr, planes);
    c->weights = malloc(c->weight_bytes);
    if (c->a == NULL || c->b == NULL || c->weights == NULL) {
        dcmci_coupling_free(c);
        return DCMC_ERR_NOMEM;
    }
    return DCMC_OK;
}

void dcmci_coupling_free(dcmci_coupling *c)
{
    if (c == NULL)
        return;
    dcmci_net_plan_free(c->plan);
    size_t n = c->cell_rows * c->cell_cols * 2 * c->samples;
    if (c->a)
        dcmc_free(c->a, n * sizeof *c->a);
    if (c->b)
        dcmc_free(c->b, n * sizeof *c->b);
    if (c->weights)
        dcmc_free(c->weights, c->weight_bytes);
    memset(c, 0, sizeof *c);
}

/* Move values between the frame (plane-major) and the A/B cell planes. */
static void cells(dcmci_coupling *c, uint32_t *v, int gather)
{
    const size_t hw = c->cell_rows * c->cell_cols, n = c->rows * c->cols;
    for (size_t s = 0; s < c->samples; s++) {
        uint32_t *plane = v + s * n;
        uint32_t *a0 = c->a + (2 * s) * hw, *a1 = a0 + hw;
        uint32_t *b0 = c->b + (2 * s) * hw, *b1 = b0 + hw;
        for (size_t y = 0; y < c->cell_rows; y++) {
            uint32_t *r0 = plane + 2 * y * c->cols, *r1 = r0 + c->cols;
            for (size_t x = 0; x < c->cell_cols; x++) {
                size_t i = y * c->cell_cols + x;
                if (gather) {
                    a0[i] = r0[2 * x];
                    a1[i] = r0[2 * x + 1];
                    b0[i] = r1[2 * x];
                    b1[i] = r1[2 * x + 1];
                } else {
                    r0[2 * x] = a0[i];
                    r0[2 * x + 1] = a1[i];
                    r1[2 * x] = b0[i];
                    r1[2 * x + 1] = b1[i];
                }
            }
        }
    }
}

dcmc_status dcmci_coupling_run(dcmci_coupling *c, const uint8_t prk[32], uint32_t frame,
                              uint32_t *v, int decrypt)
{
    if (c->plan == NULL)
        return DCMC_OK;
    uint8_t key[32];
    dcmc_status st = dcmci_subkey(prk, "net", frame, key);
    if (st == DCMC_OK)
        st = dcmci_chacha20_stream(key, c->weights, c->weight_bytes);
    dcmc_wipe(key, sizeof key);
    if (st != DCMC_OK)
        return st;
    dcmci_net_load(c->plan, c->weights);
    cells(c, v, 1);
    if (!decrypt) {
        for (unsigned r = 0; r < c->rounds; r++) {
            dcmci_net_apply(c->plan, 2 * r, c->a, c->b, +1);
            dcmci_net_apply(c->plan, 2 * r + 1, c->b, c->a, +1);
        }
    } else {
        for (unsigned r = c->rounds; r-- > 0;) {
            dcmci_net_apply(c->plan, 2 * r + 1, c->b, c->a, -1);
            dcmci_net_apply(c->plan, 2 * r, c->a, c->b, -1);
        }
    }
    cells(c, v, 0);
    return DCMC_OK;
}
