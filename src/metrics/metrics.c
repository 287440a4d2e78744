/*
 * metrics.c - histogram statistics and differential-attack measures for the tests, the
 * benchmark and the evaluation suite. Floating point is allowed here: nothing flows back into
 * the cipher.
 */
#include "dcmcrypt/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The histogram of n values over 2^bits bins; NULL for no values, bad bits or no memory (the
 * statistics are then NaN). */
static size_t *histogram(const uint32_t *v, size_t n, unsigned bits)
{
    if (n == 0 || bits == 0 || bits > 16)
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
    if (h == NULL)
        return NAN;
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
    if (h == NULL)
        return NAN;
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

/* Pearson correlation from running sums (analysis code: double is plenty). */
typedef struct pearson {
    double sx, sy, sxx, syy, sxy, n;
} pearson;

static void pearson_add(pearson *p, double a, double b)
{
    p->sx += a;
    p->sy += b;
    p->sxx += a * a;
    p->syy += b * b;
    p->sxy += a * b;
    p->n += 1;
}

static double pearson_r(const pearson *p)
{
    const double n = p->n;
    double cov = p->sxy / n - (p->sx / n) * (p->sy / n);
    double va = p->sxx / n - (p->sx / n) * (p->sx / n), vb = p->syy / n - (p->sy / n) * (p->sy / n);
    return (va <= 0 || vb <= 0) ? 0.0 : cov / sqrt(va * vb);
}

/* Neighbour offsets of the four directions: horizontal, vertical, diagonal, anti-diagonal. */
static const int k_dx[4] = {1, 0, 1, -1}, k_dy[4] = {0, 1, 1, 1};

double dcmc_metric_correlation(const uint32_t *v, size_t w, size_t h, int direction)
{
    if (direction < 0 || direction > 3 || w < 2 || h < 2)
        return NAN;
    const int dx = k_dx[direction], dy = k_dy[direction];
    pearson p = {0};
    size_t x0 = dx < 0 ? 1 : 0, x1 = dx > 0 ? w - 1 : w;
    for (size_t y = 0; y + (size_t)dy < h; y++)
        for (size_t x = x0; x < x1; x++)
            pearson_add(&p, v[y * w + x], v[(y + (size_t)dy) * w + (size_t)((long)x + dx)]);
    return pearson_r(&p);
}

/* xorshift64* for sampling positions: analysis only, never keys. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

int dcmc_metric_pair_positions(size_t w, size_t h, int direction, size_t pairs, uint64_t seed,
                               size_t *first, size_t *second)
{
    if (direction < 0 || direction > 3 || w < 2 || h < 2)
        return -1;
    const int dx = k_dx[direction], dy = k_dy[direction];
    /* Every pixel whose neighbour in that direction exists is equally likely. */
    const size_t x0 = dx < 0 ? 1 : 0, xn = dx == 0 ? w : w - 1, yn = h - (size_t)dy;
    uint64_t s = seed | 1;
    for (size_t i = 0; i < pairs; i++) {
        size_t x = x0 + (size_t)(rng_next(&s) % xn), y = (size_t)(rng_next(&s) % yn);
        first[i] = y * w + x;
        second[i] = (y + (size_t)dy) * w + (size_t)((long)x + dx);
    }
    return 0;
}

double dcmc_metric_correlation_sampled(const uint32_t *v, size_t w, size_t h, int direction,
                                       size_t pairs, uint64_t seed)
{
    if (pairs < 2)
        return NAN;
    size_t *p1 = malloc(pairs * sizeof *p1), *p2 = malloc(pairs * sizeof *p2);
    double r = NAN;
    if (p1 && p2 && dcmc_metric_pair_positions(w, h, direction, pairs, seed, p1, p2) == 0) {
        pearson p = {0};
        for (size_t i = 0; i < pairs; i++)
            pearson_add(&p, v[p1[i]], v[p2[i]]);
        r = pearson_r(&p);
    }
    free(p1);
    free(p2);
    return r;
}

double dcmc_metric_local_entropy(const uint32_t *v, size_t w, size_t h, unsigned bits, size_t k,
                                 size_t b, uint64_t seed)
{
    if (b == 0 || k == 0 || bits == 0 || bits > 16)
        return NAN;
    const size_t bw = w / b, bh = h / b, nblocks = bw * bh;
    if (nblocks < k)
        return NAN;
    /* k distinct blocks of the grid: a partial Fisher-Yates shuffle of the block indices. */
    size_t *idx = malloc(nblocks * sizeof *idx);
    uint32_t *blk = malloc(b * b * sizeof *blk);
    if (!idx || !blk) {
        free(idx);
        free(blk);
        return NAN;
    }
    for (size_t i = 0; i < nblocks; i++)
        idx[i] = i;
    uint64_t s = seed | 1;
    double sum = 0;
    for (size_t i = 0; i < k; i++) {
        /* NOLINTNEXTLINE(clang-analyzer-core.DivideZero): i < k <= nblocks, the modulus is >= 1 */
        size_t j = i + (size_t)(rng_next(&s) % (nblocks - i));
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        size_t bx = idx[i] % bw, by = idx[i] / bw;
        for (size_t y = 0; y < b; y++)
            memcpy(blk + y * b, v + (by * b + y) * w + bx * b, b * sizeof *blk);
        sum += dcmc_metric_entropy(blk, b * b, bits);
    }
    free(idx);
    free(blk);
    return sum / (double)k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int dcmc_metric_local_entropy_interval(size_t w, size_t h, unsigned bits, size_t k, size_t b,
                                       size_t trials, double alpha, uint64_t seed, double *lo,
                                       double *hi, double *mean)
{
    if (trials < 10 || bits == 0 || bits > 16 || w * h == 0)
        return -1;
    uint32_t *img = malloc(w * h * sizeof *img);
    double *le = malloc(trials * sizeof *le);
    if (!img || !le) {
        free(img);
        free(le);
        return -1;
    }
    uint64_t s = seed | 1;
    const uint32_t mask = (uint32_t)((1u << bits) - 1);
    double sum = 0;
    for (size_t t = 0; t < trials; t++) {
        for (size_t i = 0; i < w * h; i++)
            img[i] = (uint32_t)(rng_next(&s) >> 32) & mask;
        le[t] = dcmc_metric_local_entropy(img, w, h, bits, k, b, rng_next(&s));
        sum += le[t];
    }
    qsort(le, trials, sizeof *le, cmp_double);
    size_t ilo = (size_t)floor(alpha / 2 * (double)(trials - 1));
    size_t ihi = (size_t)ceil((1 - alpha / 2) * (double)(trials - 1));
    *lo = le[ilo];
    *hi = le[ihi];
    *mean = sum / (double)trials;
    free(img);
    free(le);
    return isnan(*mean) ? -1 : 0;
}

double dcmc_metric_entropy_expected(size_t n, unsigned bits, size_t trials, uint64_t seed)
{
    if (n == 0 || bits == 0 || bits > 16 || trials == 0)
        return NAN;
    uint32_t *img = malloc(n * sizeof *img);
    if (!img)
        return NAN;
    uint64_t s = seed | 1;
    const uint32_t mask = (uint32_t)((1u << bits) - 1);
    double sum = 0;
    for (size_t t = 0; t < trials; t++) {
        for (size_t i = 0; i < n; i++)
            img[i] = (uint32_t)(rng_next(&s) >> 32) & mask;
        sum += dcmc_metric_entropy(img, n, bits);
    }
    free(img);
    return sum / (double)trials;
}

double dcmc_metric_psnr(const uint32_t *a, const uint32_t *b, size_t n, unsigned bits)
{
    if (n == 0 || bits == 0 || bits > 32)
        return NAN;
    double se = 0, peak = bits >= 32 ? 4294967295.0 : (double)(((uint64_t)1 << bits) - 1);
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        se += d * d;
    }
    if (se == 0)
        return INFINITY;
    return 10 * log10(peak * peak / (se / (double)n));
}

double dcmc_metric_ssim(const uint32_t *a, const uint32_t *b, size_t w, size_t h, unsigned bits)
{
    const size_t win = 8, step = 4;
    if (w < win || h < win || bits == 0 || bits > 32)
        return NAN;
    double L = bits >= 32 ? 4294967295.0 : (double)(((uint64_t)1 << bits) - 1);
    double c1 = (0.01 * L) * (0.01 * L), c2 = (0.03 * L) * (0.03 * L), sum = 0;
    size_t count = 0;
    for (size_t y = 0; y + win <= h; y += step) {
        for (size_t x = 0; x + win <= w; x += step) {
            double ma = 0, mb = 0, vaa = 0, vbb = 0, vab = 0, n = (double)(win * win);
            for (size_t j = 0; j < win; j++)
                for (size_t i = 0; i < win; i++) {
                    double p = a[(y + j) * w + x + i], q = b[(y + j) * w + x + i];
                    ma += p;
                    mb += q;
                }
            ma /= n;
            mb /= n;
            for (size_t j = 0; j < win; j++)
                for (size_t i = 0; i < win; i++) {
                    double p = a[(y + j) * w + x + i] - ma, q = b[(y + j) * w + x + i] - mb;
                    vaa += p * p;
                    vbb += q * q;
                    vab += p * q;
                }
            vaa /= n - 1;
            vbb /= n - 1;
            vab /= n - 1;
            sum += ((2 * ma * mb + c1) * (2 * vab + c2)) /
                   ((ma * ma + mb * mb + c1) * (vaa + vbb + c2));
            count++;
        }
    }
    return sum / (double)count;
}
