/*
 * statplot.h - the plotting layer under dcmcryptstat's figures, over cairo and pango. One drawing
 * function draws a figure twice, into BASE.png and BASE.svg. Pango writes SVG glyphs as paths,
 * so the SVG also gets a <title> and an invisible text layer holding every label drawn (with the
 * panel it belongs to and its box in figure pixels) and each panel's plot area: readers can
 * search and select the text, and tests can find it.
 */
#ifndef DCMCRYPT_STATPLOT_H
#define DCMCRYPT_STATPLOT_H

#include <cairo.h>

#include "dcmcrypt/dcmcrypt.h"

typedef struct plot plot;
typedef void plot_draw_fn(plot *p, const void *ctx);

typedef struct plot_rect {
    double x, y, w, h; /* figure pixels, y down */
} plot_rect;

/* One axis of a panel: data values lo..hi across the plot area; title under (x) or beside (y). */
typedef struct plot_axis {
    double lo, hi;
    const char *title;
} plot_axis;

/* Font sizes in pixels. */
#define PLOT_FONT_TITLE 17.0
#define PLOT_FONT_LABEL 15.0
#define PLOT_FONT_TEXT 12.0
/* Above a panel's area: the label's bottom this many pixels up, then room for a note line
 * (PLOT_NOTE_ABOVE) and for values written just over the area. */
#define PLOT_LABEL_ABOVE 40.0
#define PLOT_NOTE_ABOVE 21.0

/* Draw BASE.png and BASE.svg, w x h pixels (SVG user units) on white, title centred at the top,
 * the rest by draw(p, ctx). DCMC_ERR_WRITE if a file could not be written, DCMC_ERR_NOMEM. */
dcmc_status plot_write(const char *base, int w, int h, const char *title, plot_draw_fn *draw,
                       const void *ctx);

/* The cairo context of the surface being drawn (only inside draw). */
cairo_t *plot_cr(plot *p);

/* Text with its anchor at (x, y): ax, ay 0 = left/top, 0.5 = centre, 1 = right/bottom of the
 * text's box; vertical: turned a quarter counter-clockwise (y-axis titles). role: its class in
 * the SVG text layer (title, label, note, tick-x, tick-y, axis-x, axis-y, legend...). The width
 * of the box on the page. */
double plot_text(plot *p, const char *role, double size, double x, double y, double ax,
                 double ay, int vertical, const char *text);

/* A panel of the figure: from here on texts belong to it (id), its area r goes to the SVG's
 * panel layer, and its label is written above it, centred. */
void plot_panel(plot *p, const char *id, const char *label, plot_rect r);

/* Left and bottom axes of the panel's area r with ticks at round values, tick labels and the
 * axes' titles (x and y may be NULL: that axis is not drawn). */
void plot_axes(plot *p, plot_rect r, const plot_axis *x, const plot_axis *y);

/* A 1-pixel frame just outside r, of the gray level gray (0 black .. 1 white). */
void plot_frame(plot *p, plot_rect r, double gray);

/* A vertical scale bar at r: black at the bottom (value lo) to white (hi), ticked on its right,
 * title beside the ticks. */
void plot_colorbar(plot *p, plot_rect r, const plot_axis *a);

/* Data value v on an axis drawn across [from, from + len]; y axes grow upwards: plot_y. */
double plot_x(plot_rect r, const plot_axis *a, double v);
double plot_y(plot_rect r, const plot_axis *a, double v);

#endif
