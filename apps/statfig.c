/*
 * statfig.c - rasterised figures for dcmcryptstat: a gray canvas, a few drawing primitives,
 * and the three figure types. Plain C on purpose: a plotting library would be a dependency for
 * three kinds of picture.
 */
#include "statfig.h"

#include <stdlib.h>
#include <string.h>

#include "dcmcrypt/io.h"

enum { MARGIN = 16, GAP = 24, WHITE = 255, BLACK = 0, BAR = 70, GUIDE = 150 };

typedef struct canvas {
    dcmc_raster r;
    size_t w, h;
} canvas;

static dcmc_status canvas_new(canvas *c, size_t w, size_t h)
{
    memset(c, 0, sizeof *c);
    if (w > DCMC_RASTER_MAX_DIM || h > DCMC_RASTER_MAX_DIM)
        return DCMC_ERR_UNSUPPORTED;
    dcmc_status st = dcmc_raster_alloc(&c->r, (uint32_t)w, (uint32_t)h, 1, 8);
    if (st == DCMC_OK) {
        c->w = w;
        c->h = h;
        memset(c->r.data, WHITE, c->r.size);
    }
    return st;
}

static void put(canvas *c, size_t x, size_t y, uint8_t g)
{
    if (x < c->w && y < c->h)
        ((uint8_t *)c->r.data)[y * c->w + x] = g;
}

static void rect(canvas *c, size_t x, size_t y, size_t w, size_t h, uint8_t g)
{
    for (size_t j = 0; j < h; j++)
        for (size_t i = 0; i < w; i++)
            put(c, x + i, y + j, g);
}

/* Left and bottom axes of a plot whose inner area starts at (x, y). */
static void axes(canvas *c, size_t x, size_t y, size_t w, size_t h)
{
    rect(c, x - 2, y, 2, h + 2, BLACK);
    rect(c, x - 2, y + h, w + 2, 2, BLACK);
}

static dcmc_status canvas_save(canvas *c, const char *path)
{
    dcmc_status st = dcmc_png_write(path, &c->r);
    dcmc_raster_free(&c->r);
    return st;
}

static void range(const uint32_t *v, size_t n, uint32_t *lo, uint32_t *hi)
{
    *lo = UINT32_MAX;
    *hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < *lo)
            *lo = v[i];
        if (v[i] > *hi)
            *hi = v[i];
    }
}

static void panel_image(canvas *c, size_t x0, size_t w, size_t h, const uint32_t *v, uint32_t lo,
                        uint32_t hi)
{
    const double scale = hi > lo ? 255.0 / (double)(hi - lo) : 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            double g = v[y * w + x] <= lo ? 0 : v[y * w + x] >= hi ? 255 : (v[y * w + x] - lo) * scale;
            put(c, x0 + x, y, (uint8_t)(g + 0.5));
        }
}

dcmc_status fig_triplet(const char *path, size_t w, size_t h, const uint32_t *plain,
                        const uint32_t *cipher, const uint32_t *dec)
{
    canvas c;
    dcmc_status st = canvas_new(&c, 3 * w + 2 * (size_t)GAP, h);
    if (st != DCMC_OK)
        return st;
    uint32_t lo, hi, clo, chi;
    range(plain, w * h, &lo, &hi);
    range(cipher, w * h, &clo, &chi);
    panel_image(&c, 0, w, h, plain, lo, hi);
    panel_image(&c, w + GAP, w, h, cipher, clo, chi);
    panel_image(&c, 2 * (w + GAP), w, h, dec, lo, hi);
    return canvas_save(&c, path);
}

/* One of 256 bins of the range [lo, hi]. */
typedef struct axis {
    uint32_t lo;
    double scale;
} axis;

static axis axis_of(uint32_t lo, uint32_t hi)
{
    return (axis){lo, 256.0 / ((double)hi - (double)lo + 1)};
}

static size_t bin(uint32_t v, axis a)
{
    size_t b = v <= a.lo ? 0 : (size_t)((double)(v - a.lo) * a.scale);
    return b > 255 ? 255 : b;
}

/* Plain panels span the original's own range (a 12-bit CT in a 16-bit word would otherwise be a
 * sliver), cipher panels the full 2^bits levels. */
static void panel_axes(size_t n, unsigned bits, const uint32_t *plain, axis *ap, axis *ac)
{
    uint32_t lo, hi;
    range(plain, n, &lo, &hi);
    *ap = axis_of(lo, hi);
    *ac = axis_of(0, bits >= 32 ? UINT32_MAX : (uint32_t)(((uint64_t)1 << bits) - 1));
}

enum { HBINS = 256, BARW = 2, HPLOT = 256 };

static void panel_hist(canvas *c, size_t x0, size_t n, axis a, int uniform, const uint32_t *v)
{
    size_t count[HBINS] = {0}, top = 1;
    for (size_t i = 0; i < n; i++)
        count[bin(v[i], a)]++;
    for (size_t b = 0; b < HBINS; b++)
        top = count[b] > top ? count[b] : top;
    const size_t y0 = MARGIN;
    for (size_t b = 0; b < HBINS; b++) {
        size_t bh = (size_t)((double)count[b] * HPLOT / (double)top + 0.5);
        rect(c, x0 + b * BARW, y0 + HPLOT - bh, BARW, bh, BAR);
    }
    /* The count every bin would have if the values were uniform over the 2^bits levels (bins
     * below 8 bits collect 2^(8-bits) times fewer levels: only meaningful for bits >= 8). */
    if (uniform) {
        size_t u = (size_t)((double)n / HBINS * HPLOT / (double)top + 0.5);
        if (u <= HPLOT)
            for (size_t x = 0; x < (size_t)HBINS * BARW; x += 6)
                rect(c, x0 + x, y0 + HPLOT - u, 3, 1, GUIDE);
    }
    axes(c, x0, y0, (size_t)HBINS * BARW, HPLOT);
}

dcmc_status fig_histograms(const char *path, size_t n, unsigned bits, const uint32_t *plain,
                           const uint32_t *cipher)
{
    canvas c;
    const size_t pw = (size_t)HBINS * BARW;
    dcmc_status st = canvas_new(&c, 2 * (MARGIN + pw) + GAP + MARGIN, HPLOT + 2 * MARGIN + 2);
    if (st != DCMC_OK)
        return st;
    axis ap, ac;
    panel_axes(n, bits, plain, &ap, &ac);
    panel_hist(&c, MARGIN, n, ap, 0, plain);
    panel_hist(&c, 2 * (size_t)MARGIN + pw + GAP, n, ac, bits >= 8, cipher);
    return canvas_save(&c, path);
}

enum { SPLOT = 512, DOT = 2 };

static void panel_scatter(canvas *c, size_t x0, axis a, const uint32_t *v,
                          const size_t *first, const size_t *second, size_t pairs)
{
    const size_t y0 = MARGIN;
    for (size_t i = 0; i < pairs; i++) {
        size_t x = bin(v[first[i]], a) * DOT, y = bin(v[second[i]], a) * DOT;
        rect(c, x0 + x, y0 + SPLOT - DOT - y, DOT, DOT, BLACK);
    }
    axes(c, x0, y0, SPLOT, SPLOT);
}

dcmc_status fig_scatter(const char *path, size_t n, unsigned bits, const uint32_t *plain,
                        const uint32_t *cipher, const size_t *first, const size_t *second,
                        size_t pairs)
{
    canvas c;
    dcmc_status st = canvas_new(&c, 2 * (MARGIN + SPLOT) + GAP + MARGIN, SPLOT + 2 * MARGIN + 2);
    if (st != DCMC_OK)
        return st;
    axis ap, ac;
    panel_axes(n, bits, plain, &ap, &ac);
    panel_scatter(&c, MARGIN, ap, plain, first, second, pairs);
    panel_scatter(&c, 2 * MARGIN + SPLOT + GAP, ac, cipher, first, second, pairs);
    return canvas_save(&c, path);
}
