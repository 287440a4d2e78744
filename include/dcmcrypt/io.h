/*
 * dcmcrypt_io.h - PNG and TIFF images in and out (libpng, libtiff), for the demo, the benchmark
 * and the evaluation suite. 8- and 16-bit grayscale and RGB (with or without alpha).
 *
 * A raster is width*height pixels of `channels` interleaved samples, row-major, no row padding.
 * 8-bit samples are bytes; 16-bit samples are uint16_t in host order. Sizes are overflow-checked;
 * bad files give a status, never a crash. Release with dcmc_raster_free().
 */
#ifndef DCMCRYPT_IO_H
#define DCMCRYPT_IO_H

#include "dcmcrypt/dcmcrypt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dcmc_raster {
    uint32_t width, height;
    uint32_t channels;  /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    uint32_t bit_depth; /* 8 or 16 */
    void *data;         /* width*height*channels samples */
    size_t size;        /* bytes in data */
} dcmc_raster;

/* Largest accepted width or height; larger files get DCMC_ERR_UNSUPPORTED. */
#define DCMC_RASTER_MAX_DIM 65535u

/* Allocate a zeroed raster (checked sizes); channels 1..4, bit_depth 8 or 16. */
DCMC_API dcmc_status dcmc_raster_alloc(dcmc_raster *r, uint32_t width, uint32_t height,
                                       uint32_t channels, uint32_t bit_depth);
DCMC_API void dcmc_raster_free(dcmc_raster *r);

/* PNG: palette and <8-bit gray are expanded to 8 bits, tRNS to an alpha channel. */
DCMC_API DCMC_NONNULL(1, 2) dcmc_status dcmc_png_read(const char *path, dcmc_raster *out);
DCMC_API DCMC_NONNULL(1, 2) dcmc_status dcmc_png_write(const char *path, const dcmc_raster *r);
/* TIFF: contiguous or separate planes, strips or tiles; uncompressed, LZW, Deflate... (libtiff). */
DCMC_API DCMC_NONNULL(1, 2) dcmc_status dcmc_tiff_read(const char *path, dcmc_raster *out);
/* Written uncompressed-free: Deflate (lossless), contiguous planes. */
DCMC_API DCMC_NONNULL(1, 2) dcmc_status dcmc_tiff_write(const char *path, const dcmc_raster *r);
/* Read PNG or TIFF, chosen by the file's signature (not its name). */
DCMC_API DCMC_NONNULL(1, 2) dcmc_status dcmc_raster_read(const char *path, dcmc_raster *out);
/* Write PNG or TIFF chosen by the extension (.png, .tif, .tiff; case-insensitive). */
DCMC_API DCMC_NONNULL(1, 2) dcmc_status dcmc_raster_write(const char *path, const dcmc_raster *r);

/* The cipher layout of a raster with 1 or 3 channels (DCMC_ERR_UNSUPPORTED otherwise):
 * bits_allocated = bits_stored = bit_depth, unsigned, planar 0. 16-bit pixels must be converted
 * to little-endian bytes for the cipher on big-endian hosts (a no-op on x86-64). */
DCMC_API dcmc_status dcmc_raster_layout(const dcmc_raster *r, dcmc_layout *layout);

#ifdef __cplusplus
}
#endif

#endif
