/*
 * statfig.h - the evaluation suite's figures in the style of the AT-ResNet-CM paper's
 * Figures 11-13, as 8-bit grayscale PNGs (written with libpng through dcmcrypt_io.h).
 * Images are w x h arrays of values below 2^bits. No text is drawn: the report's captions
 * give the axes and scales.
 */
#ifndef DCMCRYPT_STATFIG_H
#define DCMCRYPT_STATFIG_H

#include <stddef.h>
#include <stdint.h>

#include "dcmcrypt/dcmcrypt.h"

/* Original | encrypted | decrypted, side by side at full resolution. The original and the
 * decryption share one linear window (the original's minimum to maximum); the cipher image is
 * shown over its own range. */
dcmc_status fig_triplet(const char *path, size_t w, size_t h, const uint32_t *plain,
                        const uint32_t *cipher, const uint32_t *dec);

/* Gray histograms of the plain and the cipher image (n values each) in 256 bins, each panel
 * scaled to its own highest bin; a dotted line marks the uniform count. The plain panel spans
 * the original's min..max, the cipher panel the 2^bits levels. */
dcmc_status fig_histograms(const char *path, size_t n, unsigned bits, const uint32_t *plain,
                           const uint32_t *cipher);

/* Scatter plots of adjacent pairs (value at first[i] on x, at second[i] on y) for the plain
 * and the cipher image, 512 x 512 points per panel, ranges as for the histograms. */
dcmc_status fig_scatter(const char *path, size_t n, unsigned bits, const uint32_t *plain,
                        const uint32_t *cipher, const size_t *first, const size_t *second,
                        size_t pairs);

#endif
