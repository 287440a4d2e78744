/*
 * test_dicom.c - the DCMTK adapter on the objects in sample-data/dicom and on objects the tests
 * build: exact round trip for every layout and transfer syntax there, new UIDs that are the same
 * for the same key, wrong key and tampering caught, truncated and hostile files refused,
 * objects without pixel data refused, outputs that cannot be written reported, exceptions
 * mapped to honest statuses, JPEG 2000 codestreams that disagree with the attributes refused.
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/dicom.h"
#include "test_common.h"
#include "testhook.h" /* dicom/: the adapter's exception mapping, for tests only */

/* The adapter's streaming switch and probe (dicom/pixels.cc; internal, not exported): mode 0
 * streams by size, 1 never, 2 wherever the object allows it; streamed says whether the last
 * operation of this thread did. */
void dcmci_dicom_stream_mode(int mode);
int dcmci_dicom_streamed(void);

static char g_dir[64];

static int suite_init(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/dcmc-dicom-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int suite_clean(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(g_dir);
    return 0;
}

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void test_key(dcmc_key *k, uint8_t uid_key[32], uint8_t seed)
{
    for (int i = 0; i < 32; i++)
        k->bytes[i] = (uint8_t)(i * 7 + seed);
    CU_ASSERT_EQUAL(dcmc_uid_key_from_key(k, uid_key), DCMC_OK);
}

static const char *sample(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/sample-data/dicom/%s", dcmc_test_source_dir(), name);
    return buf;
}

/* Every decodable sample: encrypt, the pixels change, decrypt, the pixels are the original's. */
static void test_roundtrip_samples(void)
{
    static const char *files[] = {
        "pydicom_CT_small_128x128.dcm", "pydicom_MR_small_bigendian.dcm",
        "pydicom_SC_rgb_small_odd_3x3.dcm", "highdicom_seg_image_ct_binary_overlap_1bit_8frames.dcm",
        "pydicom_rtdose_32bit_15frames.dcm", "pydicom_SC_ybr_full_422_uncompressed.dcm",
        "pydicom_SC_rgb_jpeg_dcmtk_JPEG-baseline.dcm", "clunie_image_dfl_deflate_1.2.840.10008.1.2.1.99.dcm",
        "pydicom-data_emri_small_enhancedMR_10frames.dcm", "pydicom_ExplVR_BigEnd_US_RGB.dcm",
        "dcm_qa_ts_7_JPEG-LS.dcm", "dcm_qa_ts_4_RLE.dcm", "dcm_qa_ts_9_J2K-lossless.dcm",
        "dcm_qa_12bit_12bitSigned_0x0F0F.dcm",
    };
    dcmc_key key;
    uint8_t uk[32];
    test_key(&key, uk, 1);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char msg[DCMC_DICOM_MSG];
        dcmc_dicom_info info, info2, info3;
        uint8_t *orig = NULL, *enc = NULL, *dec = NULL;
        size_t ol = 0, el = 0, dl = 0;
        const char *in = sample(files[i]);
        dcmc_status st = dcmc_dicom_read_pixels(in, &info, &orig, &ol, msg, sizeof msg);
        CU_ASSERT_EQUAL(st, DCMC_OK);
        if (st != DCMC_OK) {
            fprintf(stderr, "\n  %s: %s", files[i], msg);
            continue;
        }
        st = dcmc_dicom_encrypt(in, tmp("e.dcm"), &key, NULL, uk, NULL, NULL, &info2, msg, sizeof msg);
        CU_ASSERT_EQUAL(st, DCMC_OK);
        if (st != DCMC_OK)
            fprintf(stderr, "\n  %s: %s", files[i], msg);
        CU_ASSERT_EQUAL(dcmc_dicom_read_pixels(tmp("e.dcm"), &info3, &enc, &el, msg, sizeof msg),
                        DCMC_OK);
        CU_ASSERT(el == ol && info3.frames == info.frames);
        if (el == ol && ol >= 64) {
            size_t same = 0;
            for (size_t b = 0; b < ol; b++)
                same += enc[b] == orig[b];
            CU_ASSERT(same < ol / 8); /* about 1/256 of the bytes by chance */
        }
        st = dcmc_dicom_decrypt(tmp("e.dcm"), tmp("d.dcm"), &key, 0, &info3, msg, sizeof msg);
        CU_ASSERT_EQUAL(st, DCMC_OK);
        if (st != DCMC_OK)
            fprintf(stderr, "\n  %s: %s", files[i], msg);
        CU_ASSERT_EQUAL(dcmc_dicom_read_pixels(tmp("d.dcm"), &info3, &dec, &dl, msg, sizeof msg),
                        DCMC_OK);
        int exact = dl == ol && dec && memcmp(dec, orig, ol) == 0;
        CU_ASSERT(exact);
        if (!exact)
            fprintf(stderr, "\n  %s: decrypted pixels differ", files[i]);
        /* Re-encoded where the original syntax is lossless and DCMTK can encode it. */
        if (strstr(files[i], "RLE"))
            CU_ASSERT_STRING_EQUAL(info3.transfer_syntax, "1.2.840.10008.1.2.5");
        if (strstr(files[i], "JPEG-LS"))
            CU_ASSERT_STRING_EQUAL(info3.transfer_syntax, "1.2.840.10008.1.2.4.80");
        dcmc_free(orig, ol);
        dcmc_free(enc, el);
        dcmc_free(dec, dl);
    }
}

/* Reads a file into memory; NULL (and *n = 0) when it cannot. */
static uint8_t *slurp(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        sz = ftell(f);
    uint8_t *b = sz >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)sz + 1) : NULL;
    if (b)
        *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(b, 1, n, f);
    fclose(f);
}

static void test_uids_and_marker(void)
{
    dcmc_key key, other;
    uint8_t uk[32], uk2[32];
    test_key(&key, uk, 1);
    test_key(&other, uk2, 2);
    char msg[DCMC_DICOM_MSG];
    const char *in = sample("pydicom_CT_small_128x128.dcm");
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(in, tmp("a.dcm"), &key, NULL, uk, NULL, NULL, NULL, msg, sizeof msg), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(in, tmp("b.dcm"), &key, NULL, uk, NULL, NULL, NULL, msg, sizeof msg), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(in, tmp("c.dcm"), &other, NULL, uk2, NULL, NULL, NULL, msg, sizeof msg), DCMC_OK);
    size_t na = 0, nb = 0, nc = 0, no = 0;
    uint8_t *a = slurp(tmp("a.dcm"), &na), *b = slurp(tmp("b.dcm"), &nb), *c = slurp(tmp("c.dcm"), &nc);
    uint8_t *o = slurp(in, &no);
    CU_ASSERT_FATAL(a && b && c && o);
    char mapped[65], mapped2[65];
    /* The original SOP Instance UID of CT_small, and where it went. */
    const char *orig_uid = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322";
    CU_ASSERT_EQUAL(dcmc_uid_map(uk, orig_uid, mapped), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_uid_map(uk2, orig_uid, mapped2), DCMC_OK);
    CU_ASSERT(strncmp(mapped, "2.25.", 5) == 0 && strlen(mapped) <= 64);
    CU_ASSERT(strcmp(mapped, mapped2) != 0);
    CU_ASSERT_PTR_NOT_NULL(memmem(o, no, orig_uid, strlen(orig_uid)));
    CU_ASSERT_PTR_NULL(memmem(a, na, orig_uid, strlen(orig_uid)));  /* not in clear anywhere */
    CU_ASSERT_PTR_NOT_NULL(memmem(a, na, mapped, strlen(mapped)));  /* same key: same UID */
    CU_ASSERT_PTR_NOT_NULL(memmem(b, nb, mapped, strlen(mapped)));
    CU_ASSERT_PTR_NOT_NULL(memmem(c, nc, mapped2, strlen(mapped2)));
    CU_ASSERT_PTR_NOT_NULL(memmem(a, na, "ENCRYPTED PIXEL DATA", 20));
    CU_ASSERT_PTR_NOT_NULL(memmem(a, na, "DCMCRYPT 1", 10));
    /* Peek gives the header; decrypting twice the same object is fine, encrypting it is not. */
    dcmc_header h;
    CU_ASSERT_EQUAL(dcmc_dicom_peek(tmp("a.dcm"), &h, msg, sizeof msg), DCMC_OK);
    CU_ASSERT_EQUAL(h.preset.id, DCMC_PRESET_AT_RESNET_CM);
    CU_ASSERT_EQUAL(dcmc_dicom_peek(in, &h, msg, sizeof msg), DCMC_ERR_NOT_ENCRYPTED);
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(tmp("a.dcm"), tmp("x.dcm"), &key, NULL, uk, NULL, NULL, NULL, msg, sizeof msg),
                    DCMC_ERR_ALREADY_ENCRYPTED);
    CU_ASSERT_EQUAL(dcmc_dicom_decrypt(in, tmp("x.dcm"), &key, 0, NULL, msg, sizeof msg),
                    DCMC_ERR_NOT_ENCRYPTED);
    /* The decrypted object is the original, byte for byte where the syntax is the same. */
    CU_ASSERT_EQUAL(dcmc_dicom_decrypt(tmp("a.dcm"), tmp("d.dcm"), &key, 0, NULL, msg, sizeof msg), DCMC_OK);
    size_t nd = 0;
    uint8_t *d = slurp(tmp("d.dcm"), &nd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_PTR_NOT_NULL(memmem(d, nd, orig_uid, strlen(orig_uid)));
    CU_ASSERT_PTR_NULL(memmem(d, nd, "DCMCRYPT", 8));
    CU_ASSERT_PTR_NULL(memmem(d, nd, "ENCRYPTED PIXEL DATA", 20));
    free(a);
    free(b);
    free(c);
    free(o);
    free(d);
}

static void test_wrong_key_and_tampering(void)
{
    dcmc_key key, other;
    uint8_t uk[32], uk2[32];
    test_key(&key, uk, 1);
    test_key(&other, uk2, 2);
    char msg[DCMC_DICOM_MSG];
    CU_ASSERT_EQUAL_FATAL(dcmc_dicom_encrypt(sample("pydicom_MR_small_bigendian.dcm"), tmp("e.dcm"), &key,
                                             NULL, uk, NULL, NULL, NULL, msg, sizeof msg), DCMC_OK);
    unlink(tmp("d.dcm"));
    CU_ASSERT_EQUAL(dcmc_dicom_decrypt(tmp("e.dcm"), tmp("d.dcm"), &other, 0, NULL, msg, sizeof msg),
                    DCMC_ERR_WRONG_KEY);
    CU_ASSERT(access(tmp("d.dcm"), F_OK) != 0); /* nothing written */
    size_t n = 0;
    uint8_t *b = slurp(tmp("e.dcm"), &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_FATAL(n > 12);
    /* The last (7FE0,0010) tag: the pixel data; flip a bit in the middle of its value. */
    const uint8_t pix[4] = {0xE0, 0x7F, 0x10, 0x00};
    size_t at = n;
    for (size_t i = n - 12; i-- > 0;)
        if (memcmp(b + i, pix, 4) == 0) {
            at = i;
            break;
        }
    CU_ASSERT_FATAL(at < n);
    size_t pos = at + 12 + (n - at - 12) / 2;
    b[pos] ^= 0x01;
    spit(tmp("t.dcm"), b, n);
    CU_ASSERT_EQUAL(dcmc_dicom_decrypt(tmp("t.dcm"), tmp("d.dcm"), &key, 0, NULL, msg, sizeof msg),
                    DCMC_ERR_INTEGRITY);
    CU_ASSERT(access(tmp("d.dcm"), F_OK) != 0);
    b[pos] ^= 0x01;
    /* An authenticated attribute changed: Rows. */
    const uint8_t rows[4] = {0x28, 0x00, 0x10, 0x00};
    uint8_t *r = memmem(b, n, rows, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    r[8] ^= 0x01;
    spit(tmp("t.dcm"), b, n);
    CU_ASSERT_NOT_EQUAL(dcmc_dicom_decrypt(tmp("t.dcm"), tmp("d.dcm"), &key, 0, NULL, msg, sizeof msg),
                        DCMC_OK);
    CU_ASSERT(access(tmp("d.dcm"), F_OK) != 0);
    r[8] ^= 0x01;
    /* Truncated anywhere: a status, never a crash or an output. */
    for (size_t cut = 0; cut < n; cut += n / 29 + 1) {
        spit(tmp("t.dcm"), b, cut);
        dcmc_status st = dcmc_dicom_decrypt(tmp("t.dcm"), tmp("d.dcm"), &key, 0, NULL, msg, sizeof msg);
        CU_ASSERT_NOT_EQUAL(st, DCMC_OK);
        CU_ASSERT(msg[0] != '\0');
        CU_ASSERT(access(tmp("d.dcm"), F_OK) != 0);
    }
    free(b);
}

static void test_refused_inputs(void)
{
    dcmc_key key;
    uint8_t uk[32];
    test_key(&key, uk, 1);
    char msg[DCMC_DICOM_MSG];
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(sample("pydicom_MR_truncated.dcm"), tmp("x.dcm"), &key, NULL, uk,
                                       NULL, NULL, NULL, msg, sizeof msg), DCMC_ERR_FORMAT);
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(sample("pydicom-data_parametric_map_float.dcm"), tmp("x.dcm"), &key,
                                       NULL, uk, NULL, NULL, NULL, msg, sizeof msg), DCMC_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt("/nonexistent.dcm", tmp("x.dcm"), &key, NULL, uk, NULL, NULL,
                                       NULL, msg, sizeof msg), DCMC_ERR_IO);
    spit(tmp("junk.dcm"), (const uint8_t *)"not dicom at all", 16);
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(tmp("junk.dcm"), tmp("x.dcm"), &key, NULL, uk, NULL, NULL, NULL, msg,
                                       sizeof msg), DCMC_ERR_FORMAT);
    /* An object without pixel data (built here: a meta header and a few attributes). */
    uint8_t sr[512];
    size_t n = 0;
    memset(sr, 0, 128);
    n = 128;
    memcpy(sr + n, "DICM", 4);
    n += 4;
#define EL(g, e, vr, str)                                                                       \
    do {                                                                                        \
        size_t l_ = strlen(str) + (strlen(str) & 1);                                            \
        sr[n++] = (uint8_t)(g), sr[n++] = (uint8_t)((g) >> 8), sr[n++] = (uint8_t)(e),          \
        sr[n++] = (uint8_t)((e) >> 8);                                                          \
        sr[n++] = (vr)[0], sr[n++] = (vr)[1], sr[n++] = (uint8_t)l_, sr[n++] = 0;               \
        memset(sr + n, 0, l_);                                                                  \
        memcpy(sr + n, str, strlen(str));                                                       \
        n += l_;                                                                                \
    } while (0)
    EL(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1");
    EL(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.88.11");
    EL(0x0008, 0x0018, "UI", "1.2.3.4.5");
    EL(0x0008, 0x0060, "CS", "SR");
#undef EL
    spit(tmp("sr.dcm"), sr, n);
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(tmp("sr.dcm"), tmp("x.dcm"), &key, NULL, uk, NULL, NULL, NULL, msg,
                                       sizeof msg), DCMC_ERR_NOT_IMAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "no pixel data"));
}

static void test_unwritable_output(void)
{
    dcmc_key key;
    uint8_t uk[32];
    test_key(&key, uk, 1);
    char msg[DCMC_DICOM_MSG];
    const char *in = sample("pydicom_SC_rgb_small_odd_3x3.dcm");
    /* A full disk: /dev/full refuses every write with ENOSPC. */
    if (access("/dev/full", W_OK) == 0)
        CU_ASSERT_EQUAL(dcmc_dicom_encrypt(in, "/dev/full", &key, NULL, uk, NULL, NULL, NULL, msg, sizeof msg),
                        DCMC_ERR_WRITE);
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(in, "/nonexistent/dir/out.dcm", &key, NULL, uk, NULL, NULL, NULL, msg,
                                       sizeof msg), DCMC_ERR_WRITE);
}

/* How exceptions become statuses (dicom/errors.cc): our own refusals keep their status, out of
 * memory is DCMC_ERR_NOMEM, an exception out of DCMTK while it parses the input (inside the parse
 * boundary) is malformed input, and anything else is a bug of ours: DCMC_ERR_INTERNAL, never
 * DCMC_ERR_FORMAT (which the adapter gave every exception before). */
static void test_exception_mapping(void)
{
    static const struct {
        int what;
        dcmc_status outside, inside; /* thrown by our code / inside parsing() */
    } cases[] = {
        {DCMCI_THROW_NOTHING, DCMC_OK, DCMC_OK},
        {DCMCI_THROW_FAILURE, DCMC_ERR_UNSUPPORTED, DCMC_ERR_UNSUPPORTED},
        {DCMCI_THROW_BAD_ALLOC, DCMC_ERR_NOMEM, DCMC_ERR_NOMEM},
        {DCMCI_THROW_LOGIC_ERROR, DCMC_ERR_INTERNAL, DCMC_ERR_FORMAT},
        {DCMCI_THROW_OUT_OF_RANGE, DCMC_ERR_INTERNAL, DCMC_ERR_FORMAT},
        {DCMCI_THROW_UNKNOWN, DCMC_ERR_INTERNAL, DCMC_ERR_FORMAT},
        {DCMCI_THROW_BUG, DCMC_ERR_INTERNAL, DCMC_ERR_INTERNAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[DCMC_DICOM_MSG];
        for (int in = 0; in < 2; in++) {
            const int what = cases[i].what | (in ? DCMCI_THROW_WHILE_PARSING : 0);
            const dcmc_status want = in ? cases[i].inside : cases[i].outside;
            memset(msg, 'x', sizeof msg);
            const dcmc_status st = dcmci_dicom_exception_status(what, msg, sizeof msg);
            CU_ASSERT_EQUAL(st, want);
            if (st != want)
                fprintf(stderr, "\n  exception %#x: status %d, expected %d (%s)", (unsigned)what,
                        (int)st, (int)want, msg);
            if (want == DCMC_OK)
                CU_ASSERT_STRING_EQUAL(msg, "");
            if (want == DCMC_ERR_INTERNAL) /* the message says whose fault it is */
                CU_ASSERT_PTR_NOT_NULL(strstr(msg, "a bug in dcmcrypt"));
            if (want == DCMC_ERR_FORMAT && in) /* and names what was being read */
                CU_ASSERT_PTR_NOT_NULL(strstr(msg, "test.dcm"));
        }
    }
    /* A NULL or empty message buffer is fine. */
    CU_ASSERT_EQUAL(dcmci_dicom_exception_status(DCMCI_THROW_LOGIC_ERROR, NULL, 0), DCMC_ERR_INTERNAL);
}

/* Sets the 16-bit value of the first explicit VR little endian US element (g,e) of `b`. */
static int patch_us(uint8_t *b, size_t n, uint16_t g, uint16_t e, uint16_t v)
{
    const uint8_t h[8] = {(uint8_t)g, (uint8_t)(g >> 8), (uint8_t)e, (uint8_t)(e >> 8), 'U', 'S', 2, 0};
    uint8_t *at = memmem(b, n, h, sizeof h);
    if (!at || (size_t)(at - b) + 10 > n)
        return -1;
    at[8] = (uint8_t)v;
    at[9] = (uint8_t)(v >> 8);
    return 0;
}

/* A JPEG 2000 object whose attributes disagree with its codestream so that the decoded
 * components cannot fill the frames they describe is malformed: refused by every reader with
 * DCMC_ERR_FORMAT and a message naming what differs, nothing written, no crash. Two
 * disagreements real objects carry stay accepted and exact: Bits Stored other than the
 * precision, and Pixel Representation other than the codestream's signedness (dicom/j2k.cc).
 * The object: dcm_qa_ts_9, one unsigned 16-bit component of 384x384 under Bits Stored 12. */
static void test_j2k_mismatch(void)
{
    static const struct {
        uint16_t set[3][2]; /* (0028,e) = v; e 0 ends */
        const char *says;   /* in the message; NULL: accepted */
    } cases[] = {
        {{{0x0010, 383}}, "Rows"},                                 /* 384 rows high */
        {{{0x0011, 385}}, "Columns"},                              /* 384 columns wide */
        {{{0x0002, 3}}, "Samples per Pixel"},                      /* one component */
        {{{0x0100, 8}, {0x0101, 8}, {0x0102, 7}}, "Bits Allocated"}, /* of 16 bits */
        {{{0x0101, 10}, {0x0102, 9}}, NULL},                       /* Bits Stored 10 */
        {{{0x0103, 1}}, NULL},                                     /* Pixel Representation 1 */
    };
    dcmc_key key;
    uint8_t uk[32];
    test_key(&key, uk, 1);
    size_t n = 0;
    uint8_t *orig = slurp(sample("dcm_qa_ts_9_J2K-lossless.dcm"), &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
    uint8_t *b = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[DCMC_DICOM_MSG];
        memcpy(b, orig, n);
        for (int k = 0; k < 3 && cases[i].set[k][0]; k++)
            CU_ASSERT_EQUAL(patch_us(b, n, 0x0028, cases[i].set[k][0], cases[i].set[k][1]), 0);
        spit(tmp("j2k.dcm"), b, n);
        unlink(tmp("x.dcm"));
        const dcmc_status want = cases[i].says ? DCMC_ERR_FORMAT : DCMC_OK;
        dcmc_status st = dcmc_dicom_encrypt(tmp("j2k.dcm"), tmp("x.dcm"), &key, NULL, uk, NULL, NULL,
                                            NULL, msg, sizeof msg);
        CU_ASSERT_EQUAL(st, want);
        if (st != want)
            fprintf(stderr, "\n  (0028,%04x) = %u: status %d (%s)", cases[i].set[0][0],
                    cases[i].set[0][1], (int)st, msg);
        dcmc_dicom_info info;
        uint8_t *px = NULL, *back = NULL;
        size_t len = 0, blen = 0;
        CU_ASSERT_EQUAL(dcmc_dicom_read_pixels(tmp("j2k.dcm"), &info, &px, &len, msg, sizeof msg),
                        want);
        if (cases[i].says) {
            CU_ASSERT_PTR_NOT_NULL(strstr(msg, cases[i].says));
            CU_ASSERT_PTR_NULL(px);
            CU_ASSERT(access(tmp("x.dcm"), F_OK) != 0);
            continue;
        }
        CU_ASSERT_EQUAL(dcmc_dicom_decrypt(tmp("x.dcm"), tmp("d.dcm"), &key, 0, NULL, msg, sizeof msg),
                        DCMC_OK);
        CU_ASSERT_EQUAL(dcmc_dicom_read_pixels(tmp("d.dcm"), &info, &back, &blen, msg, sizeof msg),
                        DCMC_OK);
        CU_ASSERT(px && back && len == blen && memcmp(px, back, len) == 0);
        dcmc_free(px, len);
        dcmc_free(back, blen);
    }
    free(b);
    free(orig);
}

/* ---- streaming (docs/dicom.md, "Streaming") ---- */

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
    const int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* Files in the scratch directory whose names start with `prefix`. */
static int count_files(const char *prefix)
{
    int n = 0;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

/* pydicom_SC_rgb_small_odd_3x3 with its pad byte (the last byte of the file, after 27 bytes of
 * pixels) set: a tail that the protected bytes carry and decryption puts back. */
static const char *object_with_tail(void)
{
    size_t n = 0;
    uint8_t *b = slurp(sample("pydicom_SC_rgb_small_odd_3x3.dcm"), &n);
    CU_ASSERT_FATAL(b != NULL && n > 0 && b[n - 1] == 0);
    b[n - 1] = 0x5A;
    spit(tmp("tail.dcm"), b, n);
    free(b);
    return tmp("tail.dcm");
}

/* Streamed or whole, encryption and decryption write the same bytes, so either side reads the
 * other's output (same key, same nonce; every other input of the cipher is deterministic).
 * Which objects stream: native little endian images, canonical words, Bits Allocated 8 or more;
 * decryption also needs an original syntax written without a pixel encoder. */
static void test_streamed_same_as_whole(void)
{
    static const struct {
        const char *name;
        int enc, dec; /* streamed when allowed (verification streams every encrypted object of
                       * Bits Allocated 8 or more: they are all native) */
    } cases[] = {
        {"pydicom_CT_small_128x128.dcm", 1, 1},
        {"pydicom-data_emri_small_enhancedMR_10frames.dcm", 1, 1},
        {"pydicom_SC_rgb_small_odd_3x3.dcm", 1, 1},           /* an odd value: pad byte */
        {"pydicom_SC_ybr_full_422_uncompressed.dcm", 1, 1},   /* encrypted as gray */
        {"pydicom_rtdose_32bit_15frames.dcm", 1, 1},          /* implicit VR, written back so */
        {"dcm_qa_12bit_12bitSigned_0x0F0F.dcm", 0, 1},        /* a residue: encrypted whole */
        {"pydicom_MR_small_bigendian.dcm", 0, 1},             /* big endian in, and out */
        {"clunie_image_dfl_deflate_1.2.840.10008.1.2.1.99.dcm", 0, 1},
        {"highdicom_seg_image_ct_binary_overlap_1bit_8frames.dcm", 0, 0},
        {"dcm_qa_ts_7_JPEG-LS.dcm", 0, 0},                    /* JPEG-LS again: whole */
        {"dcm_qa_ts_4_RLE.dcm", 0, 0},
        {"dcm_qa_ts_9_J2K-lossless.dcm", 0, 1},               /* written native */
        {NULL, 1, 1},                                         /* object_with_tail */
    };
    static const uint8_t nonce[16] = {7, 1, 7, 2, 7, 3, 7, 4, 7, 5, 7, 6, 7, 7, 7, 8};
    dcmc_key key;
    uint8_t uk[32];
    test_key(&key, uk, 1);
    dcmc_options opt;
    dcmc_options_default(&opt);
    opt.nonce = nonce;
    char msg[DCMC_DICOM_MSG], sop[65];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *name = cases[i].name ? cases[i].name : "object with a tail";
        const char *in = cases[i].name ? sample(cases[i].name) : object_with_tail();
        dcmc_status st[4];
        int streamed[4];
        dcmci_dicom_stream_mode(1);
        st[0] = dcmc_dicom_encrypt(in, tmp("w.enc"), &key, NULL, uk, &opt, NULL, NULL, msg, sizeof msg);
        streamed[0] = dcmci_dicom_streamed();
        dcmci_dicom_stream_mode(2);
        st[1] = dcmc_dicom_encrypt(in, tmp("s.enc"), &key, NULL, uk, &opt, NULL, NULL, msg, sizeof msg);
        streamed[1] = dcmci_dicom_streamed();
        /* Each decryption reads the other path's encryption. */
        dcmci_dicom_stream_mode(1);
        st[2] = dcmc_dicom_decrypt(tmp("s.enc"), tmp("w.dec"), &key, 0, NULL, msg, sizeof msg);
        streamed[2] = dcmci_dicom_streamed();
        dcmci_dicom_stream_mode(2);
        st[3] = dcmc_dicom_decrypt(tmp("w.enc"), tmp("s.dec"), &key, 2, NULL, msg, sizeof msg);
        streamed[3] = dcmci_dicom_streamed();
        const int ok = st[0] == DCMC_OK && st[1] == DCMC_OK && st[2] == DCMC_OK && st[3] == DCMC_OK &&
                       !streamed[0] && streamed[1] == cases[i].enc && !streamed[2] &&
                       streamed[3] == cases[i].dec && same_file(tmp("w.enc"), tmp("s.enc")) &&
                       same_file(tmp("w.dec"), tmp("s.dec"));
        CU_ASSERT(ok);
        if (!ok)
            fprintf(stderr, "\n  %s: status %d %d %d %d, streamed %d %d %d %d, same %d %d (%s)", name,
                    st[0], st[1], st[2], st[3], streamed[0], streamed[1], streamed[2], streamed[3],
                    same_file(tmp("w.enc"), tmp("s.enc")), same_file(tmp("w.dec"), tmp("s.dec")), msg);
        CU_ASSERT_EQUAL(dcmc_dicom_verify(tmp("w.enc"), &key, sop, msg, sizeof msg), DCMC_OK);
        CU_ASSERT_EQUAL(dcmci_dicom_streamed(), strstr(name, "1bit") == NULL);
    }
    dcmci_dicom_stream_mode(0);
    CU_ASSERT_EQUAL(count_files(".dcmcrypt"), 0); /* no temporary left behind */
}

/* A streamed decryption refuses a wrong key, one changed bit in the last frame and a truncated
 * object like the whole one: a status, and nothing written. */
static void test_streamed_refusals(void)
{
    dcmc_key key, other;
    uint8_t uk[32], uk2[32];
    test_key(&key, uk, 1);
    test_key(&other, uk2, 2);
    char msg[DCMC_DICOM_MSG];
    dcmci_dicom_stream_mode(2);
    CU_ASSERT_EQUAL_FATAL(dcmc_dicom_encrypt(sample("pydicom-data_emri_small_enhancedMR_10frames.dcm"),
                                             tmp("e.dcm"), &key, NULL, uk, NULL, NULL, NULL, msg,
                                             sizeof msg),
                          DCMC_OK);
    CU_ASSERT(dcmci_dicom_streamed());
    unlink(tmp("d.dcm"));
    CU_ASSERT_EQUAL(dcmc_dicom_decrypt(tmp("e.dcm"), tmp("d.dcm"), &other, 0, NULL, msg, sizeof msg),
                    DCMC_ERR_WRONG_KEY);
    CU_ASSERT(access(tmp("d.dcm"), F_OK) != 0);
    size_t n = 0;
    uint8_t *b = slurp(tmp("e.dcm"), &n);
    CU_ASSERT_FATAL(b != NULL && n > 1000);
    b[n - 1] ^= 0x01; /* the Pixel Data is the last element: its last frame's last word */
    spit(tmp("t.dcm"), b, n);
    CU_ASSERT_EQUAL(dcmc_dicom_decrypt(tmp("t.dcm"), tmp("d.dcm"), &key, 0, NULL, msg, sizeof msg),
                    DCMC_ERR_INTEGRITY);
    CU_ASSERT(dcmci_dicom_streamed() == 0 && access(tmp("d.dcm"), F_OK) != 0);
    CU_ASSERT_EQUAL(dcmc_dicom_verify(tmp("t.dcm"), &key, NULL, msg, sizeof msg), DCMC_ERR_INTEGRITY);
    b[n - 1] ^= 0x01;
    for (size_t cut = n / 2; cut < n; cut += n / 23 + 1) {
        spit(tmp("t.dcm"), b, cut);
        dcmc_status st = dcmc_dicom_decrypt(tmp("t.dcm"), tmp("d.dcm"), &key, 0, NULL, msg, sizeof msg);
        CU_ASSERT_NOT_EQUAL(st, DCMC_OK);
        CU_ASSERT(msg[0] != '\0');
        CU_ASSERT(access(tmp("d.dcm"), F_OK) != 0);
    }
    dcmci_dicom_stream_mode(0);
    CU_ASSERT_EQUAL(count_files(".dcmcrypt"), 0);
    free(b);
}

/* Word k of frame f of the large test object: 12 bits, canonical. */
static uint16_t big_word(size_t k, uint32_t f)
{
    return (uint16_t)((k * 3 + (k / 512) * 5 + f * 7) % 4096);
}

/* A multi-frame secondary capture of `frames` 512x512 16-bit frames, written a frame at a time. */
static void write_big_object(const char *path, uint32_t frames)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    uint8_t h[1024];
    size_t n = 0;
    memset(h, 0, 128);
    memcpy(h + 128, "DICM", 4);
    n = 132;
#define STR(g, e, vr, str)                                                                      \
    do {                                                                                        \
        size_t l_ = strlen(str) + (strlen(str) & 1);                                            \
        h[n++] = (uint8_t)(g), h[n++] = (uint8_t)((g) >> 8), h[n++] = (uint8_t)(e),             \
        h[n++] = (uint8_t)((e) >> 8), h[n++] = (vr)[0], h[n++] = (vr)[1];                       \
        h[n++] = (uint8_t)l_, h[n++] = 0;                                                       \
        memset(h + n, (vr)[0] == 'U' ? 0 : ' ', l_);                                            \
        memcpy(h + n, str, strlen(str));                                                        \
        n += l_;                                                                                \
    } while (0)
#define US(e, v)                                                                                \
    do {                                                                                        \
        const uint8_t u_[10] = {0x28, 0, (uint8_t)(e), (uint8_t)((e) >> 8), 'U', 'S', 2, 0,    \
                                (uint8_t)(v), (uint8_t)((v) >> 8)};                             \
        memcpy(h + n, u_, 10);                                                                  \
        n += 10;                                                                                \
    } while (0)
    char nf[16];
    snprintf(nf, sizeof nf, "%u", (unsigned)frames);
    STR(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.7.3");
    STR(0x0002, 0x0003, "UI", "1.2.826.0.1.3680043.2.1125.77.1");
    STR(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1");
    STR(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.7.3");
    STR(0x0008, 0x0018, "UI", "1.2.826.0.1.3680043.2.1125.77.1");
    STR(0x0008, 0x0060, "CS", "OT");
    STR(0x0010, 0x0010, "PN", "Test^Streaming");
    STR(0x0010, 0x0020, "LO", "STREAM1");
    STR(0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.2.1125.77.2");
    STR(0x0020, 0x000E, "UI", "1.2.826.0.1.3680043.2.1125.77.3");
    US(0x0002, 1);
    STR(0x0028, 0x0004, "CS", "MONOCHROME2");
    STR(0x0028, 0x0008, "IS", nf);
    US(0x0010, 512);
    US(0x0011, 512);
    US(0x0100, 16);
    US(0x0101, 12);
    US(0x0102, 11);
    US(0x0103, 0);
#undef STR
#undef US
    const uint32_t len = frames * 512u * 512u * 2u;
    const uint8_t pix[12] = {0xE0, 0x7F, 0x10, 0x00, 'O', 'W', 0, 0, (uint8_t)len,
                             (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    memcpy(h + n, pix, sizeof pix);
    n += sizeof pix;
    CU_ASSERT_EQUAL(fwrite(h, 1, n, f), n);
    uint8_t *fr = malloc(512 * 512 * 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fr);
    for (uint32_t k = 0; k < frames; k++) {
        for (size_t j = 0; j < 512 * 512; j++) {
            fr[2 * j] = (uint8_t)big_word(j, k);
            fr[2 * j + 1] = (uint8_t)(big_word(j, k) >> 8);
        }
        CU_ASSERT_EQUAL(fwrite(fr, 1, 512 * 512 * 2, f), 512 * 512 * 2);
    }
    free(fr);
    CU_ASSERT_EQUAL(fclose(f), 0);
}

/* An object above the size where streaming starts (32 MB of frames) streams by itself, both
 * ways, and comes back exactly; the whole-object decryption of its encryption writes the same
 * file as the streamed one. */
static void test_streamed_large_object(void)
{
    const uint32_t frames = 65; /* 34 MB */
    dcmc_key key;
    uint8_t uk[32];
    test_key(&key, uk, 1);
    char msg[DCMC_DICOM_MSG];
    dcmc_dicom_info info;
    write_big_object(tmp("big.dcm"), frames);
    dcmci_dicom_stream_mode(0);
    CU_ASSERT_EQUAL(dcmc_dicom_encrypt(tmp("big.dcm"), tmp("big.enc"), &key, NULL, uk, NULL, NULL,
                                       &info, msg, sizeof msg),
                    DCMC_OK);
    CU_ASSERT(dcmci_dicom_streamed());
    CU_ASSERT(info.frames == frames && info.pixel_bytes == (uint64_t)frames * 512 * 512 * 2);
    CU_ASSERT_EQUAL(dcmc_dicom_decrypt(tmp("big.enc"), tmp("big.dec"), &key, 0, &info, msg,
                                       sizeof msg),
                    DCMC_OK);
    CU_ASSERT(dcmci_dicom_streamed());
    unlink(tmp("big.dcm"));
    uint8_t *px = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(dcmc_dicom_read_pixels(tmp("big.dec"), &info, &px, &len, msg, sizeof msg),
                          DCMC_OK);
    int exact = len == (size_t)frames * 512 * 512 * 2;
    for (size_t i = 0; exact && i < len / 2; i++)
        exact = (px[2 * i] | px[2 * i + 1] << 8) == big_word(i % (512 * 512), (uint32_t)(i / (512 * 512)));
    CU_ASSERT(exact);
    dcmc_free(px, len);
    dcmci_dicom_stream_mode(1);
    CU_ASSERT_EQUAL(dcmc_dicom_decrypt(tmp("big.enc"), tmp("big.whole"), &key, 0, NULL, msg,
                                       sizeof msg),
                    DCMC_OK);
    CU_ASSERT(!dcmci_dicom_streamed());
    dcmci_dicom_stream_mode(0);
    CU_ASSERT(same_file(tmp("big.dec"), tmp("big.whole")));
    unlink(tmp("big.enc"));
    unlink(tmp("big.dec"));
    unlink(tmp("big.whole"));
    CU_ASSERT_EQUAL(count_files(".dcmcrypt"), 0);
}


/* One parse per file (dcmc_dicom_open): the same answer as dcmc_dicom_probe and dcmc_dicom_peek,
 * conversions exact both ways, and a parse used up by its conversion. */
static void test_object_api(void)
{
    static const char *files[] = {
        "pydicom_CT_small_128x128.dcm", "pydicom-data_emri_small_enhancedMR_10frames.dcm",
        "dcm_qa_ts_9_J2K-lossless.dcm", "clunie_image_dfl_deflate_1.2.840.10008.1.2.1.99.dcm",
    };
    dcmc_key key;
    uint8_t uk[32];
    test_key(&key, uk, 9);
    char msg[DCMC_DICOM_MSG];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *in = sample(files[i]);
        dcmc_dicom_probe_info want, got;
        CU_ASSERT_EQUAL_FATAL(dcmc_dicom_probe(in, 0, &want, msg, sizeof msg), DCMC_OK);
        dcmc_dicom_object *obj = NULL;
        CU_ASSERT_EQUAL_FATAL(dcmc_dicom_open(in, &obj, &got, msg, sizeof msg), DCMC_OK);
        CU_ASSERT_EQUAL(got.kind, DCMC_DICOM_IMAGE);
        CU_ASSERT_STRING_EQUAL(got.sop_instance_uid, want.sop_instance_uid);
        dcmc_dicom_info info;
        CU_ASSERT_EQUAL(dcmc_dicom_object_encrypt(obj, tmp("oe.dcm"), &key, NULL, uk, NULL, NULL,
                                                  &info, msg, sizeof msg), DCMC_OK);
        msg[0] = '\0';
        CU_ASSERT_EQUAL(dcmc_dicom_object_encrypt(obj, tmp("oe2.dcm"), &key, NULL, uk, NULL, NULL,
                                                  &info, msg, sizeof msg), DCMC_ERR_ARG);
        CU_ASSERT(strstr(msg, "already converted") != NULL);
        dcmc_header h;
        CU_ASSERT_EQUAL(dcmc_dicom_object_peek(obj, &h, msg, sizeof msg), DCMC_ERR_ARG);
        CU_ASSERT_EQUAL(access(tmp("oe2.dcm"), F_OK), -1);
        dcmc_dicom_close(obj);

        dcmc_header hp, ho;
        CU_ASSERT_EQUAL_FATAL(dcmc_dicom_open(tmp("oe.dcm"), &obj, &got, msg, sizeof msg), DCMC_OK);
        CU_ASSERT_EQUAL(got.kind, DCMC_DICOM_ENCRYPTED);
        CU_ASSERT_EQUAL(dcmc_dicom_peek(tmp("oe.dcm"), &hp, msg, sizeof msg), DCMC_OK);
        CU_ASSERT_EQUAL(dcmc_dicom_object_peek(obj, &ho, msg, sizeof msg), DCMC_OK);
        CU_ASSERT(memcmp(hp.nonce, ho.nonce, sizeof hp.nonce) == 0 && hp.frames == ho.frames &&
                  memcmp(hp.mac, ho.mac, sizeof hp.mac) == 0);
        CU_ASSERT_EQUAL(dcmc_dicom_object_decrypt(obj, tmp("od.dcm"), &key, 0, &info, msg,
                                                  sizeof msg), DCMC_OK);
        CU_ASSERT_EQUAL(dcmc_dicom_object_decrypt(obj, tmp("od2.dcm"), &key, 0, &info, msg,
                                                  sizeof msg), DCMC_ERR_ARG);
        dcmc_dicom_close(obj);
        uint8_t *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        dcmc_dicom_info ia, ib;
        CU_ASSERT_EQUAL(dcmc_dicom_read_pixels(in, &ia, &a, &al, msg, sizeof msg), DCMC_OK);
        CU_ASSERT_EQUAL(dcmc_dicom_read_pixels(tmp("od.dcm"), &ib, &b, &bl, msg, sizeof msg),
                        DCMC_OK);
        CU_ASSERT(al == bl && a && b && memcmp(a, b, al) == 0);
        dcmc_free(a, al);
        dcmc_free(b, bl);
    }
    /* Not DICOM: an error and no object. */
    spit(tmp("junk.dcm"), (const uint8_t *)"not a DICOM object at all", 25);
    dcmc_dicom_object *obj = (dcmc_dicom_object *)&key;
    dcmc_dicom_probe_info pi;
    CU_ASSERT_NOT_EQUAL(dcmc_dicom_open(tmp("junk.dcm"), &obj, &pi, msg, sizeof msg), DCMC_OK);
    CU_ASSERT_PTR_NULL(obj);
    dcmc_dicom_close(NULL);
    CU_ASSERT_EQUAL(dcmc_dicom_object_peek(NULL, NULL, msg, sizeof msg), DCMC_ERR_ARG);
    /* An encrypted object encrypted again, and an image decrypted: the usual refusals. */
    CU_ASSERT_EQUAL_FATAL(dcmc_dicom_open(tmp("oe.dcm"), &obj, &pi, msg, sizeof msg), DCMC_OK);
    dcmc_dicom_info info;
    CU_ASSERT_EQUAL(dcmc_dicom_object_encrypt(obj, tmp("oe3.dcm"), &key, NULL, uk, NULL, NULL,
                                              &info, msg, sizeof msg), DCMC_ERR_ALREADY_ENCRYPTED);
    dcmc_dicom_close(obj);
    CU_ASSERT_EQUAL_FATAL(dcmc_dicom_open(sample(files[0]), &obj, &pi, msg, sizeof msg), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_dicom_object_decrypt(obj, tmp("od3.dcm"), &key, 0, &info, msg, sizeof msg),
                    DCMC_ERR_NOT_ENCRYPTED);
    dcmc_dicom_close(obj);
}

int dcmc_test_register_dicom(void)
{
    static const dcmc_test_case cases[] = {
        {"round trip of every sample layout and transfer syntax", test_roundtrip_samples},
        {"new UIDs, same for the same key; marker; private block", test_uids_and_marker},
        {"wrong key, tampering and truncation", test_wrong_key_and_tampering},
        {"truncated, float, missing, junk and pixel-less inputs refused", test_refused_inputs},
        {"full disk and missing directory", test_unwritable_output},
        {"exceptions: refusals, out of memory, parse failures, bugs", test_exception_mapping},
        {"JPEG 2000 codestream that disagrees with the attributes", test_j2k_mismatch},
        {"streamed and whole: the same files, either reads the other's", test_streamed_same_as_whole},
        {"streamed decryption: wrong key, tampering, truncation", test_streamed_refusals},
        {"a 34 MB object streams both ways, exactly", test_streamed_large_object},
        {"one parse per file: open, peek, convert, used up", test_object_api},
        {NULL, NULL},
    };
    CU_pSuite s = CU_add_suite("dicom", suite_init, suite_clean);
    if (!s)
        return -1;
    for (const dcmc_test_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn))
            return -1;
    return 0;
}
