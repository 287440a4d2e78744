/*
 * test_core.c - statuses, layout rules, key parsing and key files, presets, and the header
 * reader on hostile input: every malformed field gets its own status, nothing crashes.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/team.h"
#include "dcmcrypt/dcmcrypt.h"
#include "test_common.h"

static void test_status_strings(void)
{
    for (int s = DCMC_OK; s <= DCMC_ERR_INTERNAL; s++) {
        const char *a = dcmc_status_str((dcmc_status)s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT(strcmp(a, "unknown status") != 0);
        for (int t = DCMC_OK; t < s; t++)
            CU_ASSERT(strcmp(a, dcmc_status_str((dcmc_status)t)) != 0);
    }
    CU_ASSERT_STRING_EQUAL(dcmc_status_str((dcmc_status)999), "unknown status");
}

static dcmc_layout L(uint32_t r, uint32_t c, uint32_t s, uint32_t pl, uint32_t ba, uint32_t bs,
                     uint32_t hb, uint32_t sg)
{
    dcmc_layout l = {r, c, s, pl, ba, bs, hb, sg};
    return l;
}

static void test_layout_rules(void)
{
    dcmc_layout ok[] = {L(1, 1, 1, 0, 8, 8, 7, 0),      L(512, 512, 1, 0, 16, 12, 11, 0),
                        L(7, 5, 3, 1, 8, 8, 7, 0),      L(3, 3, 1, 0, 16, 12, 15, 1),
                        L(5, 7, 1, 0, 1, 1, 0, 0),      L(4, 4, 1, 0, 32, 32, 31, 1),
                        L(65535, 1, 3, 0, 16, 16, 15, 1)};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        CU_ASSERT_EQUAL(dcmc_layout_check(&ok[i]), DCMC_OK);
    dcmc_layout bad[] = {L(0, 5, 1, 0, 8, 8, 7, 0),   L(5, 0, 1, 0, 8, 8, 7, 0),
                         L(65536, 5, 1, 0, 8, 8, 7, 0), L(5, 5, 2, 0, 8, 8, 7, 0),
                         L(5, 5, 1, 2, 8, 8, 7, 0),   L(5, 5, 1, 0, 12, 12, 11, 0),
                         L(5, 5, 1, 0, 8, 0, 7, 0),   L(5, 5, 1, 0, 8, 9, 8, 0),
                         L(5, 5, 1, 0, 16, 12, 10, 0), L(5, 5, 1, 0, 16, 12, 16, 0),
                         L(5, 5, 1, 0, 8, 8, 7, 2),   L(5, 5, 1, 0, 1, 1, 1, 0),
                         L(5, 5, 1, 0, 0, 0, 0, 0)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(dcmc_layout_check(&bad[i]), DCMC_ERR_LAYOUT);
    dcmc_layout huge = L(65535, 65535, 3, 0, 32, 32, 31, 0);
    CU_ASSERT_EQUAL(dcmc_layout_check(&huge), DCMC_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(dcmc_layout_check(NULL), DCMC_ERR_ARG);

    size_t b = 99;
    dcmc_layout bits = L(5, 7, 1, 0, 1, 1, 0, 0), rgb = L(3, 3, 3, 0, 16, 16, 15, 0);
    CU_ASSERT_EQUAL(dcmc_layout_frame_bytes(&bits, &b), DCMC_OK);
    CU_ASSERT_EQUAL(b, 5);
    CU_ASSERT_EQUAL(dcmc_layout_frame_bytes(&rgb, &b), DCMC_OK);
    CU_ASSERT_EQUAL(b, 54);
    CU_ASSERT_EQUAL(dcmc_layout_frame_bytes(&bad[0], &b), DCMC_ERR_LAYOUT);
    CU_ASSERT_EQUAL(b, 0);
}

static void test_key_parse(void)
{
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    dcmc_key k;
    CU_ASSERT_EQUAL(dcmc_key_parse((const uint8_t *)hex, 64, &k), DCMC_OK);
    for (int i = 0; i < 32; i++)
        CU_ASSERT_EQUAL(k.bytes[i], i);
    char buf[80];
    snprintf(buf, sizeof buf, "%s\r\n", hex);
    CU_ASSERT_EQUAL(dcmc_key_parse((const uint8_t *)buf, strlen(buf), &k), DCMC_OK);
    CU_ASSERT_EQUAL(k.bytes[31], 31);
    /* Raw 32 bytes, even ones that look like hex digits. */
    uint8_t raw[32];
    memset(raw, 0xAB, sizeof raw);
    CU_ASSERT_EQUAL(dcmc_key_parse(raw, 32, &k), DCMC_OK);
    CU_ASSERT_EQUAL(k.bytes[5], 0xAB);
    /* Malformed: short, long, junk, trailing garbage, empty. */
    CU_ASSERT_EQUAL(dcmc_key_parse((const uint8_t *)hex, 63, &k), DCMC_ERR_KEY);
    CU_ASSERT_EQUAL(k.bytes[0], 0); /* output zeroed on failure */
    snprintf(buf, sizeof buf, "%sa", hex);
    CU_ASSERT_EQUAL(dcmc_key_parse((const uint8_t *)buf, 65, &k), DCMC_ERR_KEY);
    snprintf(buf, sizeof buf, "%s x", hex);
    CU_ASSERT_EQUAL(dcmc_key_parse((const uint8_t *)buf, strlen(buf), &k), DCMC_ERR_KEY);
    CU_ASSERT_EQUAL(dcmc_key_parse((const uint8_t *)"", 0, &k), DCMC_ERR_KEY);
    CU_ASSERT_EQUAL(dcmc_key_parse((const uint8_t *)"zz", 2, &k), DCMC_ERR_KEY);
    CU_ASSERT_EQUAL(dcmc_key_parse(NULL, 0, &k), DCMC_ERR_ARG);
}

static void test_key_files(void)
{
    char dir[] = "/tmp/dcmc-keyXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/key", dir);
    dcmc_key k, r;
    CU_ASSERT_EQUAL(dcmc_key_read_file(path, &r), DCMC_ERR_IO);
    CU_ASSERT_EQUAL(dcmc_key_generate(&k), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_key_write_file(path, &k), DCMC_OK);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(st.st_size, 65);
    CU_ASSERT_EQUAL(dcmc_key_read_file(path, &r), DCMC_OK);
    CU_ASSERT(memcmp(k.bytes, r.bytes, 32) == 0);
    /* Never overwrite an existing key file. */
    CU_ASSERT_EQUAL(dcmc_key_write_file(path, &k), DCMC_ERR_IO);
    /* A file that is not a key. */
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 1000; i++)
        fputc('a', f);
    fclose(f);
    CU_ASSERT_EQUAL(dcmc_key_read_file(path, &r), DCMC_ERR_KEY);
    unlink(path);
    rmdir(dir);
    /* Two generated keys differ. */
    CU_ASSERT_EQUAL(dcmc_key_generate(&r), DCMC_OK);
    CU_ASSERT(memcmp(k.bytes, r.bytes, 32) != 0);
}

static void test_passphrase(void)
{
    dcmc_kdf kdf;
    CU_ASSERT_EQUAL(dcmc_kdf_new_scrypt(&kdf), DCMC_OK);
    CU_ASSERT_EQUAL(kdf.id, DCMC_KDF_SCRYPT);
    CU_ASSERT_EQUAL(kdf.log2_n, DCMC_SCRYPT_LOG2N_DEFAULT);
    kdf.log2_n = 10; /* fast for tests; the default is exercised by the apps */
    dcmc_key a, b;
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("", 0, &kdf, &a), DCMC_ERR_KEY);
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("secret", 6, &kdf, &a), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("secret", 6, &kdf, &b), DCMC_OK);
    CU_ASSERT(memcmp(a.bytes, b.bytes, 32) == 0);
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("secreT", 6, &kdf, &b), DCMC_OK);
    CU_ASSERT(memcmp(a.bytes, b.bytes, 32) != 0);
    kdf.salt[0] ^= 1;
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("secret", 6, &kdf, &b), DCMC_OK);
    CU_ASSERT(memcmp(a.bytes, b.bytes, 32) != 0);
    kdf.log2_n = 40;
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("secret", 6, &kdf, &b), DCMC_ERR_FORMAT);
    kdf.log2_n = 22;
    kdf.r = 32; /* 16 GiB: refused rather than attempted */
    CU_ASSERT_EQUAL(dcmc_kdf_cost_mib(&kdf), 16384u);
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("secret", 6, &kdf, &b), DCMC_ERR_KDF_COST);
    /* The cost limit: the defaults cost 128 MiB and pass; p multiplies the cost. */
    kdf.log2_n = DCMC_SCRYPT_LOG2N_DEFAULT;
    kdf.r = DCMC_SCRYPT_R_DEFAULT;
    kdf.p = 16;
    CU_ASSERT_EQUAL(dcmc_kdf_cost_mib(&kdf), 2048u);
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase("secret", 6, &kdf, &b), DCMC_ERR_KDF_COST);
    kdf.p = 2;
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase_max("secret", 6, &kdf, 255, &b), DCMC_ERR_KDF_COST);
    kdf.log2_n = 10;
    kdf.p = 1;
    CU_ASSERT_EQUAL(dcmc_key_from_passphrase_max("secret", 6, &kdf, 1, &b), DCMC_OK);
}

static void test_presets(void)
{
    dcmc_preset p;
    CU_ASSERT_EQUAL(dcmc_preset_by_name("at-resnet-cm", &p), DCMC_OK);
    CU_ASSERT_EQUAL(p.attention, 1);
    CU_ASSERT_EQUAL(dcmc_preset_check(&p), DCMC_OK);
    CU_ASSERT_STRING_EQUAL(dcmc_preset_name(p.id), "at-resnet-cm");
    CU_ASSERT_EQUAL(dcmc_preset_by_name("resnet-cm", &p), DCMC_OK);
    CU_ASSERT_EQUAL(p.attention, 0);
    CU_ASSERT_EQUAL(dcmc_preset_by_name("vgg", &p), DCMC_ERR_PRESET);
    CU_ASSERT_EQUAL(dcmc_preset_by_id(77, &p), DCMC_ERR_PRESET);
    CU_ASSERT_STRING_EQUAL(dcmc_preset_name(77), "unknown");
    dcmc_preset_by_name("at-resnet-cm", &p);
    p.channels = 8;
    CU_ASSERT_EQUAL(dcmc_preset_check(&p), DCMC_ERR_PRESET);
    dcmc_preset_by_name("at-resnet-cm", &p);
    p.ca_reduction = 3;
    CU_ASSERT_EQUAL(dcmc_preset_check(&p), DCMC_ERR_PRESET);
    dcmc_preset_by_name("at-resnet-cm", &p);
    p.rounds = 0;
    CU_ASSERT_EQUAL(dcmc_preset_check(&p), DCMC_ERR_PRESET);
}

static void valid_header(dcmc_header *h)
{
    memset(h, 0, sizeof *h);
    h->version = DCMC_FORMAT_VERSION;
    h->flags = DCMC_FLAG_STANDARD_LAYER;
    dcmc_preset_by_name("at-resnet-cm", &h->preset);
    for (int i = 0; i < 16; i++)
        h->nonce[i] = (uint8_t)(i * 3);
    h->layout = L(512, 400, 3, 1, 16, 12, 11, 1);
    h->frames = 7;
    h->payload_bytes = 1234;
    h->mac[5] = 9;
}

static void test_header_roundtrip(void)
{
    dcmc_header h, r;
    uint8_t b[DCMC_HEADER_BYTES];
    valid_header(&h);
    CU_ASSERT_EQUAL(dcmc_header_write(&h, b), DCMC_OK);
    CU_ASSERT(memcmp(b, "DCMCRYPT", 8) == 0);
    CU_ASSERT_EQUAL(dcmc_header_read(b, sizeof b, &r), DCMC_OK);
    CU_ASSERT(dcmc_test_header_equal(&h, &r));
    h.kdf.id = DCMC_KDF_SCRYPT;
    h.kdf.log2_n = 17;
    h.kdf.r = 8;
    h.kdf.p = 1;
    h.kdf.salt[15] = 0xEE;
    CU_ASSERT_EQUAL(dcmc_header_write(&h, b), DCMC_OK);
    CU_ASSERT_EQUAL(dcmc_header_read(b, sizeof b, &r), DCMC_OK);
    CU_ASSERT(dcmc_test_header_equal(&h, &r));
}

static void test_header_hostile(void)
{
    dcmc_header h, r;
    uint8_t good[DCMC_HEADER_BYTES], b[DCMC_HEADER_BYTES];
    valid_header(&h);
    dcmc_header_write(&h, good);
    struct {
        size_t off;
        uint8_t val;
        dcmc_status want;
    } cases[] = {
        {0, 'X', DCMC_ERR_FORMAT},       {8, 2, DCMC_ERR_UNSUPPORTED},  {12, 3, DCMC_ERR_FORMAT},
        {16, 9, DCMC_ERR_PRESET},        {17, 8, DCMC_ERR_PRESET},      {18, 0, DCMC_ERR_PRESET},
        {19, 9, DCMC_ERR_PRESET},        {22, 4, DCMC_ERR_PRESET},      {27, 1, DCMC_ERR_FORMAT},
        {28, 7, DCMC_ERR_UNSUPPORTED},   {29, 5, DCMC_ERR_FORMAT},      {32, 1, DCMC_ERR_FORMAT},
        {73, 0, DCMC_ERR_FORMAT},        {76, 2, DCMC_ERR_FORMAT},
        {78, 12, DCMC_ERR_FORMAT},       {79, 17, DCMC_ERR_FORMAT},     {80, 3, DCMC_ERR_FORMAT},
        {81, 5, DCMC_ERR_FORMAT},        {94, 1, DCMC_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, good, sizeof b);
        b[cases[i].off] = cases[i].val;
        dcmc_status st = dcmc_header_read(b, sizeof b, &r);
        CU_ASSERT_EQUAL(st, cases[i].want);
        if (st != cases[i].want)
            fprintf(stderr, "header offset %zu: got %s\n", cases[i].off, dcmc_status_str(st));
        CU_ASSERT_EQUAL(r.version, 0); /* output cleared on failure */
    }
    /* frames = 0, payload < 5, short and long buffers. */
    memcpy(b, good, sizeof b);
    memset(b + 82, 0, 4);
    CU_ASSERT_EQUAL(dcmc_header_read(b, sizeof b, &r), DCMC_ERR_FORMAT);
    memcpy(b, good, sizeof b);
    memset(b + 86, 0, 8);
    b[86] = 4;
    CU_ASSERT_EQUAL(dcmc_header_read(b, sizeof b, &r), DCMC_ERR_FORMAT);
    CU_ASSERT_EQUAL(dcmc_header_read(good, 127, &r), DCMC_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(dcmc_header_read(good, 0, &r), DCMC_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(dcmc_header_read(NULL, 128, &r), DCMC_ERR_ARG);
    /* Every single-byte value at every offset: never a crash, and a parsed header is valid. */
    for (size_t off = 0; off < DCMC_HEADER_BYTES; off++) {
        for (int v = 0; v < 256; v += 17) {
            memcpy(b, good, sizeof b);
            b[off] = (uint8_t)v;
            if (dcmc_header_read(b, sizeof b, &r) == DCMC_OK) {
                CU_ASSERT_EQUAL(dcmc_layout_check(&r.layout), DCMC_OK);
                CU_ASSERT_EQUAL(dcmc_preset_check(&r.preset), DCMC_OK);
            }
        }
    }
}

/* The team (core/team.h) goes on alone once its regions lose to one thread by more than the
 * slack, stays alone for 1, 2, 4 ... 64 frames as two threads keep losing, and a frame two
 * threads finish resets that; an idle machine's pattern never trips it. */
static void test_team_fallback(void)
{
    const uint64_t ms = 1000000;
    dcmci_team t;
    dcmci_team_init(&t, 2);
    dcmci_team_frame(&t);
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 2);
    /* Idle: 40 regions, each done in 0.6x the calling thread's estimate plus 50 us of wake-up. */
    for (int i = 0; i < 40; i++)
        dcmci_team_region(&t, 6 * ms / 10 + 50000, ms / 2, 4, 8);
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 2);
    /* The others took every item: no measure of one thread, counted as even. */
    dcmci_team_frame(&t);
    dcmci_team_region(&t, 50 * ms, 0, 0, 8);
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 2);
    /* A preempted helper: 10 ms for what the calling thread alone does in 2 ms. */
    dcmci_team_region(&t, 10 * ms, ms, 4, 8);
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 1);
    dcmci_team_region(&t, ms, ms, 8, 8); /* alone: not measured, still alone */
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 1);
    /* Each further loss doubles the frames run alone, up to the bound. */
    for (unsigned expect = 1; expect <= 2 * DCMCI_TEAM_BACKOFF_MAX; expect *= 2) {
        const unsigned run = expect < DCMCI_TEAM_BACKOFF_MAX ? expect : DCMCI_TEAM_BACKOFF_MAX;
        for (unsigned f = 0; f < run; f++) {
            dcmci_team_frame(&t);
            CU_ASSERT_EQUAL(dcmci_team_size(&t), 1);
        }
        dcmci_team_frame(&t);
        CU_ASSERT_EQUAL_FATAL(dcmci_team_size(&t), 2); /* tried again */
        dcmci_team_account(&t, 5 * ms, 2 * ms);   /* and lost again */
        CU_ASSERT_EQUAL(dcmci_team_size(&t), 1);
    }
    /* Two threads win a whole frame: the next loss costs one frame alone again. */
    for (unsigned f = 0; f < DCMCI_TEAM_BACKOFF_MAX; f++)
        dcmci_team_frame(&t);
    dcmci_team_frame(&t);
    CU_ASSERT_EQUAL_FATAL(dcmci_team_size(&t), 2);
    dcmci_team_account(&t, ms, 2 * ms);
    dcmci_team_frame(&t);
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 2);
    dcmci_team_account(&t, 5 * ms, 2 * ms);
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 1);
    dcmci_team_frame(&t);
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 1);
    dcmci_team_frame(&t);
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 2);
    /* One thread asked for: always one. */
    dcmci_team_init(&t, 1);
    dcmci_team_frame(&t);
    CU_ASSERT_EQUAL(dcmci_team_size(&t), 1);
}

/* A new team of the same thread (the next file's frame cipher) starts where the last one left:
 * still alone after a loss, on every thread after a win; other threads keep their own. */
static void *inherit_elsewhere(void *arg)
{
    dcmci_team *t = arg;
    dcmci_team_init(t, 2);
    dcmci_team_inherit(t);
    dcmci_team_frame(t);
    return NULL;
}

static void test_team_inherit(void)
{
    const uint64_t ms = 1000000;
    dcmci_team a, b, c;
    dcmci_team_init(&a, 2);
    dcmci_team_hand_on(&a); /* a known start, whatever earlier suites left */
    dcmci_team_frame(&a);
    dcmci_team_account(&a, 5 * ms, 2 * ms); /* lost */
    dcmci_team_hand_on(&a);
    dcmci_team_init(&b, 2);
    dcmci_team_inherit(&b);
    dcmci_team_frame(&b);
    CU_ASSERT_EQUAL(dcmci_team_size(&b), 1); /* the frame after a loss runs alone */
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, inherit_elsewhere, &c), 0);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(dcmci_team_size(&c), 2); /* another thread learnt nothing */
    dcmci_team_frame(&b);
    CU_ASSERT_EQUAL(dcmci_team_size(&b), 2);
    dcmci_team_account(&b, ms, 2 * ms); /* won */
    dcmci_team_hand_on(&b);
    dcmci_team_init(&c, 2);
    dcmci_team_inherit(&c);
    CU_ASSERT_EQUAL(c.backoff, 1u);
    dcmci_team_frame(&c);
    CU_ASSERT_EQUAL(dcmci_team_size(&c), 2);
    dcmci_team one;
    dcmci_team_init(&one, 1);
    dcmci_team_hand_on(&one); /* a team of one hands nothing on */
    dcmci_team_init(&c, 2);
    dcmci_team_inherit(&c);
    CU_ASSERT_EQUAL(c.skip, 0u);
    CU_ASSERT_EQUAL(c.backoff, 1u);
}

int dcmc_test_register_core(void)
{
    static const dcmc_test_case cases[] = {
        {"status strings are distinct", test_status_strings},
        {"layout rules", test_layout_rules},
        {"key parsing", test_key_parse},
        {"key files: 0600, no overwrite, malformed", test_key_files},
        {"passphrase through scrypt", test_passphrase},
        {"presets", test_presets},
        {"header round trip", test_header_roundtrip},
        {"header rejects hostile fields", test_header_hostile},
        {"thread team falls back to one and backs off", test_team_fallback},
        {"thread team: the next file's team inherits, per thread", test_team_inherit},
        {NULL, NULL},
    };
    return dcmc_test_add_suite("core", cases);
}
