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
    else if (fmt != SAMPLEFORMAT_UINT)
        st = DCMC_ERR_UNSUPPORTED;
    else if ((st = dcmci_raster_shape(w, h, spp, bps, &size)) == DCMC_ERR_ARG)
        st = DCMC_ERR_UNSUPPORTED; /* a valid TIFF we do not handle (e.g. 1-bit or 32-bit) */
    if (st != DCMC_OK) {
        TIFFClose(t);
        return st;
    }
    const unsigned B = bps / 8, ch = spp;
    const int separate = planar == PLANARCONFIG_SEPARATE && ch > 1;
    uint8_t *data = calloc(size, 1);
    uint8_t *buf = NULL;
    if (data == NULL) {
        TIFFClose(t);
        return DCMC_ERR_NOMEM;
    }
    const unsigned planes = separate ? ch : 1;
    if (TIFFIsTiled(t)) {
        uint32_t tw = 0, th = 0;
        TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
        tmsize_t ts = TIFFTileSize(t);
        size_t need;
        if (tw == 0 || th == 0 || ts <= 0 ||
            !dcmci_mul_size((size_t)tw * th, (size_t)(separate ? 1 : ch) * B, &need) ||
            need > (size_t)ts)
            st = DCMC_ERR_FORMAT;
        else if ((buf = malloc((size_t)ts)) == NULL)
            st = DCMC_ERR_NOMEM;
        for (unsigned s = 0; s < planes && st == DCMC_OK; s++)
            for (uint32_t y = 0; y < h && st == DCMC_OK; y += th)
                for (uint32_t x = 0; x < w && st == DCMC_OK; x += tw) {
                    if (TIFFReadTile(t, buf, x, y, 0, (uint16_t)s) < 0)
                        st = DCMC_ERR_FORMAT;
                    else
                        place(data, buf, x, y, tw, th, w, h, ch, B, separate, s);
                }
    } else {
        tmsize_t ls = TIFFScanlineSize(t);
        size_t need = (size_t)w * (separate ? 1 : ch) * B;
        if (ls <= 0 || (size_t)ls < need)
            st = DCMC_ERR_FORMAT;
        else if ((buf = malloc((size_t)ls)) == NULL)
            st = DCMC_ERR_NOMEM;
        for (unsigned s = 0; s < planes && st == DCMC_OK; s++)
            for (uint32_t y = 0; y < h && st == DCMC_OK; y++) {
                if (TIFFReadScanline(t, buf, y, (uint16_t)s) < 0)
                    st = DCMC_ERR_TRUNCATED;
                else
                    place(data, buf, 0, y, w, 1, w, h, ch, B, separate, s);
            }
    }
    free(buf);
    TIFFClose(t);
    if (st != DCMC_OK) {
        free(data);
        return st;
    }
    dcmci_raster_set(out, w, h, ch, bps, data, size);
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
