/*
 * statfig.h - the evaluation suite's figures in the style of the AT-ResNet-CM paper's Figures
 * 11-13, drawn with cairo and pango (statplot.h) into BASE.png and BASE.svg: a title with the
 * image and the scheme, labelled panels, axes with tick values in the image's stored values
 * (two's complement for signed images) and axis titles. Images are arrays of values below
 * 2^bits, as stateval.c extracts them.
 */
#ifndef DCMCRYPT_STATFIG_H
#define DCMCRYPT_STATFIG_H

#include <stddef.h>
#include <stdint.h>

#include "dcmcrypt/dcmcrypt.h"

typedef struct fig_info {
    const char *title; /* the figure's title: image name and scheme */
    unsigned bits;     /* bits stored, 1..32: values are below 2^bits */
    int is_signed;     /* values are two's complement: shown negative from 2^(bits-1) */
} fig_info;

/* Original | encrypted | decrypted, each with a gray scale bar ticked in stored values. The
 * original and the decryption share one linear window (the original's minimum to maximum); the
 * cipher image is shown over its own. Full resolution; images under 256 pixels on a side are
 * enlarged by a whole factor (nearest neighbour), images over 4096 shrunk to 4096. */
dcmc_status fig_triplet(const char *base, const fig_info *fi, size_t w, size_t h,
                        const uint32_t *plain, const uint32_t *cipher, const uint32_t *dec);

/* Gray histograms of the plain and the cipher image (n values each), at most 256 bins of a
 * whole number of levels: the plain panel over the original's min..max, the cipher panel over
 * the 2^bits levels. Both panels share one linear y axis: counts per bin when every bin is one
 * level wide, else counts per level (a bin's count over its width), so that the two stay
 * comparable. A dashed line marks what a uniform histogram would hold. When the original's
 * tallest bin (a background) is more than 1.5 times every other bar, the axis stops above the
 * others and that bar is cut, its value written over it. */
dcmc_status fig_histograms(const char *base, const fig_info *fi, size_t n, const uint32_t *plain,
                           const uint32_t *cipher);

/* Scatter plots of adjacent pairs (value at first[i] on x, at second[i], its right neighbour,
 * on y) for the plain and the cipher image (n values each); both axes of a panel span the range
 * of its histogram. */
dcmc_status fig_scatter(const char *base, const fig_info *fi, size_t n, const uint32_t *plain,
                        const uint32_t *cipher, const size_t *first, const size_t *second,
                        size_t pairs);

#endif
