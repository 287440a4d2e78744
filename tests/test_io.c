/*
 * test_io.c - PNG and TIFF: exact write/read round trips for every depth and channel count at
 * odd sizes, the real corpus images, and hostile files (missing, empty, truncated, corrupted,
 * absurd sizes) that must give a status, never a crash.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dcmcrypt/io.h"
#include "test_common.h"

static void tmp_path(char *buf, size_t n, const char *ext)
{
    static int counter;
    snprintf(buf, n, "/tmp/dcmc-io-%d-%d%s", (int)getpid(), counter++, ext);
}

static void test_roundtrip(void)
{
    static const uint32_t dims[][2] = {{1, 1}, {7, 5}, {513, 3}, {3, 513}};
    const char *exts[] = {".png", ".tif"};
    dcmc_test_rng r = {77};
    for (int e = 0; e < 2; e++)
        for (size_t d = 0; d < 4; d++)
            for (uint32_t ch = 1; ch <= 4; ch++)
                for (uint32_t bits = 8; bits <= 16; bits += 8) {
                    dcmc_raster a, b;
                    CU_ASSERT_EQUAL_FATAL(dcmc_raster_alloc(&a, dims[d][0], dims[d][1], ch, bits), DCMC_OK);
                    for (size_t i = 0; i < a.size; i++)
                        ((uint8_t *)a.data)[i] = (uint8_t)dcmc_test_next(&r);
                    char path[256];
                    tmp_path(path, sizeof path, exts[e]);
                    CU_ASSERT_EQUAL(dcmc_raster_write(path, &a), DCMC_OK);
                    CU_ASSERT_EQUAL(dcmc_raster_read(path, &b), DCMC_OK);
                    CU_ASSERT(b.width == a.width && b.height == a.height && b.channels == ch &&
                              b.bit_depth == bits && b.size == a.size &&
                              memcmp(a.data, b.data, a.size) == 0);
                    unlink(path);
                    dcmc_raster_free(&a);
                    dcmc_raster_free(&b);
                }
}

static void test_sample_and_corpus(void)
{
    struct {
        const char *rel;
        int corpus;
        uint32_t w, h, ch, bits;
    } files[] = {
        {"sample-data/png/nema-wg04_MR1_brain_512x512_gray16.png", 0, 512, 512, 1, 16},
        {"sample-data/png/nema-wg04_CT1_chest_512x512_gray8.png", 0, 512, 512, 1, 8},
        {"png/chest-xray/original/pneumocystis-pneumonia-2-PA.png", 1, 955, 954, 4, 8},
        {"png/lung-ct/kjr-21-e24-g002-l-b_512x512_gray8.png", 1, 512, 512, 1, 8},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *p = files[i].corpus ? dcmc_test_corpus(files[i].rel) : dcmc_test_path(files[i].rel);
        if (p == NULL) {
            fprintf(stderr, "(corpus absent: %s skipped) ", files[i].rel);
            continue;
        }
        dcmc_raster r;
        CU_ASSERT_EQUAL(dcmc_raster_read(p, &r), DCMC_OK);
        CU_ASSERT(r.width == files[i].w && r.height == files[i].h && r.channels == files[i].ch &&
                  r.bit_depth == files[i].bits);
        dcmc_layout l;
        CU_ASSERT_EQUAL(dcmc_raster_layout(&r, &l), files[i].ch == 4 ? DCMC_ERR_UNSUPPORTED : DCMC_OK);
        dcmc_raster_free(&r);
    }
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static void test_hostile(void)
{
    dcmc_raster r;
    CU_ASSERT_EQUAL(dcmc_raster_read("/nonexistent/x.png", &r), DCMC_ERR_IO);
    CU_ASSERT_EQUAL(dcmc_png_read("/nonexistent/x.png", &r), DCMC_ERR_IO);
    CU_ASSERT_EQUAL(dcmc_tiff_read("/nonexistent/x.tif", &r), DCMC_ERR_IO);
    char path[256];
    tmp_path(path, sizeof path, ".png");
    write_bytes(path, "", 0);
    CU_ASSERT_NOT_EQUAL(dcmc_raster_read(path, &r), DCMC_OK);
    CU_ASSERT_NOT_EQUAL(dcmc_png_read(path, &r), DCMC_OK);
    CU_ASSERT_NOT_EQUAL(dcmc_tiff_read(path, &r), DCMC_OK);
    write_bytes(path, "this is not an image at all", 27);
    CU_ASSERT_EQUAL(dcmc_raster_read(path, &r), DCMC_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(r.data);

    /* A real PNG cut at many lengths, and with a corrupted IHDR CRC. */
    dcmc_raster a;
    CU_ASSERT_EQUAL_FATAL(dcmc_raster_alloc(&a, 64, 48, 3, 16), DCMC_OK);
    dcmc_test_rng g = {5};
    for (size_t i = 0; i < a.size; i++)
        ((uint8_t *)a.data)[i] = (uint8_t)dcmc_test_next(&g);
    CU_ASSERT_EQUAL(dcmc_png_write(path, &a), DCMC_OK);
    FILE *f = fopen(path, "rb");
    uint8_t buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CU_ASSERT(n > 100 && n < sizeof buf);
    for (size_t cut = 0; cut < n; cut += n / 23 + 1) {
        write_bytes(path, buf, cut);
        CU_ASSERT_NOT_EQUAL(dcmc_raster_read(path, &r), DCMC_OK);
        CU_ASSERT_PTR_NULL(r.data);
    }
    buf[29] ^= 0xFF; /* IHDR CRC */
    write_bytes(path, buf, n);
    CU_ASSERT_NOT_EQUAL(dcmc_png_read(path, &r), DCMC_OK);
    buf[29] ^= 0xFF;
    buf[16] = 0x7F; /* width 2^31 + ...: absurd, caught by the limits */
    write_bytes(path, buf, n);
    CU_ASSERT_NOT_EQUAL(dcmc_png_read(path, &r), DCMC_OK);
    unlink(path);

    /* TIFF cut short and with an absurd width. */
    tmp_path(path, sizeof path, ".tif");
    CU_ASSERT_EQUAL(dcmc_tiff_write(path, &a), DCMC_OK);
    f = fopen(path, "rb");
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t cut = 0; cut < n; cut += n / 17 + 1) {
        write_bytes(path, buf, cut);
        CU_ASSERT_NOT_EQUAL(dcmc_raster_read(path, &r), DCMC_OK);
    }
    static const uint8_t huge_tiff[] = {
        'I', 'I', 42, 0, 8, 0, 0, 0, 4, 0,         /* header, IFD at 8 with 4 entries */
        0x00, 0x01, 4, 0, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F, /* ImageWidth = 2^31-1 */
        0x01, 0x01, 4, 0, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F, /* ImageLength */
        0x02, 0x01, 3, 0, 1, 0, 0, 0, 16, 0, 0, 0,   /* BitsPerSample 16 */
        0x06, 0x01, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0,    /* Photometric */
        0, 0, 0, 0};
    write_bytes(path, huge_tiff, sizeof huge_tiff);
    CU_ASSERT_NOT_EQUAL(dcmc_raster_read(path, &r), DCMC_OK);
    CU_ASSERT_PTR_NULL(r.data);
    unlink(path);

    /* Writing: bad arguments and an unwritable place. */
    CU_ASSERT_EQUAL(dcmc_raster_write("/tmp/x.jpg", &a), DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmc_png_write("/nonexistent/dir/x.png", &a), DCMC_ERR_IO);
    CU_ASSERT_EQUAL(dcmc_raster_alloc(&r, 0, 5, 1, 8), DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmc_raster_alloc(&r, 70000, 5, 1, 8), DCMC_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(dcmc_raster_alloc(&r, 5, 5, 1, 12), DCMC_ERR_ARG);
    dcmc_raster_free(&a);
    dcmc_raster_free(NULL);
}

int dcmc_test_register_io(void)
{
    static const dcmc_test_case cases[] = {
        {"PNG and TIFF round trips are exact", test_roundtrip},
        {"sample data and corpus images", test_sample_and_corpus},
        {"hostile files give a status", test_hostile},
        {NULL, NULL},
    };
    return dcmc_test_add_suite("io", cases);
}
