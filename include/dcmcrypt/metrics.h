/*
 * dcmcrypt_metrics.h - the statistics image-cipher papers report (histogram, entropy, chi-square,
 * NPCR/UACI with the Wu-Noonan-Agaian critical values). Analysis code: floating point is fine
 * here and never feeds the cipher. Images are arrays of n unsigned values below 2^bits.
 */
#ifndef DCMCRYPT_METRICS_H
#define DCMCRYPT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "dcmcrypt/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Shannon entropy in bits of the 2^bits-bin histogram of v (bits <= 16). */
DCMC_API double dcmc_metric_entropy(const uint32_t *v, size_t n, unsigned bits);
/* Chi-square statistic of the 2^bits-bin histogram against the uniform distribution. */
DCMC_API double dcmc_metric_chi2(const uint32_t *v, size_t n, unsigned bits);
/* NPCR and UACI (fractions, not percent) of two images of n values below 2^bits. */
DCMC_API void dcmc_metric_npcr_uaci(const uint32_t *a, const uint32_t *b, size_t n, unsigned bits,
                                    double *npcr, double *uaci);

/* Pearson correlation of adjacent pixel pairs over all pairs of a w x h image, direction
 * 0 horizontal, 1 vertical, 2 diagonal (down-right), 3 anti-diagonal (down-left). */
DCMC_API double dcmc_metric_correlation(const uint32_t *v, size_t w, size_t h, int direction);

/* Correlation over `pairs` randomly chosen adjacent pairs (the literature's usual 3000 or
 * 10000), drawn with a deterministic generator from `seed`. */
DCMC_API double dcmc_metric_correlation_sampled(const uint32_t *v, size_t w, size_t h,
                                                int direction, size_t pairs, uint64_t seed);

/* The pixel indices of those pairs (first[i] and its neighbour second[i]), for scatter plots
 * of exactly the pairs the sampled correlation used. -1 on bad arguments. */
DCMC_API int dcmc_metric_pair_positions(size_t w, size_t h, int direction, size_t pairs,
                                        uint64_t seed, size_t *first, size_t *second);

/* Local Shannon entropy (Wu et al. 2013): mean entropy (2^bits bins, bits <= 16) of k
 * non-overlapping b x b blocks chosen at random from `seed`. NAN if the image holds fewer than k
 * such blocks. */
DCMC_API double dcmc_metric_local_entropy(const uint32_t *v, size_t w, size_t h, unsigned bits,
                                          size_t k, size_t b, uint64_t seed);
/* The acceptance interval of the local entropy for uniformly random images of that size, by
 * Monte Carlo over `trials` images: the alpha/2 and 1-alpha/2 quantiles, and the mean. */
DCMC_API int dcmc_metric_local_entropy_interval(size_t w, size_t h, unsigned bits, size_t k,
                                                size_t b, size_t trials, double alpha,
                                                uint64_t seed, double *lo, double *hi,
                                                double *mean);
/* Mean global entropy of uniformly random images of n values of `bits` bits (Monte Carlo). */
DCMC_API double dcmc_metric_entropy_expected(size_t n, unsigned bits, size_t trials, uint64_t seed);

/* PSNR in dB between two images (INFINITY when equal) and mean SSIM over 8x8 windows with
 * stride 4 (1 when equal); peak = 2^bits - 1. */
DCMC_API double dcmc_metric_psnr(const uint32_t *a, const uint32_t *b, size_t n, unsigned bits);
DCMC_API double dcmc_metric_ssim(const uint32_t *a, const uint32_t *b, size_t w, size_t h,
                                 unsigned bits);

/* Wu, Noonan & Agaian (2011) critical values for n pixels of `bits` bits at level alpha
 * (0.05, 0.01 or 0.001): NPCR must be >= *npcr_min, UACI inside [*uaci_lo, *uaci_hi]. */
DCMC_API int dcmc_metric_npcr_uaci_critical(size_t n, unsigned bits, double alpha, double *npcr_min,
                                            double *uaci_lo, double *uaci_hi);

#ifdef __cplusplus
}
#endif

#endif
