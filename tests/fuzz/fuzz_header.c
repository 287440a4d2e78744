/*
 * fuzz_header.c - libFuzzer target for the 128-byte cipher header reader and the key parser,
 * the two parsers of untrusted bytes in the C library itself.
 */
#include <stdint.h>
#include <string.h>

#include "dcmcrypt/dcmcrypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcmc_header h;
    if (dcmc_header_read(data, size, &h) == DCMC_OK) {
        /* What the reader accepts must be valid and must serialise back to the same bytes. */
        uint8_t back[DCMC_HEADER_BYTES];
        if (dcmc_layout_check(&h.layout) != DCMC_OK || dcmc_preset_check(&h.preset) != DCMC_OK ||
            dcmc_header_write(&h, back) != DCMC_OK || memcmp(back, data, DCMC_HEADER_BYTES) != 0)
            __builtin_trap();
    }
    dcmc_key k;
    if (dcmc_key_parse(data, size, &k) == DCMC_OK)
        dcmc_wipe(&k, sizeof k);
    return 0;
}
