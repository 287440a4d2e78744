/*
 * metrics.c - histogram statistics and differential-attack measures for the tests, the
 * benchmark and the evaluation suite. Floating point is allowed here: nothing flows back into
 * the cipher.
 */
#include "dcmcrypt_metrics.h"

#include <math.h>
#include <stdlib.h>

static size_t *histogram(const uint32_t *v, size_t n, unsigned bits)
{
    if (bits == 0 || bits > 16)
        return NULL;
    size_t bins = (size_t)1 << bits;
    size_t *h = calloc(bins, sizeof *h);
    if (h == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        h[v[i] & (bins - 1)]++;
    return h;
}

double dcmc_metric_entropy(const uint32_t *v, size_t n, unsigned bits)
{
    size_t *h = histogram(v, n, bits);
    if (h == NULL || n == 0) {
        free(h);
        return NAN;
    }
    double e = 0;
    for (size_t b = 0; b < ((size_t)1 << bits); b++) {
        if (h[b]) {
            double p = (double)h[b] / (double)n;
            e -= p * log2(p);
        }
    }
    free(h);
    return e;
}

double dcmc_metric_chi2(const uint32_t *v, size_t n, unsigned bits)
{
    size_t *h = histogram(v, n, bits);
    if (h == NULL || n == 0) {
        free(h);
        return NAN;
    }
    size_t bins = (size_t)1 << bits;
    double e = (double)n / (double)bins, chi = 0;
    for (size_t b = 0; b < bins; b++)
        chi += ((double)h[b] - e) * ((double)h[b] - e) / e;
    free(h);
    return chi;
}

void dcmc_metric_npcr_uaci(const uint32_t *a, const uint32_t *b, size_t n, unsigned bits,
                           double *npcr, double *uaci)
{
    size_t diff = 0;
    double sum = 0, top = bits >= 32 ? 4294967295.0 : (double)(((uint64_t)1 << bits) - 1);
    for (size_t i = 0; i < n; i++) {
        diff += a[i] != b[i];
        sum += a[i] > b[i] ? (double)(a[i] - b[i]) : (double)(b[i] - a[i]);
    }
    *npcr = n ? (double)diff / (double)n : NAN;
    *uaci = n ? sum / (top * (double)n) : NAN;
}

int dcmc_metric_npcr_uaci_critical(size_t n, unsigned bits, double alpha, double *npcr_min,
                                   double *uaci_lo, double *uaci_hi)
{
    /* Upper quantiles of the standard normal: one-sided for NPCR, two-sided for UACI. */
    double z1, z2;
    if (alpha == 0.05) {
        z1 = 1.6448536269514722;
        z2 = 1.959963984540054;
    } else if (alpha == 0.01) {
        z1 = 2.3263478740408408;
        z2 = 2.5758293035489004;
    } else if (alpha == 0.001) {
        z1 = 3.090232306167813;
        z2 = 3.2905267314919255;
    } else {
        return -1;
    }
    if (n == 0 || bits == 0 || bits > 32)
        return -1;
    double L = bits >= 32 ? 4294967295.0 : (double)(((uint64_t)1 << bits) - 1), N = (double)n;
    double mu_n = L / (L + 1), sd_n = sqrt(L / (N * (L + 1) * (L + 1)));
    double mu_u = (L + 2) / (3 * L + 3);
    double var_u = (L + 2) * (L * L + 2 * L + 3) / (18 * (L + 1) * (L + 1) * L * N);
    *npcr_min = mu_n - z1 * sd_n;
    *uaci_lo = mu_u - z2 * sqrt(var_u);
    *uaci_hi = mu_u + z2 * sqrt(var_u);
    return 0;
}

double dcmc_metric_correlation(const uint32_t *v, size_t w, size_t h, int direction)
{
    static const int dx[4] = {1, 0, 1, -1}, dy[4] = {0, 1, 1, 1};
    if (direction < 0 || direction > 3 || w < 2 || h < 2)
        return NAN;
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, n = 0;
    size_t x0 = dx[direction] < 0 ? 1 : 0, x1 = dx[direction] > 0 ? w - 1 : w;
    for (size_t y = 0; y + (size_t)dy[direction] < h; y++) {
        for (size_t x = x0; x < x1; x++) {
            double a = v[y * w + x];
            double b = v[(y + (size_t)dy[direction]) * w + (size_t)((long)x + dx[direction])];
            sx += a;
            sy += b;
            sxx += a * a;
            syy += b * b;
            sxy += a * b;
            n++;
        }
    }
    double cov = sxy / n - (sx / n) * (sy / n);
    double va = sxx / n - (sx / n) * (sx / n), vb = syy / n - (sy / n) * (sy / n);
    return (va <= 0 || vb <= 0) ? 0.0 : cov / sqrt(va * vb);
}
