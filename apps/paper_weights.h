/*
 * paper_weights.h - where dcmcryptstat and dcmcrypt-demo find the paper's trained networks
 * (research/paper/weights/{at-resnet-cm,resnet-cm}.bin) and how they load them.
 */
#ifndef DCMC_APP_PAPER_WEIGHTS_H
#define DCMC_APP_PAPER_WEIGHTS_H

#include <stddef.h>

#include "dcmcrypt/research.h"

/* The paper's schemes: "paper-at-resnet-cm" -> "at-resnet-cm"; NULL for any other name. */
const char *app_paper_variant(const char *scheme);

/* Load the weights of variant ("at-resnet-cm" or "resnet-cm") from dir, or when dir is NULL from
 * the first place that has the file: the installed share directory beside the executable
 * (BIN/../share/dcmcrypt/paper), then the source tree the program was built from. On failure
 * *m is NULL and msg says which file and why. */
dcmc_status app_paper_load(const char *dir, const char *variant, dcmc_paper_model **m, char *msg,
                           size_t mlen);

#endif
