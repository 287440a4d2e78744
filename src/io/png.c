/*
 * png.c - PNG rasters through libpng's classic API. libpng reports errors by longjmp; every
 * resource is released on that path, and libpng never prints (our handlers swallow messages).
 * Palette and low-bit gray are expanded to 8 bits; 16-bit samples come back in host order.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "core/util.h"
#include "dcmcrypt/io.h"
#include "io/raster.h"

static void png_quiet_error(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void png_quiet_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* After png_read_info: ask for 8- or 16-bit samples in host order, palettes and transparency
 * expanded, interlacing undone; then update info to the decoded shape. */
static void read_transforms(png_structp png, png_infop info)
{
    int depth = png_get_bit_depth(png, info), color = png_get_color_type(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (depth == 16)
        png_set_swap(png); /* PNG stores 16-bit samples big endian */
#endif
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

dcmc_status dcmc_png_read(const char *path, dcmc_raster *out)
{
    FILE *f;
    const dcmc_status opened = dcmci_raster_open(path, out, &f);
    if (opened != DCMC_OK)
        return opened;
    uint8_t sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(f);
        return DCMC_ERR_FORMAT;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, png_quiet_error,
                                             png_quiet_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        fclose(f);
        return DCMC_ERR_NOMEM;
    }
    /* Locals that change after setjmp and are used after a longjmp must be volatile. */
    uint8_t *volatile data = NULL;
    png_bytep *volatile rows = NULL;
    volatile dcmc_status st = DCMC_ERR_FORMAT;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(data);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return st;
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, DCMC_RASTER_MAX_DIM, DCMC_RASTER_MAX_DIM);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    read_transforms(png, info);
    unsigned channels = png_get_channels(png, info);
    unsigned bits = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info), need, size;
    if (w == 0 || h == 0 || channels < 1 || channels > 4 || (bits != 8 && bits != 16)) {
        st = DCMC_ERR_UNSUPPORTED;
        png_longjmp(png, 1);
    }
    if (!dcmci_mul_size((size_t)w * channels, bits / 8, &need) || need != rowbytes ||
        !dcmci_mul_size(rowbytes, h, &size)) {
        st = DCMC_ERR_OVERFLOW;
        png_longjmp(png, 1);
    }
    data = malloc(size);
    rows = malloc((size_t)h * sizeof *rows);
    if (data == NULL || rows == NULL) {
        st = DCMC_ERR_NOMEM;
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = data + (size_t)y * rowbytes;
    /* A truncated file ends in a libpng error from here. */
    st = DCMC_ERR_TRUNCATED;
    png_read_image(png, rows);
    st = DCMC_ERR_FORMAT;
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    dcmci_raster_set(out, w, h, channels, bits, data, size);
    return DCMC_OK;
}

dcmc_status dcmc_png_write(const char *path, const dcmc_raster *r)
{
    size_t size;
    if (path == NULL || r == NULL || r->data == NULL ||
        dcmci_raster_shape(r->width, r->height, r->channels, r->bit_depth, &size) != DCMC_OK ||
        size > r->size)
        return DCMC_ERR_ARG;
    static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                PNG_COLOR_TYPE_RGB_ALPHA};
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return DCMC_ERR_IO;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_quiet_error,
                                              png_quiet_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        remove(path);
        return DCMC_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        png_destroy_write_struct(&png, &info);
        fclose(f);
        remove(path);
        return DCMC_ERR_IO;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, r->width, r->height, (int)r->bit_depth, types[r->channels - 1],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (r->bit_depth == 16)
        png_set_swap(png);
#endif
    size_t rowbytes = (size_t)r->width * r->channels * (r->bit_depth / 8);
    rows = malloc((size_t)r->height * sizeof *rows);
    if (rows == NULL)
        png_longjmp(png, 1);
    for (uint32_t y = 0; y < r->height; y++)
        rows[y] = (png_bytep)r->data + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        remove(path);
        return DCMC_ERR_IO;
    }
    return DCMC_OK;
}
