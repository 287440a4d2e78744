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
                               dcmci_team *team)
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
                                       l->bits_stored, team);
    if (st != DCMC_OK)
        return st;
    c->weight_bytes = dcmci_net_weight_bytes(pr, planes);
    c->weights = malloc(c->weight_bytes);
    if (c->weights == NULL) {
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
    if (c->weights)
        dcmc_free(c->weights, c->weight_bytes);
    memset(c, 0, sizeof *c);
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
    /* Planes A are the top rows of the cells, B the bottom rows: the network reads and writes
     * them where they lie in the frame (a last odd row or column is in no cell). */
    const size_t n = c->rows * c->cols;
    const dcmci_net_io a = {v, n, 2 * c->cols}, b = {v + c->cols, n, 2 * c->cols};
    if (!decrypt) {
        for (unsigned r = 0; r < c->rounds; r++) {
            dcmci_net_apply(c->plan, 2 * r, &a, &b, +1);
            dcmci_net_apply(c->plan, 2 * r + 1, &b, &a, +1);
        }
    } else {
        for (unsigned r = c->rounds; r-- > 0;) {
            dcmci_net_apply(c->plan, 2 * r + 1, &b, &a, -1);
            dcmci_net_apply(c->plan, 2 * r, &a, &b, -1);
        }
    }
    return DCMC_OK;
}
