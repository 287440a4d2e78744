/*
 * consumer.c - a program outside the project, built only against an installed dcmcrypt (CMake
 * package or pkg-config): encrypts a 16-bit frame in memory and decrypts it exactly, round-trips
 * a sample DICOM object through files, and writes and reads a PNG. Exit 0 only if all hold.
 * Usage: consumer SAMPLE.dcm WORK_DIR
 */
#include <dcmcrypt/dcmcrypt.h>
#include <dcmcrypt/dicom.h>
#include <dcmcrypt/io.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, dcmc_status st)
{
    fprintf(stderr, "consumer: %s: %s\n", what, dcmc_status_str(st));
    return 1;
}

static int memory_round_trip(const dcmc_key *key)
{
    dcmc_layout l = {64, 48, 1, 0, 16, 12, 11, 0};
    size_t n = 0;
    dcmc_status st = dcmc_layout_frame_bytes(&l, &n);
    uint8_t *px = malloc(n), *orig = malloc(n);
    if (st != DCMC_OK || !px || !orig)
        return fail("layout", st);
    for (size_t i = 0; i < n / 2; i++) {
        orig[2 * i] = (uint8_t)(i * 7);
        orig[2 * i + 1] = (uint8_t)((i >> 5) & 0x0f);
    }
    memcpy(px, orig, n);
    dcmc_options opt;
    dcmc_options_default(&opt);
    dcmc_header h;
    uint8_t *payload = NULL, *attrs = NULL;
    size_t payload_len = 0, attrs_len = 0;
    st = dcmc_image_encrypt(key, NULL, &opt, &l, 1, px, n, (const uint8_t *)"attrs", 5, &h,
                            &payload, &payload_len);
    int rc = st != DCMC_OK ? fail("encrypt", st) : 0;
    if (!rc && memcmp(px, orig, n) == 0)
        rc = fail("encrypt left the pixels in clear", DCMC_ERR_INTERNAL);
    if (!rc && (st = dcmc_image_decrypt(key, &h, 0, px, n, payload, payload_len, &attrs,
                                        &attrs_len)) != DCMC_OK)
        rc = fail("decrypt", st);
    if (!rc && (memcmp(px, orig, n) != 0 || attrs_len != 5 || memcmp(attrs, "attrs", 5) != 0))
        rc = fail("decryption is not exact", DCMC_ERR_INTERNAL);
    dcmc_free(payload, payload_len);
    dcmc_free(attrs, attrs_len);
    free(px);
    free(orig);
    return rc;
}

static int dicom_round_trip(const dcmc_key *key, const char *sample, const char *dir)
{
    char enc[4096], dec[4096], msg[DCMC_DICOM_MSG];
    snprintf(enc, sizeof enc, "%s/encrypted.dcm", dir);
    snprintf(dec, sizeof dec, "%s/decrypted.dcm", dir);
    uint8_t uid_key[32];
    dcmc_status st = dcmc_uid_key_from_key(key, uid_key);
    if (st == DCMC_OK)
        st = dcmc_dicom_encrypt(sample, enc, key, NULL, uid_key, NULL, NULL, NULL, msg, sizeof msg);
    if (st != DCMC_OK)
        return fail(msg, st);
    if ((st = dcmc_dicom_decrypt(enc, dec, key, 0, NULL, msg, sizeof msg)) != DCMC_OK)
        return fail(msg, st);
    dcmc_dicom_info a, b;
    uint8_t *pa = NULL, *pb = NULL;
    size_t la = 0, lb = 0;
    st = dcmc_dicom_read_pixels(sample, &a, &pa, &la, msg, sizeof msg);
    if (st == DCMC_OK)
        st = dcmc_dicom_read_pixels(dec, &b, &pb, &lb, msg, sizeof msg);
    int rc = st != DCMC_OK ? fail(msg, st) : 0;
    if (!rc && (la != lb || memcmp(pa, pb, la) != 0))
        rc = fail("the decrypted object's pixels differ", DCMC_ERR_INTERNAL);
    dcmc_free(pa, la);
    dcmc_free(pb, lb);
    return rc;
}

static int png_round_trip(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/gray16.png", dir);
    dcmc_raster r, back;
    dcmc_status st = dcmc_raster_alloc(&r, 5, 3, 1, 16);
    if (st != DCMC_OK)
        return fail("raster", st);
    for (size_t i = 0; i < 15; i++)
        ((uint16_t *)r.data)[i] = (uint16_t)(i * 4099);
    st = dcmc_png_write(path, &r);
    if (st == DCMC_OK)
        st = dcmc_png_read(path, &back);
    int rc = st != DCMC_OK ? fail("png", st) : 0;
    if (!rc && (back.size != r.size || memcmp(back.data, r.data, r.size) != 0))
        rc = fail("png round trip", DCMC_ERR_INTERNAL);
    if (st == DCMC_OK)
        dcmc_raster_free(&back);
    dcmc_raster_free(&r);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: consumer SAMPLE.dcm WORK_DIR\n");
        return 2;
    }
    dcmc_key key;
    memset(key.bytes, 0x42, sizeof key.bytes);
    int rc = memory_round_trip(&key) || dicom_round_trip(&key, argv[1], argv[2]) ||
             png_round_trip(argv[2]);
    if (!rc)
        printf("consumer: built against dcmcrypt %s, running %s: all round trips exact\n",
               DCMC_VERSION_STRING, dcmc_build_info());
    return rc;
}
