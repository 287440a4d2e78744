/*
 * tiff.c - TIFF rasters through libtiff: 8/16-bit unsigned integer samples, 1..4 per pixel,
 * contiguous or separate planes, strips or tiles, any compression libtiff decodes. Writing uses
 * Deflate (lossless). libtiff's message handlers are silenced: errors become statuses.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include <tiffio.h>

#include "core/util.h"
#include "dcmcrypt/io.h"
#include "io/raster.h"

static void tiff_quiet(const char *module, const char *fmt, va_list ap)
{
    (void)module;
    (void)fmt;
    (void)ap;
}

static void tiff_silence(void)
{
    TIFFSetErrorHandler(tiff_quiet);
    TIFFSetWarningHandler(tiff_quiet);
}

/* Copy one decoded block (a strip row or a tile) of plane `s` into the interleaved raster. */
static void place(uint8_t *dst, const uint8_t *src, uint32_t x0, uint32_t y0, uint32_t bw,
                  uint32_t bh, uint32_t w, uint32_t h, unsigned ch, unsigned bps, int separate,
                  unsigned s)
{
    const unsigned src_ch = separate ? 1 : ch;
    for (uint32_t y = 0; y < bh && y0 + y < h; y++) {
        for (uint32_t x = 0; x < bw && x0 + x < w; x++) {
            const uint8_t *sp = src + ((size_t)y * bw + x) * src_ch * bps;
            uint8_t *dp = dst + (((size_t)(y0 + y) * w) + x0 + x) * ch * bps;
            if (separate)
                memcpy(dp + (size_t)s * bps, sp, bps);
            else
                memcpy(dp, sp, (size_t)ch * bps);
        }
    }
}

/* The shape of the image being read: w x h pixels of ch samples of B bytes, in `planes` planes
 * (ch when the samples are stored plane by plane, else 1). */
typedef struct tiff_shape {
    uint32_t w, h;
    unsigned ch, B, planes;
    int separate;
} tiff_shape;

/* Decode the image block by block into the raster: tiles, or scanlines as blocks of w x 1. A
 * tile that will not decode is malformed; a scanline that will not, the file cut short. */
static dcmc_status read_blocks(TIFF *t, const tiff_shape *g, uint8_t *data)
{
    const int tiled = TIFFIsTiled(t);
    uint32_t bw = g->w, bh = 1;
    tmsize_t bs;
    if (tiled) {
        bw = bh = 0;
        TIFFGetField(t, TIFFTAG_TILEWIDTH, &bw);
        TIFFGetField(t, TIFFTAG_TILELENGTH, &bh);
        bs = TIFFTileSize(t);
    } else {
        bs = TIFFScanlineSize(t);
    }
    size_t need;
    if (bw == 0 || bh == 0 || bs <= 0 ||
        !dcmci_mul_size((size_t)bw * bh, (size_t)(g->separate ? 1 : g->ch) * g->B, &need) ||
        need > (size_t)bs)
        return DCMC_ERR_FORMAT;
    uint8_t *buf = malloc((size_t)bs);
    if (buf == NULL)
        return DCMC_ERR_NOMEM;
    dcmc_status st = DCMC_OK;
    for (unsigned s = 0; s < g->planes && st == DCMC_OK; s++)
        for (uint32_t y = 0; y < g->h && st == DCMC_OK; y += bh)
            for (uint32_t x = 0; x < g->w && st == DCMC_OK; x += bw) {
                if (tiled && TIFFReadTile(t, buf, x, y, 0, (uint16_t)s) < 0)
                    st = DCMC_ERR_FORMAT;
                else if (!tiled && TIFFReadScanline(t, buf, y, (uint16_t)s) < 0)
                    st = DCMC_ERR_TRUNCATED;
                else
                    place(data, buf, x, y, bw, bh, g->w, g->h, g->ch, g->B, g->separate, s);
            }
    free(buf);
    return st;
}

dcmc_status dcmc_tiff_read(const char *path, dcmc_raster *out)
{
    if (out == NULL)
        return DCMC_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (path == NULL)
        return DCMC_ERR_ARG;
    tiff_silence();
    FILE *probe = fopen(path, "rb");
    if (probe == NULL)
        return DCMC_ERR_IO;
    fclose(probe);
    TIFF *t = TIFFOpen(path, "r");
    if (t == NULL)
        return DCMC_ERR_FORMAT;
    uint32_t w = 0, h = 0;
    uint16_t spp = 1, bps = 1, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
    dcmc_status st = DCMC_OK;
    if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h)) {
        TIFFClose(t);
        return DCMC_ERR_FORMAT;
    }
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
    size_t size;
    if (w == 0 || h == 0)
        st = DCMC_ERR_FORMAT;
    else if (fmt != SAMPLEFORMAT_UINT ||
             (st = dcmci_raster_shape(w, h, spp, bps, &size)) == DCMC_ERR_ARG)
        st = DCMC_ERR_UNSUPPORTED; /* a valid TIFF we do not handle (e.g. float, 1 or 32 bits) */
    if (st != DCMC_OK) {
        TIFFClose(t);
        return st;
    }
    const int separate = planar == PLANARCONFIG_SEPARATE && spp > 1;
    const tiff_shape g = {w, h, spp, bps / 8u, separate ? spp : 1u, separate};
    uint8_t *data = calloc(size, 1);
    if (data == NULL) {
        TIFFClose(t);
        return DCMC_ERR_NOMEM;
    }
    st = read_blocks(t, &g, data);
    TIFFClose(t);
    if (st != DCMC_OK) {
        free(data);
        return st;
    }
    dcmci_raster_set(out, w, h, spp, bps, data, size);
    return DCMC_OK;
}

dcmc_status dcmc_tiff_write(const char *path, const dcmc_raster *r)
{
    size_t size;
    if (path == NULL || r == NULL || r->data == NULL ||
        dcmci_raster_shape(r->width, r->height, r->channels, r->bit_depth, &size) != DCMC_OK ||
        size > r->size)
        return DCMC_ERR_ARG;
    tiff_silence();
    TIFF *t = TIFFOpen(path, "w");
    if (t == NULL)
        return DCMC_ERR_IO;
    int ok = 1;
    ok &= TIFFSetField(t, TIFFTAG_IMAGEWIDTH, r->width);
    ok &= TIFFSetField(t, TIFFTAG_IMAGELENGTH, r->height);
    ok &= TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)r->channels);
    ok &= TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)r->bit_depth);
    ok &= TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
    ok &= TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    ok &= TIFFSetField(t, TIFFTAG_PHOTOMETRIC,
                       r->channels >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    if (r->channels == 2 || r->channels == 4) {
        uint16_t extra = EXTRASAMPLE_UNASSALPHA;
        ok &= TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra);
    }
    ok &= TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    ok &= TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(t, 0));
    size_t rowbytes = (size_t)r->width * r->channels * (r->bit_depth / 8);
    for (uint32_t y = 0; ok && y < r->height; y++)
        ok = TIFFWriteScanline(t, (uint8_t *)r->data + (size_t)y * rowbytes, y, 0) == 1;
    if (ok)
        ok = TIFFFlush(t) == 1;
    TIFFClose(t);
    if (!ok) {
        remove(path);
        return DCMC_ERR_IO;
    }
    return DCMC_OK;
}
