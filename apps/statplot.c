/*
 * statplot.c - cairo and pango under dcmcryptstat's figures: one drawing pass per output (PNG,
 * SVG), text through pango with fixed font options so both passes lay text out alike, round
 * tick values, and the SVG's text layer (statplot.h says why it exists).
 */
#define _POSIX_C_SOURCE 200809L
#include "statplot.h"

#include <math.h>
#include <cairo-svg.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcmcrypt/io.h"

struct plot {
    cairo_t *cr;
    PangoFontDescription *font;
    cairo_font_options_t *fopts;
    FILE *layer; /* the SVG pass: its text layer; NULL while drawing the PNG */
    char panel[32];
};

/* DejaVu Sans is what scripts/install-deps.sh installs (fonts-dejavu-core); fontconfig falls
 * back to any sans face elsewhere. */
static const char *const k_font = "DejaVu Sans";
static const double k_quarter_turn = 1.5707963267948966;

cairo_t *plot_cr(plot *p)
{
    return p->cr;
}

static void xml_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* The text layer's element for a text whose box is (l, t, w, h) and whose baseline starts at
 * (bx, by), turned by -90 degrees about that point when vertical. */
static void layer_text(plot *p, const char *role, double size, double l, double t, double w,
                       double h, double bx, double by, int vertical, const char *text)
{
    fprintf(p->layer, "<text class=\"%s\" data-panel=\"%s\" data-box=\"%.1f %.1f %.1f %.1f\" "
            "x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\"", role, p->panel, l, t, w, h, bx, by, size);
    if (vertical)
        fprintf(p->layer, " transform=\"rotate(-90 %.1f %.1f)\"", bx, by);
    fputc('>', p->layer);
    xml_escaped(p->layer, text);
    fputs("</text>\n", p->layer);
}

double plot_text(plot *p, const char *role, double size, double x, double y, double ax,
                 double ay, int vertical, const char *text)
{
    cairo_t *cr = p->cr;
    PangoLayout *l = pango_cairo_create_layout(cr);
    pango_font_description_set_absolute_size(p->font, size * PANGO_SCALE);
    pango_layout_set_font_description(l, p->font);
    pango_layout_set_text(l, text, -1);
    int tw, th;
    pango_layout_get_pixel_size(l, &tw, &th);
    const double bw = vertical ? th : tw, bh = vertical ? tw : th;
    const double left = x - ax * bw, top = y - ay * bh;
    const double base = (double)pango_layout_get_baseline(l) / PANGO_SCALE;
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (vertical) {
        cairo_translate(cr, left, top + bh);
        cairo_rotate(cr, -k_quarter_turn);
    } else {
        cairo_translate(cr, left, top);
    }
    cairo_move_to(cr, 0, 0);
    /* After the transform, and with the same options on both surfaces: the image surface would
     * otherwise hint glyph metrics and the PNG's text would be laid out wider than the SVG's. */
    pango_cairo_update_layout(cr, l);
    pango_cairo_context_set_font_options(pango_layout_get_context(l), p->fopts);
    pango_layout_context_changed(l);
    pango_cairo_show_layout(cr, l);
    cairo_restore(cr);
    if (p->layer)
        layer_text(p, role, size, left, top, bw, bh, vertical ? left + base : left,
                   vertical ? top + bh : top + base, vertical, text);
    g_object_unref(l);
    return bw;
}

void plot_panel(plot *p, const char *id, const char *label, plot_rect r)
{
    snprintf(p->panel, sizeof p->panel, "%s", id);
    if (p->layer)
        fprintf(p->layer,
                "<rect class=\"panel\" id=\"panel-%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%.1f\"/>\n", id, r.x, r.y, r.w, r.h);
    plot_text(p, "label", PLOT_FONT_LABEL, r.x + r.w / 2, r.y - PLOT_LABEL_ABOVE, 0.5, 1, 0, label);
}

double plot_x(plot_rect r, const plot_axis *a, double v)
{
    return r.x + (v - a->lo) / (a->hi - a->lo) * r.w;
}

double plot_y(plot_rect r, const plot_axis *a, double v)
{
    return r.y + r.h - (v - a->lo) / (a->hi - a->lo) * r.h;
}

/* A round step (1, 2 or 5 times a power of ten) giving about `want` ticks over span. */
static double tick_step(double span, double want)
{
    const double raw = span / (want < 2 ? 2 : want), mag = pow(10, floor(log10(raw)));
    const double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

enum { TICK_X, TICK_Y_LEFT, TICK_Y_RIGHT };

/* Ticks and their labels along one side of r; the widest label's width. */
static double ticks(plot *p, plot_rect r, const plot_axis *a, int side)
{
    cairo_t *cr = p->cr;
    const double len = side == TICK_X ? r.w : r.h;
    const double step = tick_step(a->hi - a->lo, len / (side == TICK_X ? 85 : 55));
    const int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    double widest = 0;
    const long long last = (long long)floor(a->hi / step + 1e-9);
    for (long long i = (long long)ceil(a->lo / step); i <= last; i++) {
        const double t = (double)i * step;
        char s[48];
        snprintf(s, sizeof s, "%.*f", decimals, t + 0.0); /* + 0.0: no "-0" */
        double w;
        if (side == TICK_X) {
            const double x = floor(plot_x(r, a, t)) + 0.5, y = r.y + r.h;
            cairo_move_to(cr, x, y);
            cairo_line_to(cr, x, y + 5);
            w = plot_text(p, "tick-x", PLOT_FONT_TEXT, x, y + 7, 0.5, 0, 0, s);
        } else {
            const double y = floor(plot_y(r, a, t)) + 0.5;
            const double x = side == TICK_Y_LEFT ? r.x : r.x + r.w, d = side == TICK_Y_LEFT ? -5 : 5;
            cairo_move_to(cr, x, y);
            cairo_line_to(cr, x + d, y);
            w = plot_text(p, "tick-y", PLOT_FONT_TEXT, x + 1.4 * d, y, side == TICK_Y_LEFT, 0.5,
                          0, s);
        }
        widest = w > widest ? w : widest;
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    return widest;
}

void plot_axes(plot *p, plot_rect r, const plot_axis *x, const plot_axis *y)
{
    cairo_t *cr = p->cr;
    /* 1-pixel lines on pixel centres just outside the plot area: crisp in the PNG. */
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    if (x) {
        cairo_move_to(cr, r.x - 1, r.y + r.h + 0.5);
        cairo_line_to(cr, r.x + r.w, r.y + r.h + 0.5);
    }
    if (y) {
        cairo_move_to(cr, r.x - 0.5, r.y);
        cairo_line_to(cr, r.x - 0.5, r.y + r.h + 1);
    }
    cairo_stroke(cr);
    if (x) {
        ticks(p, r, x, TICK_X);
        plot_text(p, "axis-x", PLOT_FONT_LABEL - 1, r.x + r.w / 2, r.y + r.h + 28, 0.5, 0, 0,
                  x->title);
    }
    if (y) {
        const double w = ticks(p, r, y, TICK_Y_LEFT);
        plot_text(p, "axis-y", PLOT_FONT_LABEL - 1, r.x - 14 - w, r.y + r.h / 2, 1, 0.5, 1,
                  y->title);
    }
}

void plot_frame(plot *p, plot_rect r, double gray)
{
    cairo_t *cr = p->cr;
    cairo_rectangle(cr, r.x - 0.5, r.y - 0.5, r.w + 1, r.h + 1);
    cairo_set_source_rgb(cr, gray, gray, gray);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
}

void plot_colorbar(plot *p, plot_rect r, const plot_axis *a)
{
    cairo_t *cr = p->cr;
    cairo_pattern_t *g = cairo_pattern_create_linear(0, r.y + r.h, 0, r.y);
    cairo_pattern_add_color_stop_rgb(g, 0, 0, 0, 0);
    cairo_pattern_add_color_stop_rgb(g, 1, 1, 1, 1);
    cairo_rectangle(cr, r.x, r.y, r.w, r.h);
    cairo_set_source(cr, g);
    cairo_fill(cr);
    cairo_pattern_destroy(g);
    plot_frame(p, r, 0);
    const double w = ticks(p, r, a, TICK_Y_RIGHT);
    plot_text(p, "axis-y", PLOT_FONT_TEXT, r.x + r.w + 12 + w, r.y + r.h / 2, 0, 0.5, 1, a->title);
}

/* Draw the figure on surface s; layer: the SVG pass's text layer. */
static dcmc_status draw_on(cairo_surface_t *s, FILE *layer, int w, const char *title,
                           plot_draw_fn *draw, const void *ctx)
{
    plot p = {cairo_create(s), pango_font_description_from_string(k_font),
              cairo_font_options_create(), layer, ""};
    cairo_font_options_set_hint_style(p.fopts, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(p.fopts, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_antialias(p.fopts, CAIRO_ANTIALIAS_GRAY);
    cairo_set_source_rgb(p.cr, 1, 1, 1);
    cairo_paint(p.cr);
    plot_text(&p, "title", PLOT_FONT_TITLE, w / 2.0, 10, 0.5, 0, 0, title);
    draw(&p, ctx);
    const dcmc_status st = cairo_status(p.cr) == CAIRO_STATUS_SUCCESS ? DCMC_OK : DCMC_ERR_NOMEM;
    cairo_font_options_destroy(p.fopts);
    pango_font_description_free(p.font);
    cairo_destroy(p.cr);
    return st;
}

static cairo_status_t to_stream(void *f, const unsigned char *data, unsigned int len)
{
    return fwrite(data, 1, len, f) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* cairo's SVG with the title after the <svg> tag and the layer before </svg>. */
static dcmc_status svg_save(const char *path, const char *svg, const char *title,
                            const char *layer)
{
    const char *open = strstr(svg, "<svg"), *close = NULL;
    const char *body = open ? strchr(open, '>') : NULL;
    for (const char *c = body; c && (c = strstr(c, "</svg>")) != NULL; c++)
        close = c;
    if (!body || !close)
        return DCMC_ERR_INTERNAL;
    FILE *f = fopen(path, "wb");
    if (!f)
        return DCMC_ERR_WRITE;
    fwrite(svg, 1, (size_t)(body + 1 - svg), f);
    fputs("\n<title>", f);
    xml_escaped(f, title);
    fputs("</title>\n", f);
    fwrite(body + 1, 1, (size_t)(close - body - 1), f);
    fprintf(f, "<g id=\"text-layer\" fill-opacity=\"0\" stroke=\"none\" font-family=\"%s\">\n%s"
            "</g>\n%s", k_font, layer, close);
    return ferror(f) | fclose(f) ? DCMC_ERR_WRITE : DCMC_OK;
}

static dcmc_status write_svg(const char *path, int w, int h, const char *title,
                             plot_draw_fn *draw, const void *ctx)
{
    char *svg = NULL, *layer = NULL;
    size_t svg_len = 0, layer_len = 0;
    FILE *fs = open_memstream(&svg, &svg_len), *fl = open_memstream(&layer, &layer_len);
    dcmc_status st = fs && fl ? DCMC_OK : DCMC_ERR_NOMEM;
    if (st == DCMC_OK) {
        cairo_surface_t *s = cairo_svg_surface_create_for_stream(to_stream, fs, w, h);
        cairo_svg_surface_restrict_to_version(s, CAIRO_SVG_VERSION_1_1);
        st = draw_on(s, fl, w, title, draw, ctx);
        cairo_surface_finish(s);
        if (st == DCMC_OK && cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
            st = DCMC_ERR_NOMEM;
        cairo_surface_destroy(s);
    }
    /* Closing a memory stream makes its buffer final (and NUL-terminated); both are closed. */
    const int bad_s = fs && fclose(fs) != 0;
    const int bad_l = fl && fclose(fl) != 0;
    if (bad_s || bad_l)
        st = DCMC_ERR_NOMEM;
    if (st == DCMC_OK)
        st = svg_save(path, svg, title, layer);
    free(svg);
    free(layer);
    return st;
}

/* The PNG of surface s: 8-bit gray through libpng when every pixel is gray (a triplet is: a
 * third of the bytes of cairo's RGB), else cairo's RGB. */
static dcmc_status png_save(cairo_surface_t *s, const char *path)
{
    cairo_surface_flush(s);
    const unsigned char *data = cairo_image_surface_get_data(s);
    const size_t w = (size_t)cairo_image_surface_get_width(s);
    const size_t h = (size_t)cairo_image_surface_get_height(s);
    const size_t stride = (size_t)cairo_image_surface_get_stride(s);
    dcmc_raster r;
    dcmc_status st = dcmc_raster_alloc(&r, (uint32_t)w, (uint32_t)h, 1, 8);
    int gray = st == DCMC_OK;
    for (size_t y = 0; gray && y < h; y++)
        for (size_t x = 0; gray && x < w; x++) {
            uint32_t px;
            memcpy(&px, data + y * stride + 4 * x, sizeof px);
            gray = (px & 0xff) == (px >> 8 & 0xff) && (px & 0xff) == (px >> 16 & 0xff);
            ((uint8_t *)r.data)[y * w + x] = (uint8_t)px;
        }
    if (gray)
        st = dcmc_png_write(path, &r);
    else /* also when the gray raster could not be had */
        st = cairo_surface_write_to_png(s, path) == CAIRO_STATUS_SUCCESS ? DCMC_OK : DCMC_ERR_WRITE;
    dcmc_raster_free(&r);
    return st;
}

dcmc_status plot_write(const char *base, int w, int h, const char *title, plot_draw_fn *draw,
                       const void *ctx)
{
    char path[4200];
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    dcmc_status st = cairo_surface_status(s) == CAIRO_STATUS_SUCCESS ? DCMC_OK : DCMC_ERR_NOMEM;
    if (st == DCMC_OK)
        st = draw_on(s, NULL, w, title, draw, ctx);
    snprintf(path, sizeof path, "%s.png", base);
    if (st == DCMC_OK)
        st = png_save(s, path);
    cairo_surface_destroy(s);
    snprintf(path, sizeof path, "%s.svg", base);
    return st == DCMC_OK ? write_svg(path, w, h, title, draw, ctx) : st;
}
