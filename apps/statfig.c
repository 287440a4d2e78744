/*
 * statfig.c - dcmcryptstat's three figures (statfig.h) as drawings over statplot.h: what each
 * panel holds, its ranges and scales. Sizes are fixed so that figures of one kind line up.
 */
#include "statfig.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "statplot.h"

/* Room around a plot area: tick labels and the y title left, title, label and note above. */
enum { ML = 96, MR = 30, MT = 104, MB = 60, PW = 512, HIST_H = 320, SCAT_H = 512 };
enum { HBINS = 256 };

/* A stored value as the image means it: two's complement for signed images. */
static double shown(const fig_info *fi, uint32_t v)
{
    if (fi->is_signed && (v >> (fi->bits - 1)) & 1)
        return (double)v - ldexp(1, (int)fi->bits);
    return v;
}

static void plain_range(const fig_info *fi, const uint32_t *v, size_t n, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        const double s = shown(fi, v[i]);
        *lo = s < *lo ? s : *lo;
        *hi = s > *hi ? s : *hi;
    }
}

/* Every level a cipher value can take. */
static void full_range(const fig_info *fi, double *lo, double *hi)
{
    const double m = ldexp(1, (int)fi->bits);
    *lo = fi->is_signed ? -m / 2 : 0;
    *hi = *lo + m - 1;
}

/* The panel's note line over its area. */
static void note(plot *p, plot_rect r, const char *text)
{
    plot_text(p, "note", PLOT_FONT_TEXT, r.x + r.w / 2, r.y - PLOT_NOTE_ABOVE, 0.5, 1, 0, text);
}

/* ---- triplet ------------------------------------------------------------------------------ */

typedef struct triplet {
    const fig_info *fi;
    size_t w, h;
    double scale, pw, ph; /* display scale; the image's size on the page */
    const uint32_t *v[3];
    double lo[3], hi[3];
} triplet;

enum { BAR_GAP = 12, BAR_W = 16, TRIPLET_PANEL_EXTRA = 150, TRIPLET_MB = 24 };

/* One panel's values as a gray image surface, lo black, hi white. */
static cairo_surface_t *gray_surface(const triplet *t, int k)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)t->w, (int)t->h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
        return s;
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    const size_t stride = (size_t)cairo_image_surface_get_stride(s);
    const double lo = t->lo[k], hi = t->hi[k], scale = hi > lo ? 255.0 / (hi - lo) : 0;
    for (size_t y = 0; y < t->h; y++)
        for (size_t x = 0; x < t->w; x++) {
            const double v = shown(t->fi, t->v[k][y * t->w + x]);
            const double g = v <= lo ? 0 : v >= hi ? 255 : (v - lo) * scale;
            uint32_t px = (uint32_t)(g + 0.5);
            px |= px << 8 | px << 16;
            memcpy(data + y * stride + 4 * x, &px, sizeof px);
        }
    cairo_surface_mark_dirty(s);
    return s;
}

static void draw_triplet(plot *p, const void *ctx)
{
    const triplet *t = ctx;
    static const char *const ids[3] = {"original", "encrypted", "decrypted"};
    cairo_t *cr = plot_cr(p);
    for (int k = 0; k < 3; k++) {
        const plot_rect r = {20 + k * (t->pw + TRIPLET_PANEL_EXTRA), MT, t->pw, t->ph};
        plot_panel(p, ids[k], ids[k], r);
        char s[128];
        snprintf(s, sizeof s, "window %.0f to %.0f", t->lo[k], t->hi[k]);
        note(p, r, s);
        cairo_surface_t *img = gray_surface(t, k);
        cairo_save(cr);
        cairo_rectangle(cr, r.x, r.y, r.w, r.h);
        cairo_clip(cr);
        cairo_translate(cr, r.x, r.y);
        cairo_scale(cr, t->scale, t->scale);
        cairo_set_source_surface(cr, img, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr),
                                 t->scale >= 1 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
        cairo_paint(cr);
        cairo_restore(cr);
        cairo_surface_destroy(img);
        /* A frame just outside the image: white pixels would otherwise merge with the page. */
        plot_frame(p, r, 0.6);
        const plot_axis bar = {t->lo[k], t->hi[k] > t->lo[k] ? t->hi[k] : t->lo[k] + 1,
                               "stored value"};
        plot_colorbar(p, (plot_rect){r.x + r.w + BAR_GAP, r.y, BAR_W, r.h}, &bar);
    }
}

/* Small images enlarged by a whole factor to 256 pixels on the short side (text needs the
 * room), huge ones shrunk to 4096 on the long side (cairo's surfaces stop at 32767). */
static double display_scale(size_t w, size_t h)
{
    const size_t small = w < h ? w : h, large = w > h ? w : h;
    if (large > 4096)
        return 4096.0 / (double)large;
    double s = small < 256 ? ceil(256.0 / (double)small) : 1;
    while (s > 1 && (double)large * s > 4096)
        s--;
    return s;
}

dcmc_status fig_triplet(const char *base, const fig_info *fi, size_t w, size_t h,
                        const uint32_t *plain, const uint32_t *cipher, const uint32_t *dec)
{
    if (w == 0 || h == 0 || fi->bits == 0 || fi->bits > 32)
        return DCMC_ERR_ARG;
    triplet t = {fi, w, h, display_scale(w, h), 0, 0, {plain, cipher, dec}, {0}, {0}};
    t.pw = ceil((double)w * t.scale);
    t.ph = ceil((double)h * t.scale);
    plain_range(fi, plain, w * h, &t.lo[0], &t.hi[0]);
    plain_range(fi, cipher, w * h, &t.lo[1], &t.hi[1]);
    t.lo[2] = t.lo[0];
    t.hi[2] = t.hi[0];
    char title[512];
    snprintf(title, sizeof title, "%s: original, encrypted, decrypted", fi->title);
    return plot_write(base, (int)(40 + 3 * t.pw + 3 * TRIPLET_PANEL_EXTRA - 20),
                      (int)(MT + t.ph + TRIPLET_MB), title, draw_triplet, &t);
}

/* ---- histograms --------------------------------------------------------------------------- */

typedef struct hist {
    double lo, levels, width; /* first level, levels spanned, levels per bin */
    size_t bins;
    double y[HBINS]; /* count per bin, or per level (hists.per_level) */
} hist;

typedef struct hists {
    const fig_info *fi;
    hist h[2]; /* plain, cipher */
    int per_level;
    double uniform, top; /* a uniform histogram's height; the y axis' end */
    size_t cut;          /* the plain bin cut at the top, or SIZE_MAX */
} hists;

static void hist_fill(hist *hs, const fig_info *fi, const uint32_t *v, size_t n, double lo,
                      double hi)
{
    memset(hs, 0, sizeof *hs);
    hs->lo = lo;
    hs->levels = hi - lo + 1;
    hs->width = ceil(hs->levels / HBINS);
    hs->bins = (size_t)ceil(hs->levels / hs->width);
    for (size_t i = 0; i < n; i++) {
        const size_t b = (size_t)((shown(fi, v[i]) - lo) / hs->width);
        hs->y[b < hs->bins ? b : hs->bins - 1]++;
    }
}

/* Counts per level: the last bin may hold fewer levels than the others. */
static void hist_per_level(hist *hs)
{
    for (size_t b = 0; b < hs->bins; b++) {
        const double left = hs->levels - (double)b * hs->width;
        hs->y[b] /= left < hs->width ? left : hs->width;
    }
}

/* The shared y axis' end and the plain bin to cut (hists.cut). */
static void hist_top(hists *hh)
{
    const hist *pl = &hh->h[0], *ci = &hh->h[1];
    double first = 0, second = hh->uniform;
    size_t at = 0;
    for (size_t b = 0; b < pl->bins; b++) {
        if (pl->y[b] > first) {
            second = first > second ? first : second;
            first = pl->y[b];
            at = b;
        } else {
            second = pl->y[b] > second ? pl->y[b] : second;
        }
    }
    for (size_t b = 0; b < ci->bins; b++)
        second = ci->y[b] > second ? ci->y[b] : second;
    hh->cut = first > 1.5 * second ? at : SIZE_MAX;
    hh->top = (hh->cut == SIZE_MAX ? fmax(first, second) : second) * 1.08;
}

static void fmt_count(char *s, size_t len, double y)
{
    snprintf(s, len, y >= 10 || y == floor(y) ? "%.0f" : "%.2f", y);
}

/* The dashed uniform line across the cipher panel and its legend in the upper right. */
static void uniform_line(plot *p, const hists *hh, plot_rect r, const plot_axis *ya)
{
    cairo_t *cr = plot_cr(p);
    const double dash[2] = {6, 4}, y = plot_y(r, ya, hh->uniform);
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0.84, 0.15, 0.16);
    cairo_set_line_width(cr, 1.5);
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, r.x, y);
    cairo_line_to(cr, r.x + r.w, y);
    cairo_move_to(cr, r.x + r.w - 200, r.y + 14);
    cairo_line_to(cr, r.x + r.w - 172, r.y + 14);
    cairo_stroke(cr);
    cairo_restore(cr);
    char s[96], c[32];
    fmt_count(c, sizeof c, hh->uniform);
    snprintf(s, sizeof s, "uniform: %s per %s", c, hh->per_level ? "level" : "bin");
    plot_text(p, "legend", PLOT_FONT_TEXT, r.x + r.w - 166, r.y + 14, 0, 0.5, 0, s);
}

static void hist_panel(plot *p, const hists *hh, int k, plot_rect r)
{
    const hist *hs = &hh->h[k];
    const plot_axis xa = {hs->lo, hs->lo + hs->levels, "pixel value"};
    const plot_axis ya = {0, hh->top, hh->per_level ? "count per level (bin count / bin width)"
                                                    : "count (pixels per bin)"};
    cairo_t *cr = plot_cr(p);
    plot_panel(p, k ? "cipher" : "plain", k ? "cipher" : "plain", r);
    char s[160];
    snprintf(s, sizeof s, "%zu bins of %.0f level%s, %.0f to %.0f", hs->bins, hs->width,
             hs->width > 1 ? "s" : "", hs->lo, hs->lo + hs->levels - 1);
    note(p, r, s);
    for (size_t b = 0; b < hs->bins; b++) {
        const double x0 = plot_x(r, &xa, hs->lo + (double)b * hs->width);
        const double x1 = plot_x(r, &xa, fmin(hs->lo + (double)(b + 1) * hs->width, xa.hi));
        const double y = plot_y(r, &ya, fmin(hs->y[b], hh->top));
        cairo_rectangle(cr, x0, y, x1 - x0, r.y + r.h - y);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_fill(cr);
    if (k == 0 && hh->cut != SIZE_MAX) {
        /* The cut bar: a white break near its top, its value above the area. */
        const double x0 = plot_x(r, &xa, hs->lo + (double)hh->cut * hs->width);
        const double x1 = plot_x(r, &xa, fmin(hs->lo + (double)(hh->cut + 1) * hs->width, xa.hi));
        const double x = (x0 + x1) / 2;
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_rectangle(cr, x0, r.y + 8, x1 - x0, 3);
        cairo_fill(cr);
        char c[32];
        fmt_count(c, sizeof c, hs->y[hh->cut]);
        snprintf(s, sizeof s, "%s (cut)", c);
        plot_text(p, "cut", PLOT_FONT_TEXT, x, r.y - 2, x < r.x + 40 ? 0 : 0.5, 1, 0, s);
    }
    plot_axes(p, r, &xa, &ya);
    if (k == 1)
        uniform_line(p, hh, r, &ya);
}

static void draw_hists(plot *p, const void *ctx)
{
    for (int k = 0; k < 2; k++)
        hist_panel(p, ctx, k, (plot_rect){ML + k * (ML + PW + MR), MT, PW, HIST_H});
}

dcmc_status fig_histograms(const char *base, const fig_info *fi, size_t n, const uint32_t *plain,
                           const uint32_t *cipher)
{
    if (n == 0 || fi->bits == 0 || fi->bits > 32)
        return DCMC_ERR_ARG;
    hists hh = {.fi = fi};
    double lo, hi;
    plain_range(fi, plain, n, &lo, &hi);
    hist_fill(&hh.h[0], fi, plain, n, lo, hi);
    full_range(fi, &lo, &hi);
    hist_fill(&hh.h[1], fi, cipher, n, lo, hi);
    hh.per_level = hh.h[0].width > 1 || hh.h[1].width > 1;
    if (hh.per_level) {
        hist_per_level(&hh.h[0]);
        hist_per_level(&hh.h[1]);
    }
    hh.uniform = (double)n / ldexp(1, (int)fi->bits); /* per level, = per bin of one level */
    hist_top(&hh);
    char title[512];
    snprintf(title, sizeof title, "%s: gray histograms", fi->title);
    return plot_write(base, 2 * (ML + PW + MR), MT + HIST_H + MB, title, draw_hists, &hh);
}

/* ---- scatter ------------------------------------------------------------------------------ */

typedef struct scatter {
    const fig_info *fi;
    const uint32_t *v[2];
    double lo[2], hi[2];
    const size_t *first, *second;
    size_t pairs;
} scatter;

static void scatter_panel(plot *p, const scatter *sc, int k, plot_rect r)
{
    const plot_axis xa = {sc->lo[k], sc->hi[k] + 1, "value at (x,y)"};
    const plot_axis ya = {sc->lo[k], sc->hi[k] + 1, "value at (x+1,y)"};
    cairo_t *cr = plot_cr(p);
    plot_panel(p, k ? "cipher" : "plain", k ? "cipher" : "plain", r);
    char s[96];
    snprintf(s, sizeof s, "%zu horizontal pairs, %.0f to %.0f", sc->pairs, sc->lo[k], sc->hi[k]);
    note(p, r, s);
    /* One square per pair at the centre of its levels, at least 2 pixels wide. */
    const double d = fmax(2, r.w / (xa.hi - xa.lo));
    for (size_t i = 0; i < sc->pairs; i++) {
        const double x = plot_x(r, &xa, shown(sc->fi, sc->v[k][sc->first[i]]) + 0.5);
        const double y = plot_y(r, &ya, shown(sc->fi, sc->v[k][sc->second[i]]) + 0.5);
        cairo_rectangle(cr, x - d / 2, y - d / 2, d, d);
    }
    cairo_set_source_rgb(cr, 0.12, 0.47, 0.71);
    cairo_fill(cr);
    plot_axes(p, r, &xa, &ya);
}

static void draw_scatter(plot *p, const void *ctx)
{
    for (int k = 0; k < 2; k++)
        scatter_panel(p, ctx, k, (plot_rect){ML + k * (ML + PW + MR), MT, PW, SCAT_H});
}

dcmc_status fig_scatter(const char *base, const fig_info *fi, size_t n, const uint32_t *plain,
                        const uint32_t *cipher, const size_t *first, const size_t *second,
                        size_t pairs)
{
    if (n == 0 || fi->bits == 0 || fi->bits > 32)
        return DCMC_ERR_ARG;
    scatter sc = {fi, {plain, cipher}, {0}, {0}, first, second, pairs};
    plain_range(fi, plain, n, &sc.lo[0], &sc.hi[0]);
    full_range(fi, &sc.lo[1], &sc.hi[1]);
    char title[512];
    snprintf(title, sizeof title, "%s: adjacent pixels, horizontal", fi->title);
    return plot_write(base, 2 * (ML + PW + MR), MT + SCAT_H + MB, title, draw_scatter, &sc);
}
