/*
 * image.c - raster allocation, format sniffing (by signature, never by name) and the mapping of
 * a raster to the cipher's pixel layout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "dcmcrypt/io.h"
#include "io/raster.h"

dcmc_status dcmci_raster_shape(uint32_t width, uint32_t height, uint32_t channels,
                              uint32_t bit_depth, size_t *size)
{
    *size = 0;
    if (width == 0 || height == 0 || channels < 1 || channels > 4 ||
        (bit_depth != 8 && bit_depth != 16))
        return DCMC_ERR_ARG;
    if (width > DCMC_RASTER_MAX_DIM || height > DCMC_RASTER_MAX_DIM)
        return DCMC_ERR_UNSUPPORTED;
    if (!dcmci_mul_size((size_t)width * height, (size_t)channels * (bit_depth / 8), size))
        return DCMC_ERR_OVERFLOW;
    return DCMC_OK;
}

void dcmci_raster_set(dcmc_raster *r, uint32_t width, uint32_t height, uint32_t channels,
                     uint32_t bit_depth, void *data, size_t size)
{
    r->width = width;
    r->height = height;
    r->channels = channels;
    r->bit_depth = bit_depth;
    r->data = data;
    r->size = size;
}

dcmc_status dcmc_raster_alloc(dcmc_raster *r, uint32_t width, uint32_t height, uint32_t channels,
                              uint32_t bit_depth)
{
    if (r == NULL)
        return DCMC_ERR_ARG;
    memset(r, 0, sizeof *r);
    size_t size;
    dcmc_status st = dcmci_raster_shape(width, height, channels, bit_depth, &size);
    if (st != DCMC_OK)
        return st;
    void *data = calloc(size, 1);
    if (data == NULL)
        return DCMC_ERR_NOMEM;
    dcmci_raster_set(r, width, height, channels, bit_depth, data, size);
    return DCMC_OK;
}

void dcmc_raster_free(dcmc_raster *r)
{
    if (r == NULL)
        return;
    free(r->data);
    memset(r, 0, sizeof *r);
}

dcmc_status dcmci_raster_open(const char *path, dcmc_raster *out, FILE **f)
{
    *f = NULL;
    if (out == NULL)
        return DCMC_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (path == NULL)
        return DCMC_ERR_ARG;
    *f = fopen(path, "rb");
    return *f ? DCMC_OK : DCMC_ERR_IO;
}

dcmc_status dcmc_raster_read(const char *path, dcmc_raster *out)
{
    FILE *f;
    dcmc_status st = dcmci_raster_open(path, out, &f);
    if (st != DCMC_OK)
        return st;
    uint8_t sig[8] = {0};
    size_t n = fread(sig, 1, sizeof sig, f);
    fclose(f);
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n == 8 && memcmp(sig, png_sig, 8) == 0)
        return dcmc_png_read(path, out);
    /* Classic TIFF (42) and BigTIFF (43), either byte order. */
    if (n >= 4 && ((sig[0] == 'I' && sig[1] == 'I' && (sig[2] == 42 || sig[2] == 43) && sig[3] == 0) ||
                   (sig[0] == 'M' && sig[1] == 'M' && sig[2] == 0 && (sig[3] == 42 || sig[3] == 43))))
        return dcmc_tiff_read(path, out);
    return n < 4 ? DCMC_ERR_TRUNCATED : DCMC_ERR_FORMAT;
}

dcmc_status dcmc_raster_write(const char *path, const dcmc_raster *r)
{
    if (path == NULL || r == NULL)
        return DCMC_ERR_ARG;
    const char *dot = strrchr(path, '.');
    if (dot && strcasecmp(dot, ".png") == 0)
        return dcmc_png_write(path, r);
    if (dot && (strcasecmp(dot, ".tif") == 0 || strcasecmp(dot, ".tiff") == 0))
        return dcmc_tiff_write(path, r);
    return DCMC_ERR_ARG;
}

dcmc_status dcmc_raster_layout(const dcmc_raster *r, dcmc_layout *layout)
{
    if (layout == NULL)
        return DCMC_ERR_ARG;
    memset(layout, 0, sizeof *layout);
    if (r == NULL || r->data == NULL)
        return DCMC_ERR_ARG;
    if (r->channels != 1 && r->channels != 3)
        return DCMC_ERR_UNSUPPORTED; /* alpha channels: no DICOM equivalent */
    layout->rows = r->height;
    layout->cols = r->width;
    layout->samples = r->channels;
    layout->planar = 0;
    layout->bits_allocated = r->bit_depth;
    layout->bits_stored = r->bit_depth;
    layout->high_bit = r->bit_depth - 1;
    layout->is_signed = 0;
    return dcmc_layout_check(layout);
}
