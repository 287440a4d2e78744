/*
 * internal.h - what the research baselines share: one subkey of the key schedule
 * (docs/format.md section 3) per baseline, derived as the cipher derives its own.
 */
#ifndef DCMC_RESEARCH_INTERNAL_H
#define DCMC_RESEARCH_INTERNAL_H

#include <stdint.h>

#include "dcmcrypt/dcmcrypt.h"

/* subkey(label, frame 0) of the PRK of key and nonce; the PRK is wiped, sub is the caller's to
 * wipe (also on failure). */
dcmc_status dcmci_research_subkey(const dcmc_key *key, const uint8_t nonce[DCMC_NONCE_BYTES],
                                  const char *label, uint8_t sub[32]);

#endif
