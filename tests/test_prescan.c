/*
 * test_prescan.c - the nesting pre-scan (dicom/prescan.h) on files built here byte by byte in
 * every encoding DCMTK reads (explicit and implicit VR, both byte orders, deflate, no preamble
 * and no meta group, UN, encapsulated pixel data), on hostile ones (10,000 and 100,000 levels,
 * truncation, absurd lengths, garbage, readings that depend on DCMTK's dictionary), and on every
 * sample file, where its depth is compared with the depth DCMTK itself builds: never less.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "prescan.h"
#include "test_common.h"

/* tests/prescan_dcmtk.cc: the depth of what DCMTK loads; -1 when it does not load the file. */
int dcmc_test_dcmtk_depth(const char *path, unsigned *depth);

static char g_dir[64];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int suite_init(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/dcmc-prescan-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int suite_clean(void)
{
    return nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- building files ----------------------------------------------------------------------- */

/* Encodings, as bits: explicit VR, big endian. */
enum { IMPL_LE = 0, EXPL_LE = 1, IMPL_BE = 2, EXPL_BE = 3 };

#define TS_IMPLICIT "1.2.840.10008.1.2"
#define TS_EXPLICIT "1.2.840.10008.1.2.1"
#define TS_BIG "1.2.840.10008.1.2.2"
#define TS_DEFLATED "1.2.840.10008.1.2.1.99"
#define TS_JPEG "1.2.840.10008.1.2.4.50"
#define UNDEF 0xFFFFFFFFu

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_bytes(bytes *b, const bytes *c)
{
    put(b, c->p, c->n);
}

static void u16(bytes *b, unsigned v, int big)
{
    uint8_t x[2] = {(uint8_t)(big ? v >> 8 : v), (uint8_t)(big ? v : v >> 8)};
    put(b, x, 2);
}

static void u32(bytes *b, uint32_t v, int big)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[big ? 3 - i : i] = (uint8_t)(v >> (8 * i));
    put(b, x, 4);
}

static int long_vr(const char *vr)
{
    static const char *const l[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                    "SV", "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (memcmp(vr, l[i], 2) == 0)
            return 1;
    return 0;
}

/* An element header; vr is ignored in implicit VR. */
static void hdr(bytes *b, int enc, unsigned g, unsigned e, const char *vr, uint32_t len)
{
    int big = enc & 2;
    u16(b, g, big);
    u16(b, e, big);
    if (!(enc & 1)) {
        u32(b, len, big);
    } else if (long_vr(vr)) {
        put(b, vr, 2);
        u16(b, 0, big);
        u32(b, len, big);
    } else {
        put(b, vr, 2);
        u16(b, len, big);
    }
}

static void elem(bytes *b, int enc, unsigned g, unsigned e, const char *vr, const void *v,
                 uint32_t len)
{
    hdr(b, enc, g, e, vr, len);
    put(b, v, len);
}

static void elem_us(bytes *b, int enc, unsigned g, unsigned e, unsigned v)
{
    hdr(b, enc, g, e, "US", 2);
    u16(b, v, enc & 2);
}

static void elem_ui(bytes *b, int enc, unsigned g, unsigned e, const char *uid)
{
    size_t n = strlen(uid);
    hdr(b, enc, g, e, "UI", (uint32_t)(n + (n & 1)));
    put(b, uid, n);
    if (n & 1)
        put(b, "", 1);
}

static void delim(bytes *b, int enc, unsigned e, uint32_t len)
{
    u16(b, 0xFFFE, enc & 2);
    u16(b, e, enc & 2);
    u32(b, len, enc & 2);
}

static void item_hdr(bytes *b, int enc, uint32_t len)
{
    delim(b, enc, 0xE000, len);
}

/* Preamble, "DICM" and the meta group (explicit VR little endian, with its group length). */
static void meta(bytes *b, const char *ts)
{
    bytes g = {0};
    elem(&g, EXPL_LE, 0x0002, 0x0001, "OB", "\0\1", 2);
    elem_ui(&g, EXPL_LE, 0x0002, 0x0002, "1.2.840.10008.5.1.4.1.1.2");
    elem_ui(&g, EXPL_LE, 0x0002, 0x0003, "1.2.826.0.1.3680043.10.1234.7");
    elem_ui(&g, EXPL_LE, 0x0002, 0x0010, ts);
    static const uint8_t zero[128];
    put(b, zero, sizeof zero);
    put(b, "DICM", 4);
    hdr(b, EXPL_LE, 0x0002, 0x0000, "UL", 4);
    u32(b, (uint32_t)g.n, 0);
    put_bytes(b, &g);
    free(g.p);
}

/* A few attributes of a small image, as the data set starts. */
static void attrs(bytes *b, int enc)
{
    elem_ui(b, enc, 0x0008, 0x0016, "1.2.840.10008.5.1.4.1.1.2");
    elem_ui(b, enc, 0x0008, 0x0018, "1.2.826.0.1.3680043.10.1234.7");
    elem_us(b, enc, 0x0028, 0x0002, 1);
    elem_us(b, enc, 0x0028, 0x0010, 2);
    elem_us(b, enc, 0x0028, 0x0011, 2);
    elem_us(b, enc, 0x0028, 0x0100, 16);
    elem_us(b, enc, 0x0028, 0x0101, 12);
}

static void pixels(bytes *b, int enc)
{
    static const uint8_t px[8] = {1, 0, 2, 0, 3, 0, 4, 0};
    elem(b, enc, 0x7FE0, 0x0010, "OW", px, sizeof px);
}

/* `levels` nested undefined-length sequences (tag `e` of group 0008: Referenced Image Sequence
 * unless said otherwise), one item each, the innermost item holding one US element. Siblings
 * get different tags: DCMTK drops the second of two equal tags (after reading it). */
static void nest_undefined_tag(bytes *b, int enc, unsigned levels, unsigned e)
{
    for (unsigned i = 0; i < levels; i++) {
        hdr(b, enc, 0x0008, e, "SQ", UNDEF);
        item_hdr(b, enc, UNDEF);
    }
    elem_us(b, enc, 0x0028, 0x0010, 7);
    for (unsigned i = 0; i < levels; i++) {
        delim(b, enc, 0xE00D, 0);
        delim(b, enc, 0xE0DD, 0);
    }
}

static void nest_undefined(bytes *b, int enc, unsigned levels)
{
    nest_undefined_tag(b, enc, levels, 0x1140);
}

/* The same with defined lengths (Referenced Series Sequence), built from the inside out. */
static void nest_defined(bytes *b, int enc, unsigned levels)
{
    bytes in = {0};
    elem_us(&in, enc, 0x0028, 0x0010, 7);
    for (unsigned i = 0; i < levels; i++) {
        bytes out = {0};
        hdr(&out, enc, 0x0008, 0x1115, "SQ", (uint32_t)(in.n + 8));
        item_hdr(&out, enc, (uint32_t)in.n);
        put_bytes(&out, &in);
        free(in.p);
        in = out;
    }
    put_bytes(b, &in);
    free(in.p);
}

static const char *save(const char *name, bytes *b)
{
    const char *p = tmp(name);
    FILE *f = fopen(p, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (b->n) /* an empty file: no buffer at all, and fwrite's pointer must not be null */
        CU_ASSERT_EQUAL(fwrite(b->p, 1, b->n, f), b->n);
    CU_ASSERT_EQUAL(fclose(f), 0);
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

static void raw_deflate(bytes *out, const bytes *in)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    CU_ASSERT_EQUAL_FATAL(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    uLong cap = deflateBound(&z, in->n);
    uint8_t *buf = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    z.next_in = in->p;
    z.avail_in = (uInt)in->n;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    CU_ASSERT_EQUAL(deflate(&z, Z_FINISH), Z_STREAM_END);
    put(out, buf, z.total_out);
    deflateEnd(&z);
    free(buf);
}

/* ---- checking ----------------------------------------------------------------------------- */

static unsigned scan(const char *path, unsigned stop_at)
{
    unsigned d = 12345;
    int rc = dcmci_prescan_depth(path, stop_at, &d);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        fprintf(stderr, "prescan %s: %s\n", path, strerror(errno));
    return d;
}

/* Depth `want` whatever the limit above it, stop_at + 1 below it, and never less than what
 * DCMTK builds when it loads the file (only for shallow files: deep ones crash DCMTK). */
static void expect(const char *path, unsigned want)
{
    CU_ASSERT_EQUAL(scan(path, 64), want);
    CU_ASSERT_EQUAL(scan(path, UINT_MAX), want);
    if (want > 0)
        CU_ASSERT_EQUAL(scan(path, want - 1), want);
    CU_ASSERT_EQUAL(scan(path, want), want);
    unsigned dd;
    int loaded = want <= 12 && dcmc_test_dcmtk_depth(path, &dd) == 0;
    if (loaded) {
        CU_ASSERT(dd <= want);
        if (dd > want)
            fprintf(stderr, "%s: DCMTK depth %u > prescan %u\n", path, dd, want);
    }
    if (getenv("DCMC_PRESCAN_REPORT")) {
        if (loaded)
            printf("  %u (DCMTK %u) %s\n", want, dd, path);
        else
            printf("  %u (DCMTK does not load it) %s\n", want, path);
    }
}

/* ---- cases -------------------------------------------------------------------------------- */

static void test_explicit_le(void)
{
    bytes b = {0};
    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    nest_defined(&b, EXPL_LE, 3);
    pixels(&b, EXPL_LE);
    expect(save("expl-defined.dcm", &b), 3);

    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    nest_undefined(&b, EXPL_LE, 3);
    pixels(&b, EXPL_LE);
    expect(save("expl-undefined.dcm", &b), 3);

    /* Two sibling sequences and a shallower one after the deepest: the maximum counts. */
    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    nest_undefined(&b, EXPL_LE, 2);
    nest_defined(&b, EXPL_LE, 4);
    nest_undefined_tag(&b, EXPL_LE, 1, 0x1250); /* Related Series Sequence */
    pixels(&b, EXPL_LE);
    expect(save("expl-siblings.dcm", &b), 4);

    /* No sequence at all; an empty sequence is a level. */
    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    pixels(&b, EXPL_LE);
    expect(save("expl-flat.dcm", &b), 0);
    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    hdr(&b, EXPL_LE, 0x0008, 0x1140, "SQ", 0);
    pixels(&b, EXPL_LE);
    expect(save("expl-empty-sq.dcm", &b), 1);
}

static void test_implicit_le(void)
{
    bytes b = {0};
    meta(&b, TS_IMPLICIT);
    attrs(&b, IMPL_LE);
    nest_undefined(&b, IMPL_LE, 3);
    pixels(&b, IMPL_LE);
    expect(save("impl-undefined.dcm", &b), 3);

    /* Defined lengths: no VR to say SQ, the first tag of the value (an item) does. */
    meta(&b, TS_IMPLICIT);
    attrs(&b, IMPL_LE);
    nest_defined(&b, IMPL_LE, 3);
    pixels(&b, IMPL_LE);
    expect(save("impl-defined.dcm", &b), 3);
}

static void test_big_endian(void)
{
    bytes b = {0};
    meta(&b, TS_BIG);
    attrs(&b, EXPL_BE);
    nest_undefined(&b, EXPL_BE, 3);
    pixels(&b, EXPL_BE);
    expect(save("big-undefined.dcm", &b), 3);

    meta(&b, TS_BIG);
    attrs(&b, EXPL_BE);
    nest_defined(&b, EXPL_BE, 3);
    pixels(&b, EXPL_BE);
    expect(save("big-defined.dcm", &b), 3);
}

static void test_deflated(void)
{
    bytes ds = {0}, b = {0};
    attrs(&ds, EXPL_LE);
    nest_undefined(&ds, EXPL_LE, 2);
    nest_defined(&ds, EXPL_LE, 3);
    pixels(&ds, EXPL_LE);
    meta(&b, TS_DEFLATED);
    raw_deflate(&b, &ds);
    free(ds.p);
    expect(save("deflated.dcm", &b), 3);

    /* 16 MB of a private value before the sequences: skipped by inflating and discarding. */
    ds = (bytes){0};
    attrs(&ds, EXPL_LE);
    size_t big = 16u << 20;
    uint8_t *zeros = calloc(1, big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(zeros);
    elem(&ds, EXPL_LE, 0x0009, 0x1010, "OB", zeros, (uint32_t)big);
    free(zeros);
    nest_undefined(&ds, EXPL_LE, 5);
    meta(&b, TS_DEFLATED);
    raw_deflate(&b, &ds);
    free(ds.p);
    CU_ASSERT(b.n < 100000);
    expect(save("deflated-long-value.dcm", &b), 5);
}

/* UN with undefined length: DCMTK reads its items in implicit VR little endian (CP-246), where
 * undefined lengths and values starting with an item are sequences. */
static void test_un(void)
{
    bytes b = {0}, inner = {0};
    /* innermost: an implicit VR defined-length sequence holding one item */
    elem_us(&inner, IMPL_LE, 0x0028, 0x0010, 7);
    bytes sq3 = {0};
    hdr(&sq3, IMPL_LE, 0x0008, 0x1140, NULL, (uint32_t)(inner.n + 8));
    item_hdr(&sq3, IMPL_LE, (uint32_t)inner.n);
    put_bytes(&sq3, &inner);
    free(inner.p);

    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    elem(&b, EXPL_LE, 0x0009, 0x0010, "LO", "DCMCRYPT TEST", 14);
    hdr(&b, EXPL_LE, 0x0009, 0x1010, "UN", UNDEF);  /* level 1 */
    item_hdr(&b, IMPL_LE, UNDEF);
    hdr(&b, IMPL_LE, 0x0008, 0x1115, NULL, UNDEF); /* level 2 */
    item_hdr(&b, IMPL_LE, UNDEF);
    put_bytes(&b, &sq3); /* level 3 */
    delim(&b, IMPL_LE, 0xE00D, 0);
    delim(&b, IMPL_LE, 0xE0DD, 0);
    delim(&b, IMPL_LE, 0xE00D, 0);
    delim(&b, IMPL_LE, 0xE0DD, 0);
    pixels(&b, EXPL_LE);
    expect(save("un-undefined.dcm", &b), 3);

    /* UN with a defined length that holds items: a sequence if DCMTK's dictionary says so (and
     * UN conversion is on); counted. */
    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    hdr(&b, EXPL_LE, 0x0008, 0x1140, "UN", (uint32_t)sq3.n - 8);
    put(&b, sq3.p + 8, sq3.n - 8); /* item + element */
    pixels(&b, EXPL_LE);
    expect(save("un-defined.dcm", &b), 1);
    free(sq3.p);
}

/* Encapsulated Pixel Data: fragments are not data sets, whatever they look like. */
static void test_encapsulated(void)
{
    bytes frag = {0}, b = {0};
    nest_undefined(&frag, EXPL_LE, 20); /* looks like 20 levels: it is JPEG data here */
    meta(&b, TS_JPEG);
    attrs(&b, EXPL_LE);
    hdr(&b, EXPL_LE, 0x7FE0, 0x0010, "OB", UNDEF);
    item_hdr(&b, EXPL_LE, 0); /* basic offset table */
    item_hdr(&b, EXPL_LE, (uint32_t)frag.n);
    put_bytes(&b, &frag);
    item_hdr(&b, EXPL_LE, 4);
    put(&b, "\xFF\xD8\xFF\xD9", 4);
    delim(&b, EXPL_LE, 0xE0DD, 0);
    expect(save("encapsulated.dcm", &b), 0);

    /* An undefined-length OB that is not Pixel Data: an error to DCMTK, or a private pixel
     * sequence. Its items are scanned as data sets where they parse (counted) and skipped as
     * fragments where they do not; what follows is still scanned. */
    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    hdr(&b, EXPL_LE, 0x0009, 0x1010, "OB", UNDEF);
    item_hdr(&b, EXPL_LE, 16);
    put(&b, "\x01\x02\x03\x04\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF\x09\x0A\x0B\x0C", 16);
    bytes two = {0};
    nest_undefined(&two, EXPL_LE, 2);
    item_hdr(&b, EXPL_LE, (uint32_t)two.n);
    put_bytes(&b, &two);
    free(two.p);
    delim(&b, EXPL_LE, 0xE0DD, 0);
    nest_undefined(&b, EXPL_LE, 4);
    pixels(&b, EXPL_LE);
    expect(save("ob-undefined.dcm", &b), 4);
    free(frag.p);
}

/* What the fix is for: far deeper than any stack, found quickly, without recursion. */
static void test_deep(void)
{
    static const int encs[] = {EXPL_LE, IMPL_LE};
    for (int k = 0; k < 2; k++) {
        bytes b = {0};
        meta(&b, encs[k] == IMPL_LE ? TS_IMPLICIT : TS_EXPLICIT);
        attrs(&b, encs[k]);
        nest_undefined(&b, encs[k], 10000);
        pixels(&b, encs[k]);
        const char *p = save(encs[k] == IMPL_LE ? "deep-impl.dcm" : "deep-expl.dcm", &b);
        double t0 = now_s();
        CU_ASSERT_EQUAL(scan(p, 64), 65);
        CU_ASSERT(now_s() - t0 < 0.5);
        CU_ASSERT_EQUAL(scan(p, UINT_MAX), 10000);
        CU_ASSERT_EQUAL(scan(p, 9999), 10000);
        CU_ASSERT_EQUAL(scan(p, 10000), 10000);
        CU_ASSERT_EQUAL(scan(p, 0), 1);
    }
    /* deflated: 100,000 levels in a few KB */
    bytes ds = {0}, b = {0};
    attrs(&ds, EXPL_LE);
    nest_undefined(&ds, EXPL_LE, 100000);
    pixels(&ds, EXPL_LE);
    meta(&b, TS_DEFLATED);
    raw_deflate(&b, &ds);
    free(ds.p);
    const char *p = save("deep-deflated.dcm", &b);
    double t0 = now_s();
    CU_ASSERT_EQUAL(scan(p, 64), 65);
    CU_ASSERT(now_s() - t0 < 0.5);
    CU_ASSERT_EQUAL(scan(p, UINT_MAX), 100000);
}

/* Files without preamble and meta group (ACR-NEMA style): DCMTK guesses the encoding. */
static void test_no_meta(void)
{
    static const struct {
        int enc;
        const char *name;
    } v[] = {{IMPL_LE, "nometa-impl-le.dcm"}, {EXPL_LE, "nometa-expl-le.dcm"},
             {EXPL_BE, "nometa-expl-be.dcm"}, {IMPL_BE, "nometa-impl-be.dcm"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        bytes b = {0};
        attrs(&b, v[i].enc);
        nest_undefined(&b, v[i].enc, 2);
        nest_defined(&b, v[i].enc, 3);
        pixels(&b, v[i].enc);
        expect(save(v[i].name, &b), 3);
    }
    /* a preamble and "DICM" but no meta group */
    bytes b = {0};
    static const uint8_t zero[128];
    put(&b, zero, sizeof zero);
    put(&b, "DICM", 4);
    attrs(&b, IMPL_LE);
    nest_undefined(&b, IMPL_LE, 2);
    expect(save("preamble-no-meta.dcm", &b), 2);
}

/* Cut inside the nesting: the depth reached, no error. */
static void test_truncated(void)
{
    bytes b = {0};
    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    for (int i = 0; i < 6; i++) {
        hdr(&b, EXPL_LE, 0x0008, 0x1140, "SQ", UNDEF);
        item_hdr(&b, EXPL_LE, UNDEF);
    }
    elem_us(&b, EXPL_LE, 0x0028, 0x0010, 7);
    size_t whole = b.n;
    bytes c = {0};
    put(&c, b.p, whole);
    CU_ASSERT_EQUAL(scan(save("trunc-6.dcm", &c), 64), 6);
    put(&c, b.p, whole - 23); /* inside the sixth sequence's header */
    CU_ASSERT_EQUAL(scan(save("trunc-5.dcm", &c), 64), 5);
    free(b.p);
    b = (bytes){0};

    /* defined lengths that promise more than the file holds */
    meta(&b, TS_IMPLICIT);
    attrs(&b, IMPL_LE);
    nest_defined(&b, IMPL_LE, 4);
    b.n -= 6;
    CU_ASSERT_EQUAL(scan(save("trunc-defined.dcm", &b), 64), 4);

    /* the meta group cut short, an empty file, a few bytes */
    meta(&b, TS_EXPLICIT);
    b.n -= 10;
    CU_ASSERT_EQUAL(scan(save("trunc-meta.dcm", &b), 64), 0);
    CU_ASSERT_EQUAL(scan(save("empty.dcm", &b), 64), 0);
    put(&b, "\x08\x00", 2);
    CU_ASSERT_EQUAL(scan(save("two-bytes.dcm", &b), 64), 0);
}

/* Lengths near 4 GiB, garbage, and a 500 MB value: statuses, never a crash, never a read of
 * the value. */
static void test_hostile_lengths(void)
{
    bytes b = {0};
    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    hdr(&b, EXPL_LE, 0x0009, 0x1010, "OB", 0xFFFFFFF0u);
    put(&b, "abcd", 4);
    CU_ASSERT_EQUAL(scan(save("huge-ob.dcm", &b), 64), 0);

    meta(&b, TS_IMPLICIT);
    attrs(&b, IMPL_LE);
    hdr(&b, IMPL_LE, 0x0009, 0x1010, NULL, 0xFFFFFFF0u);
    item_hdr(&b, IMPL_LE, 0xFFFFFFF0u); /* looks like a sequence with a huge item */
    elem_us(&b, IMPL_LE, 0x0028, 0x0010, 7);
    CU_ASSERT_EQUAL(scan(save("huge-implicit.dcm", &b), 64), 1);

    meta(&b, TS_EXPLICIT);
    attrs(&b, EXPL_LE);
    hdr(&b, EXPL_LE, 0x0008, 0x1140, "SQ", 0xFFFFFFF0u);
    item_hdr(&b, EXPL_LE, 0xFFFFFFF0u);
    hdr(&b, EXPL_LE, 0x0008, 0x1140, "SQ", 0xFFFFFFF0u);
    CU_ASSERT_EQUAL(scan(save("huge-sq.dcm", &b), 64), 2);

    /* pixel sequences with huge and undefined fragments */
    meta(&b, TS_JPEG);
    attrs(&b, EXPL_LE);
    hdr(&b, EXPL_LE, 0x7FE0, 0x0010, "OB", UNDEF);
    item_hdr(&b, EXPL_LE, UNDEF);
    item_hdr(&b, EXPL_LE, 0xFFFFFFF0u);
    CU_ASSERT_EQUAL(scan(save("huge-fragment.dcm", &b), 64), 0);

    /* a meta group length that wraps DCMTK's 32-bit arithmetic */
    static const uint8_t zero[128];
    put(&b, zero, sizeof zero);
    put(&b, "DICM", 4);
    hdr(&b, EXPL_LE, 0x0002, 0x0000, "UL", 4);
    u32(&b, 0xFFFFFFF3u, 0);
    elem_ui(&b, EXPL_LE, 0x0002, 0x0010, TS_EXPLICIT);
    nest_undefined(&b, EXPL_LE, 2);
    CU_ASSERT(scan(save("meta-wrap.dcm", &b), 64) >= 2);

    /* garbage, with and without a preamble */
    dcmc_test_rng r = {0x5eed};
    for (int k = 0; k < 8; k++) {
        if (k & 1) {
            put(&b, zero, sizeof zero);
            put(&b, "DICM\x02\x00\x00\x00UL", 10);
        }
        for (int i = 0; i < 8192; i++) {
            uint64_t x = dcmc_test_next(&r);
            /* sprinkle item and sequence tags and undefined lengths */
            if (i % 7 == 0)
                x = (x & 0xFFFF000000000000ull) | 0xFFFFFFFFE000FFFEull;
            put(&b, &x, 8);
        }
        char name[32];
        snprintf(name, sizeof name, "garbage-%d.dcm", k);
        double t0 = now_s();
        unsigned d = scan(save(name, &b), 64);
        CU_ASSERT(d <= 65);
        CU_ASSERT(now_s() - t0 < 1.0);
    }

    /* a 500 MB Pixel Data value, sparse on disk: skipped, not read */
    static const int encs[] = {EXPL_LE, IMPL_LE};
    for (int k = 0; k < 2; k++) {
        meta(&b, encs[k] == IMPL_LE ? TS_IMPLICIT : TS_EXPLICIT);
        attrs(&b, encs[k]);
        nest_undefined(&b, encs[k], 2);
        uint32_t len = 500u << 20;
        hdr(&b, encs[k], 0x7FE0, 0x0010, "OW", len);
        off_t total = (off_t)b.n + len;
        const char *p = save(k ? "big-impl.dcm" : "big-expl.dcm", &b);
        CU_ASSERT_EQUAL(truncate(p, total), 0);
        double t0 = now_s();
        CU_ASSERT_EQUAL(scan(p, 64), 2);
        CU_ASSERT(now_s() - t0 < 0.1);
        CU_ASSERT_EQUAL(remove(p), 0);
    }
}

/* Where DCMTK's reading depends on its dictionary, every reading is scanned. */
static void test_dictionary_readings(void)
{
    /* Implicit VR, Referenced Series Sequence with a defined length whose value starts with a
     * sequence delimiter: DCMTK (SQ in its dictionary) ends the sequence there and reads the
     * rest of the value as elements of the data set: here 5 more levels. */
    bytes b = {0}, rest = {0};
    delim(&rest, IMPL_LE, 0xE0DD, 0);
    nest_undefined(&rest, IMPL_LE, 5);
    meta(&b, TS_IMPLICIT);
    attrs(&b, IMPL_LE);
    hdr(&b, IMPL_LE, 0x0008, 0x1115, NULL, (uint32_t)rest.n);
    put_bytes(&b, &rest);
    free(rest.p);
    pixels(&b, IMPL_LE);
    expect(save("early-seqdelim.dcm", &b), 5);

    /* A defined-length value starting with an item whose content is not a data set: if it is a
     * plain value to DCMTK, the scan goes on after it. */
    meta(&b, TS_IMPLICIT);
    attrs(&b, IMPL_LE);
    hdr(&b, IMPL_LE, 0x0009, 0x1010, NULL, 16);
    item_hdr(&b, IMPL_LE, 8);
    put(&b, "\xFE\xFF\xDD\xE0\x01\x02\x03\x04", 8); /* a sequence delimiter inside an item */
    nest_undefined(&b, IMPL_LE, 3);
    expect(save("plain-value-with-item.dcm", &b), 3);

    /* A Transfer Syntax UID of padding only is "Virtual Big Endian Implicit" to DCMTK (its
     * UID is ""), even when the data set looks explicit: here the first element is a sequence
     * whose big endian length starts with the bytes "OB". */
    static const uint8_t zero[128];
    put(&b, zero, sizeof zero);
    put(&b, "DICM", 4);
    hdr(&b, EXPL_LE, 0x0002, 0x0000, "UL", 4);
    u32(&b, 10, 0);
    elem(&b, EXPL_LE, 0x0002, 0x0010, "UI", "  ", 2);
    size_t first = b.n;
    hdr(&b, IMPL_BE, 0x0008, 0x1140, NULL, 0x4F420010u);
    CU_ASSERT(memcmp(b.p + first + 4, "OB", 2) == 0); /* a standard VR to DCMTK's guess */
    item_hdr(&b, IMPL_BE, UNDEF);
    nest_undefined_tag(&b, IMPL_BE, 2, 0x1115);
    delim(&b, IMPL_BE, 0xE00D, 0);
    CU_ASSERT_EQUAL(scan(save("ts-padding.dcm", &b), 64), 3);

    /* A sequence inside the meta group: DCMTK reads the meta group like any item. */
    bytes g = {0};
    elem_ui(&g, EXPL_LE, 0x0002, 0x0010, TS_EXPLICIT);
    nest_undefined(&g, EXPL_LE, 2);
    put(&b, zero, sizeof zero);
    put(&b, "DICM", 4);
    hdr(&b, EXPL_LE, 0x0002, 0x0000, "UL", 4);
    u32(&b, (uint32_t)g.n, 0);
    put_bytes(&b, &g);
    free(g.p);
    attrs(&b, EXPL_LE);
    nest_undefined(&b, EXPL_LE, 1);
    expect(save("meta-sequence.dcm", &b), 2);
}

static void test_errors(void)
{
    unsigned d = 7;
    errno = 0;
    CU_ASSERT_EQUAL(dcmci_prescan_depth(tmp("does-not-exist.dcm"), 64, &d), -1);
    CU_ASSERT_EQUAL(errno, ENOENT);
    errno = 0;
    CU_ASSERT_EQUAL(dcmci_prescan_depth(g_dir, 64, &d), -1); /* a directory: cannot be read */
    CU_ASSERT_EQUAL(errno, EISDIR);
    errno = 0;
    CU_ASSERT_EQUAL(dcmci_prescan_depth(NULL, 64, &d), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(dcmci_prescan_depth(tmp("x"), 64, NULL), -1);
}

/* The regression files of tests/hostile/make_hostile.py. */
static void test_make_hostile(void)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        return;
    char cmd[1024], dir[512];
    snprintf(dir, sizeof dir, "%s/hostile", g_dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s",
             dcmc_test_path("tests/hostile/make_hostile.py"), dir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    static const struct {
        const char *name;
        unsigned levels;
    } f[] = {{"nested-10000.dcm", 10000},
             {"nested-10000-implicit.dcm", 10000},
             {"nested-deflated.dcm", 100000}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, f[i].name);
        CU_ASSERT_EQUAL(scan(p, 64), 65);
        CU_ASSERT_EQUAL(scan(p, UINT_MAX), f[i].levels);
    }
}

/* ---- the sample files, against DCMTK ------------------------------------------------------ */

static unsigned g_files, g_loaded, g_dirs;

static int visit(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    if (flag != FTW_F)
        return 0;
    const char *base = p + ftw->base;
    size_t n = strlen(base);
    if (strstr(p, "/sample-data/dicom/") && (n < 4 || strcmp(base + n - 4, ".dcm") != 0))
        return 0;
    unsigned d = scan(p, 64), dd = 0;
    g_files++;
    CU_ASSERT(d <= 12);
    if (strncmp(base, "DICOMDIR", 8) == 0) {
        g_dirs++;
        CU_ASSERT(d >= 1);
    }
    if (dcmc_test_dcmtk_depth(p, &dd) == 0) {
        g_loaded++;
        CU_ASSERT(d >= dd);
        if (d < dd)
            fprintf(stderr, "%s: prescan %u < DCMTK %u\n", p, d, dd);
    }
    if (getenv("DCMC_PRESCAN_REPORT"))
        printf("  %u (DCMTK %u) %s\n", d, dd, p + strlen(dcmc_test_source_dir()) + 1);
    return 0;
}

static void test_samples(void)
{
    g_files = g_loaded = g_dirs = 0;
    CU_ASSERT_EQUAL(nftw(dcmc_test_path("sample-data/dicom"), visit, 16, FTW_PHYS), 0);
    CU_ASSERT(g_files >= 16);
    CU_ASSERT_EQUAL(nftw(dcmc_test_path("sample-data/study-tree"), visit, 16, FTW_PHYS), 0);
    CU_ASSERT(g_files >= 100);
    CU_ASSERT(g_dirs >= 2);
    CU_ASSERT(g_loaded + 1 >= g_files); /* all but pydicom_MR_truncated.dcm load */
}

/* A DICOMDIR whose Directory Record Type has two over-long components made DCMTK 3.6.7 throw
 * out of its parser and leak (a fuzzing finding, tests/fuzz/regressions): the scan flags it, and
 * nothing in the real DICOMDIRs. */
static void test_record_type(void)
{
    dcmci_prescan_result r;
    CU_ASSERT_EQUAL_FATAL(dcmci_prescan(DCMC_SOURCE_DIR
                                       "/tests/fuzz/regressions/fuzz_dicom-leak-dicomdir.bin",
                                       64, &r),
                          0);
    CU_ASSERT_EQUAL(r.bad_record_type, 1);
    static const char *const ok[] = {"DICOMDIR", "DICOMDIR-bigEnd", "DICOMDIR-implicit",
                                     "DICOMDIR-reordered", "DICOMDIR-nopatient"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/sample-data/study-tree/pydicom-dicomdirtests/%s",
                 DCMC_SOURCE_DIR, ok[i]);
        CU_ASSERT_EQUAL_FATAL(dcmci_prescan(path, 64, &r), 0);
        CU_ASSERT_EQUAL(r.bad_record_type, 0);
        CU_ASSERT(r.depth >= 1 && r.depth <= 4);
    }
}

int dcmc_test_register_prescan(void)
{
    static const dcmc_test_case cases[] = {
        {"explicit VR little endian, defined and undefined lengths", test_explicit_le},
        {"implicit VR little endian", test_implicit_le},
        {"explicit VR big endian", test_big_endian},
        {"deflated data sets", test_deflated},
        {"UN: sequences of implicit VR items", test_un},
        {"encapsulated pixel data is not nesting", test_encapsulated},
        {"10,000 and 100,000 levels: early stop, no recursion", test_deep},
        {"no preamble, no meta group: the guessed encodings", test_no_meta},
        {"truncated files: the depth reached", test_truncated},
        {"hostile lengths, garbage, a 500 MB value", test_hostile_lengths},
        {"readings that depend on DCMTK's dictionary", test_dictionary_readings},
        {"errors: missing file, directory, NULL", test_errors},
        {"tests/hostile/make_hostile.py files", test_make_hostile},
        {"sample files: small depth, never below DCMTK's", test_samples},
        {"a Directory Record Type DCMTK cannot parse safely", test_record_type},
        {NULL, NULL},
    };
    CU_pSuite s = CU_add_suite("prescan", suite_init, suite_clean);
    if (!s)
        return -1;
    for (const dcmc_test_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn))
            return -1;
    return 0;
}
