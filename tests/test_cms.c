/*
 * test_cms.c - the CMS envelope of the Encrypted Attributes Sequence (dicom/cms.c): the KEK
 * against an independent HKDF, each recipient alone and all in one envelope, wrong keys, damaged
 * and hostile DER (a password recipient without its key derivation, which crashes OpenSSL, or
 * asking for 2^31 PBKDF2 iterations), and the openssl command line both ways. Keys and
 * certificates are made here with OpenSSL's API; nothing needs the network.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cms.h"
#include "dcmcrypt/dcmcrypt.h"
#include "test_common.h"

static char g_dir[64];
static uint8_t g_uid_key[32], g_kek[32], g_kek_id[16];
static const char g_password[] = "correct horse battery staple";
/* Content with what a text mode would change (LF, CR LF, NUL): it must come back byte for byte. */
static uint8_t g_content[1000];
static uint8_t *g_all; /* one envelope for every recipient: KEK, password, RSA, EC */
static size_t g_all_len;

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* ---- keys and certificates ------------------------------------------------------------------- */

static X509 *self_signed(EVP_PKEY *k, const char *cn, long serial)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    int ok = x && name && X509_set_version(x, 2) &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), serial) &&
             X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30) && X509_set_pubkey(x, k) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                        0) &&
             X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) &&
             X509_sign(x, k, EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) > 0;
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* name_key.pem (the key alone), name_cert.pem, name_bundle.pem (key and certificate). */
static int write_identity(const char *name, EVP_PKEY *k, long serial)
{
    char p[128];
    X509 *x = self_signed(k, name, serial);
    int ok = x != NULL;
    for (int what = 0; ok && what < 3; what++) {
        static const char *const suffix[] = {"key", "cert", "bundle"};
        snprintf(p, sizeof p, "%s_%s.pem", name, suffix[what]);
        FILE *f = fopen(tmp(p), "w");
        ok = f != NULL;
        if (ok && what == 2) /* the certificate first: the reader must find the key anyway */
            ok = PEM_write_X509(f, x) == 1;
        if (ok && what != 1)
            ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
        if (ok && what == 1)
            ok = PEM_write_X509(f, x) == 1;
        if (f)
            ok = fclose(f) == 0 && ok;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)len + 1)) != NULL && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    *n = buf ? (size_t)len : 0;
    return buf;
}

static dcmci_cms_recipients recipients(int kek, int password, const char *const *certs, size_t n)
{
    dcmci_cms_recipients r = {kek ? g_kek : NULL,
                              kek ? g_kek_id : NULL,
                              password ? g_password : NULL,
                              password ? strlen(g_password) : 0,
                              certs,
                              n};
    return r;
}

static int suite_init(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/dcmc-cms-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    for (size_t i = 0; i < sizeof g_content; i++)
        g_content[i] = (uint8_t)(i % 7 == 0 ? '\n' : i % 11 == 0 ? '\r' : i * 37);
    for (int i = 0; i < 32; i++)
        g_uid_key[i] = (uint8_t)i;
    if (dcmci_cms_kek(g_uid_key, g_kek, g_kek_id) != DCMC_OK ||
        write_identity("rsa", EVP_RSA_gen(2048), 1) ||
        write_identity("rsa2", EVP_RSA_gen(2048), 2) ||
        write_identity("ec", EVP_EC_gen("P-256"), 3) ||
        write_identity("ec2", EVP_EC_gen("P-256"), 4) ||
        write_identity("ed", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), 5))
        return -1;
    const char *certs[] = {tmp("rsa_cert.pem"), tmp("ec_cert.pem")};
    dcmci_cms_recipients all = recipients(1, 1, certs, 2);
    return dcmci_cms_envelope(g_content, sizeof g_content, &all, &g_all, &g_all_len, NULL, 0) ==
                   DCMC_OK
               ? 0
               : -1;
}

static int suite_clean(void)
{
    dcmc_free(g_all, g_all_len);
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

/* Open `der` and expect `want`; on success, the content must be g_content. */
static void expect_open(const uint8_t *der, size_t n, const dcmci_cms_recipients *with,
                        const char *key_file, dcmc_status want)
{
    uint8_t *out = (uint8_t *)1;
    size_t out_len = 1;
    char msg[256];
    dcmc_status st = dcmci_cms_open(der, n, with, key_file, &out, &out_len, msg, sizeof msg);
    CU_ASSERT_EQUAL(st, want);
    if (st != want)
        fprintf(stderr, "\n  open: %s (%s), expected %s\n", dcmc_status_str(st), msg,
                dcmc_status_str(want));
    if (st == DCMC_OK) {
        CU_ASSERT_EQUAL(out_len, sizeof g_content);
        CU_ASSERT(out_len == sizeof g_content && memcmp(out, g_content, out_len) == 0);
        CU_ASSERT_EQUAL(msg[0], '\0');
    } else {
        CU_ASSERT_PTR_NULL(out);
        CU_ASSERT_EQUAL(out_len, 0);
        CU_ASSERT(msg[0] != '\0');
    }
    dcmc_free(out, out_len);
}

static dcmc_status open_status(const uint8_t *der, size_t n, const dcmci_cms_recipients *with,
                               const char *key_file, int *is_content)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    dcmc_status st = dcmci_cms_open(der, n, with, key_file, &out, &out_len, NULL, 0);
    if (is_content)
        *is_content = out && out_len == sizeof g_content && memcmp(out, g_content, out_len) == 0;
    dcmc_free(out, out_len);
    return st;
}

/* ---- the tests ------------------------------------------------------------------------------- */

/* KEK and key id of the UID keys 00 01 .. 1f and ff .. ff, from Python's hmac and hashlib (an
 * independent HKDF-SHA256: prk = HMAC(32 zero bytes, key), T1 = HMAC(prk, info || 01), ...). */
static void test_kek(void)
{
    static const uint8_t want_kek[2][32] = {
        {0x78, 0x45, 0x46, 0x7b, 0x18, 0x1a, 0x77, 0xc6, 0xc5, 0xfe, 0xc0,
         0x3a, 0xb0, 0xf9, 0x27, 0x23, 0xe4, 0x21, 0x42, 0xe5, 0x47, 0x0c,
         0x76, 0xb9, 0xb0, 0xe6, 0xb2, 0x6f, 0x6a, 0xd5, 0x8c, 0x92},
        {0x96, 0x64, 0xa4, 0xdf, 0xbe, 0x37, 0x61, 0x75, 0x05, 0x8c, 0x7d,
         0x3e, 0x74, 0x2b, 0xd7, 0xcf, 0xfd, 0x4c, 0x25, 0x19, 0xd3, 0xf2,
         0x34, 0x9e, 0x36, 0xd0, 0xc5, 0x2b, 0x88, 0xfe, 0x5d, 0xad}};
    static const uint8_t want_id[2][16] = {{0x99, 0xfd, 0x86, 0x75, 0x69, 0x69, 0x32, 0xe4, 0x07,
                                            0xce, 0x00, 0x40, 0xa4, 0x8b, 0xf1, 0x5d},
                                           {0xe2, 0xb5, 0x26, 0x95, 0x0f, 0x83, 0x5b, 0x7f, 0x9f,
                                            0x67, 0xfc, 0x56, 0x05, 0xe9, 0x2c, 0x8d}};
    uint8_t uid[2][32], kek[32], id[16];
    for (int i = 0; i < 32; i++) {
        uid[0][i] = (uint8_t)i;
        uid[1][i] = 0xff;
    }
    for (int k = 0; k < 2; k++)
        for (int again = 0; again < 2; again++) {
            CU_ASSERT_EQUAL(dcmci_cms_kek(uid[k], kek, id), DCMC_OK);
            CU_ASSERT(memcmp(kek, want_kek[k], 32) == 0);
            CU_ASSERT(memcmp(id, want_id[k], 16) == 0);
        }
    CU_ASSERT(memcmp(want_kek[0], want_kek[1], 32) != 0 && memcmp(want_id[0], want_id[1], 16) != 0);
    CU_ASSERT_EQUAL(dcmci_cms_kek(NULL, kek, id), DCMC_ERR_ARG);
    static const uint8_t zero[32];
    CU_ASSERT(memcmp(kek, zero, 32) == 0 && memcmp(id, zero, 16) == 0); /* outputs cleared */
    CU_ASSERT_EQUAL(dcmci_cms_kek(uid[0], NULL, id), DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmci_cms_kek(uid[0], kek, NULL), DCMC_ERR_ARG);
}

/* Each kind of recipient alone: an envelope for it opens with it, and with nothing else. */
static void test_each_recipient_alone(void)
{
    char rsa_cert[512], ec_cert[512], rsa_key[512], ec_key[512];
    snprintf(rsa_cert, sizeof rsa_cert, "%s", tmp("rsa_cert.pem"));
    snprintf(ec_cert, sizeof ec_cert, "%s", tmp("ec_cert.pem"));
    snprintf(rsa_key, sizeof rsa_key, "%s", tmp("rsa_key.pem"));
    snprintf(ec_key, sizeof ec_key, "%s", tmp("ec_key.pem"));
    const char *rsa[] = {rsa_cert}, *ec[] = {ec_cert};
    dcmci_cms_recipients to[4] = {recipients(1, 0, NULL, 0), recipients(0, 1, NULL, 0),
                                  recipients(0, 0, rsa, 1), recipients(0, 0, ec, 1)};
    dcmci_cms_recipients kek = recipients(1, 0, NULL, 0), pw = recipients(0, 1, NULL, 0);
    for (int i = 0; i < 4; i++) {
        uint8_t *der = NULL;
        size_t n = 0;
        char msg[256];
        CU_ASSERT_EQUAL_FATAL(
            dcmci_cms_envelope(g_content, sizeof g_content, &to[i], &der, &n, msg, sizeof msg),
            DCMC_OK);
        CU_ASSERT(n > sizeof g_content);
        expect_open(der, n, &kek, NULL, i == 0 ? DCMC_OK : DCMC_ERR_WRONG_KEY);
        expect_open(der, n, NULL, rsa_key, i == 2 ? DCMC_OK : DCMC_ERR_WRONG_KEY);
        expect_open(der, n, NULL, ec_key, i == 3 ? DCMC_OK : DCMC_ERR_WRONG_KEY);
        if (i == 1) /* the other envelopes have no password recipient: no need to pay PBKDF2 */
            expect_open(der, n, &pw, NULL, DCMC_OK);
        dcmc_free(der, n);
    }
}

/* One envelope for a KEK, a password, an RSA and an EC certificate: each opens it alone. */
static void test_all_recipients(void)
{
    const unsigned char *p = g_all;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)g_all_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cms);
    CU_ASSERT_EQUAL(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_enveloped);
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    int seen = 0;
    for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++)
        seen |= 1 << CMS_RecipientInfo_type(sk_CMS_RecipientInfo_value(ris, i));
    CU_ASSERT_EQUAL(sk_CMS_RecipientInfo_num(ris), 4);
    CU_ASSERT_EQUAL(seen, 1 << CMS_RECIPINFO_TRANS | 1 << CMS_RECIPINFO_AGREE |
                              1 << CMS_RECIPINFO_KEK | 1 << CMS_RECIPINFO_PASS);
    CMS_ContentInfo_free(cms);

    dcmci_cms_recipients kek = recipients(1, 0, NULL, 0), pw = recipients(0, 1, NULL, 0);
    dcmci_cms_recipients both = recipients(1, 1, NULL, 0);
    expect_open(g_all, g_all_len, &kek, NULL, DCMC_OK);
    expect_open(g_all, g_all_len, &pw, NULL, DCMC_OK);
    expect_open(g_all, g_all_len, NULL, tmp("rsa_key.pem"), DCMC_OK);
    expect_open(g_all, g_all_len, NULL, tmp("rsa_bundle.pem"), DCMC_OK);
    expect_open(g_all, g_all_len, NULL, tmp("ec_key.pem"), DCMC_OK);
    expect_open(g_all, g_all_len, &both, tmp("ec_key.pem"), DCMC_OK);
    /* DICOM pads an odd-length value with one zero byte; nothing else may follow. */
    uint8_t *pad = malloc(g_all_len + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pad);
    memcpy(pad, g_all, g_all_len);
    pad[g_all_len] = 0;
    pad[g_all_len + 1] = 0;
    expect_open(pad, g_all_len + 1, &kek, NULL, DCMC_OK);
    expect_open(pad, g_all_len + 2, &kek, NULL, DCMC_ERR_FORMAT);
    pad[g_all_len] = 1;
    expect_open(pad, g_all_len + 1, &kek, NULL, DCMC_ERR_FORMAT);
    free(pad);
}

static void test_wrong_keys(void)
{
    uint8_t other_uid[32], okek[32], oid[16];
    memset(other_uid, 0xff, sizeof other_uid);
    CU_ASSERT_EQUAL_FATAL(dcmci_cms_kek(other_uid, okek, oid), DCMC_OK);
    dcmci_cms_recipients w = {okek, oid, NULL, 0, NULL, 0};
    expect_open(g_all, g_all_len, &w, NULL, DCMC_ERR_WRONG_KEY); /* no recipient with that id */
    w.kek_id = g_kek_id;
    expect_open(g_all, g_all_len, &w, NULL, DCMC_ERR_WRONG_KEY); /* the key unwrap fails */
    dcmci_cms_recipients wpw = {NULL, NULL, "correct horse battery stapler", 29, NULL, 0};
    expect_open(g_all, g_all_len, &wpw, NULL, DCMC_ERR_WRONG_KEY);
    /* Another RSA key with its certificate, another EC key: a definite answer. */
    expect_open(g_all, g_all_len, NULL, tmp("rsa2_bundle.pem"), DCMC_ERR_WRONG_KEY);
    expect_open(g_all, g_all_len, NULL, tmp("ec2_key.pem"), DCMC_ERR_WRONG_KEY);
    expect_open(g_all, g_all_len, NULL, tmp("ec2_bundle.pem"), DCMC_ERR_WRONG_KEY);
    /* Another RSA key alone: OpenSSL's Bleichenbacher countermeasure goes on with a random
     * content key, which the CBC padding rejects about 255 times in 256 (cms.c, open_pkey). Never
     * the content; a wrong key nearly always (more than 2 misses in 12: p < 1e-5). */
    int wrong = 0;
    for (int i = 0; i < 12; i++) {
        int is_content = 1;
        dcmc_status st = open_status(g_all, g_all_len, NULL, tmp("rsa2_key.pem"), &is_content);
        CU_ASSERT(st == DCMC_ERR_WRONG_KEY || (st == DCMC_OK && !is_content));
        wrong += st == DCMC_ERR_WRONG_KEY;
    }
    CU_ASSERT(wrong >= 10);
}

/* Every truncation and every byte changed: a status, never a crash (ASan builds check the
 * rest). CBC has no integrity: a change inside the ciphertext may open to other bytes. */
static void test_damaged(void)
{
    dcmci_cms_recipients kek = recipients(1, 0, NULL, 0);
    uint8_t *buf = malloc(g_all_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (size_t n = 0; n < g_all_len; n++) {
        dcmc_status st = open_status(g_all, n, &kek, NULL, NULL);
        CU_ASSERT(st == DCMC_ERR_FORMAT);
    }
    int opened = 0, refused = 0;
    for (size_t i = 0; i < g_all_len; i++) {
        memcpy(buf, g_all, g_all_len);
        buf[i] ^= (uint8_t)(i & 1 ? 0x80 : 0x5a);
        const char *key = i % 5 == 1   ? tmp("rsa_bundle.pem")
                          : i % 5 == 3 ? tmp("ec_key.pem")
                                       : NULL;
        dcmc_status st = open_status(buf, g_all_len, key ? NULL : &kek, key, NULL);
        CU_ASSERT(st == DCMC_OK || st == DCMC_ERR_FORMAT || st == DCMC_ERR_WRONG_KEY ||
                  st == DCMC_ERR_INTEGRITY);
        opened += st == DCMC_OK;
        refused += st != DCMC_OK;
    }
    CU_ASSERT(opened > 0 && refused > 0);
    free(buf);
}

/* ---- hostile password recipients, written with OpenSSL's ASN1_generate_nconf ---------------- */

/* An EnvelopedData with one or two password recipients. The %s are: the second recipient (or
 * nothing), the key derivation of the PasswordRecipientInfo (or nothing: it is OPTIONAL), then
 * the algorithm and the iteration count of that key derivation. */
static const char k_pwri_fmt[] =
    "[ci]\ntype = OID:pkcs7-envelopedData\ncontent = EXPLICIT:0,SEQUENCE:env\n"
    "[env]\nversion = INTEGER:3\nris = SET:ris\neci = SEQUENCE:eci\n"
    "[ris]\npw = IMPLICIT:3,SEQUENCE:pwri\n%s"
    "[pwri]\nversion = INTEGER:0\n%s"
    "kea = SEQUENCE:kea\nek = FORMAT:HEX,OCTETSTRING:"
    "5f30337c38be1e30d2af56eb45fdeeb7112e2babff2431b0bd3234c0171f05efdc58997127bc7e0a9f5c4024c05090"
    "\n"
    "[kea]\nalg = OID:id-alg-PWRI-KEK\np = SEQUENCE:kekalg\n"
    "[kekalg]\nalg = OID:aes-256-cbc\niv = "
    "FORMAT:HEX,OCTETSTRING:4a8ebf2c0102667ff74fde2a2bad2bf6\n"
    "[eci]\nct = OID:pkcs7-data\nalg = SEQUENCE:calg\n"
    "ec = "
    "IMPLICIT:0,FORMAT:HEX,OCTETSTRING:"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
    "[calg]\nalg = OID:aes-256-cbc\niv = FORMAT:HEX,OCTETSTRING:eaf52a37ef6f886f41de2bbd465e52bf\n"
    "[kdf]\nalg = OID:%s\np = SEQUENCE:kdfp\n"
    "[kdfp]\nsalt = FORMAT:HEX,OCTETSTRING:0a1f5003b164714e\niter = INTEGER:%s\n";

static uint8_t *hostile(int with_kdf, int two, const char *alg, const char *iter, size_t *n)
{
    char text[sizeof k_pwri_fmt + 256];
    snprintf(text, sizeof text, k_pwri_fmt, two ? "pw2 = IMPLICIT:3,SEQUENCE:pwri\n" : "",
             with_kdf ? "kdf = IMPLICIT:0,SEQUENCE:kdf\n" : "", alg, iter);
    BIO *b = BIO_new_mem_buf(text, -1);
    CONF *conf = NCONF_new(NULL);
    long eline = 0;
    ASN1_TYPE *t = b && conf && NCONF_load_bio(conf, b, &eline) > 0
                       ? ASN1_generate_nconf("SEQUENCE:ci", conf)
                       : NULL;
    unsigned char *der = NULL;
    int len = t ? i2d_ASN1_TYPE(t, &der) : -1;
    uint8_t *out = len > 0 ? malloc((size_t)len) : NULL;
    if (out)
        memcpy(out, der, (size_t)len);
    *n = out ? (size_t)len : 0;
    OPENSSL_free(der);
    ASN1_TYPE_free(t);
    NCONF_free(conf);
    BIO_free(b);
    return out;
}

static void test_hostile_password_recipients(void)
{
    static const struct {
        int with_kdf, two;
        const char *alg, *iter;
        dcmc_status want;
    } cases[] = {
        {0, 0, "PBKDF2", "2048", DCMC_ERR_FORMAT},       /* no key derivation: OpenSSL crashes */
        {1, 0, "PBKDF2", "2147483647", DCMC_ERR_FORMAT}, /* half an hour of PBKDF2 */
        {1, 0, "PBKDF2", "0", DCMC_ERR_FORMAT},          {1, 0, "PBKDF2", "-5", DCMC_ERR_FORMAT},
        {1, 1, "PBKDF2", "1000000", DCMC_ERR_FORMAT}, /* two: over the bound together */
        {1, 0, "id-scrypt", "2048", DCMC_ERR_FORMAT}, /* only PBKDF2 */
        {1, 0, "PBKDF2", "2048", DCMC_ERR_WRONG_KEY}, /* well formed: the unwrap says no */
        {1, 1, "PBKDF2", "2048", DCMC_ERR_WRONG_KEY},
    };
    dcmci_cms_recipients pw = recipients(0, 1, NULL, 0), kek = recipients(1, 0, NULL, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        uint8_t *der = hostile(cases[i].with_kdf, cases[i].two, cases[i].alg, cases[i].iter, &n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(der);
        expect_open(der, n, &pw, NULL, cases[i].want);
        expect_open(der, n, &kek, NULL, DCMC_ERR_WRONG_KEY); /* the check is for passwords only */
        free(der);
    }
}

static void test_arguments_and_files(void)
{
    uint8_t *der = (uint8_t *)1;
    size_t n = 1;
    char msg[256];
    CU_ASSERT_EQUAL_FATAL(write_file(tmp("junk.pem"), "not a PEM file\n", 15), 0);
    dcmci_cms_recipients none = recipients(0, 0, NULL, 0), kek = recipients(1, 0, NULL, 0);
    CU_ASSERT_EQUAL(dcmci_cms_envelope(g_content, 10, &none, &der, &n, msg, sizeof msg),
                    DCMC_ERR_ARG);
    CU_ASSERT(der == NULL && n == 0);
    CU_ASSERT_EQUAL(dcmci_cms_envelope(NULL, 10, &kek, &der, &n, NULL, 0), DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmci_cms_envelope(g_content, 10, NULL, &der, &n, NULL, 0), DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmci_cms_envelope(g_content, 10, &kek, NULL, &n, NULL, 0), DCMC_ERR_ARG);
    dcmci_cms_recipients empty = {NULL, NULL, "", 0, NULL, 0};
    CU_ASSERT_EQUAL(dcmci_cms_envelope(g_content, 10, &empty, &der, &n, msg, sizeof msg),
                    DCMC_ERR_KEY);
    static const struct {
        const char *file;
        dcmc_status want;
    } certs[] = {{"nope.pem", DCMC_ERR_IO},
                 {"junk.pem", DCMC_ERR_FORMAT},
                 {"rsa_key.pem", DCMC_ERR_FORMAT},
                 {"ed_cert.pem", DCMC_ERR_FORMAT}};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s", tmp(certs[i].file));
        const char *one[] = {path};
        dcmci_cms_recipients to = recipients(1, 0, one, 1);
        CU_ASSERT_EQUAL(dcmci_cms_envelope(g_content, 10, &to, &der, &n, msg, sizeof msg),
                        certs[i].want);
        CU_ASSERT(der == NULL && n == 0 && strstr(msg, certs[i].file) != NULL);
    }
    dcmc_free(der, n);
}

static void test_opening_arguments_and_files(void)
{
    uint8_t *der = NULL;
    size_t n = 0;
    char msg[256], nope[512], junk[512];
    snprintf(nope, sizeof nope, "%s", tmp("nope.pem"));
    snprintf(junk, sizeof junk, "%s", tmp("junk.pem"));
    CU_ASSERT_EQUAL_FATAL(write_file(junk, "not a PEM file\n", 15), 0);
    dcmci_cms_recipients none = recipients(0, 0, NULL, 0), kek = recipients(1, 0, NULL, 0);
    /* Opening: what is missing, what cannot be read, what is not an envelope. */
    uint8_t *out = NULL;
    size_t out_len = 0;
    CU_ASSERT_EQUAL(dcmci_cms_open(g_all, g_all_len, &none, NULL, &out, &out_len, NULL, 0),
                    DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmci_cms_open(g_all, g_all_len, &kek, NULL, NULL, &out_len, NULL, 0),
                    DCMC_ERR_ARG);
    dcmci_cms_recipients no_id = {g_kek, NULL, NULL, 0, NULL, 0};
    CU_ASSERT_EQUAL(dcmci_cms_open(g_all, g_all_len, &no_id, NULL, &out, &out_len, NULL, 0),
                    DCMC_ERR_ARG);
    expect_open(g_all, g_all_len, NULL, nope, DCMC_ERR_IO);
    expect_open(g_all, g_all_len, NULL, junk, DCMC_ERR_KEY);
    expect_open(g_all, g_all_len, NULL, tmp("rsa_cert.pem"), DCMC_ERR_KEY);
    expect_open(g_all, g_all_len, NULL, tmp("ed_key.pem"), DCMC_ERR_UNSUPPORTED);
    expect_open(NULL, 0, &kek, NULL, DCMC_ERR_FORMAT);
    expect_open(g_content, sizeof g_content, &kek, NULL, DCMC_ERR_FORMAT);
    /* A CMS object that is not EnvelopedData. */
    BIO *in = BIO_new_mem_buf(g_content, 100);
    CMS_ContentInfo *data = in ? CMS_data_create(in, CMS_BINARY) : NULL;
    unsigned char *dd = NULL;
    int dn = data ? i2d_CMS_ContentInfo(data, &dd) : -1;
    CU_ASSERT_FATAL(dn > 0);
    expect_open(dd, (size_t)dn, &kek, NULL, DCMC_ERR_FORMAT);
    OPENSSL_free(dd);
    CMS_ContentInfo_free(data);
    BIO_free(in);
    /* 64 recipients open; 65 are refused before any private-key operation. */
    const char *many[64];
    char rsa_cert[512];
    snprintf(rsa_cert, sizeof rsa_cert, "%s", tmp("rsa_cert.pem"));
    for (size_t i = 0; i < 64; i++)
        many[i] = rsa_cert;
    for (size_t nc = 63; nc <= 64; nc++) {
        dcmci_cms_recipients to = recipients(1, 0, many, nc);
        CU_ASSERT_EQUAL_FATAL(
            dcmci_cms_envelope(g_content, sizeof g_content, &to, &der, &n, msg, sizeof msg),
            DCMC_OK);
        expect_open(der, n, &kek, NULL, nc == 63 ? DCMC_OK : DCMC_ERR_FORMAT);
        dcmc_free(der, n);
    }
    /* Empty content. */
    CU_ASSERT_EQUAL_FATAL(dcmci_cms_envelope(NULL, 0, &kek, &der, &n, msg, sizeof msg), DCMC_OK);
    CU_ASSERT_EQUAL(dcmci_cms_open(der, n, &kek, NULL, &out, &out_len, msg, sizeof msg), DCMC_OK);
    CU_ASSERT(out != NULL && out_len == 0);
    dcmc_free(out, out_len);
    dcmc_free(der, n);
}

/* ---- the openssl command line, both ways ---------------------------------------------------- */

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int run(const char *fmt, const char *a, const char *b, const char *c)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b, c);
    return system(cmd);
}

/* The file the openssl command wrote holds g_content. */
static int out_is_content(const char *path)
{
    size_t n = 0;
    uint8_t *b = slurp(path, &n);
    int same = b && n == sizeof g_content && memcmp(b, g_content, n) == 0;
    free(b);
    return same;
}

static void test_openssl_command_line(void)
{
    if (system("openssl version > /dev/null 2>&1") != 0) {
        fprintf(stderr, "(no openssl command: skipped) ");
        return;
    }
    char kek[65], id[33], secret[200], all[512], content[512], out[512];
    hex(g_kek, 32, kek);
    hex(g_kek_id, 16, id);
    snprintf(secret, sizeof secret, "-secretkey %s -secretkeyid %s", kek, id);
    snprintf(all, sizeof all, "%s", tmp("all.der"));
    snprintf(content, sizeof content, "%s", tmp("content.bin"));
    snprintf(out, sizeof out, "%s", tmp("out.bin"));
    CU_ASSERT_EQUAL_FATAL(write_file(all, g_all, g_all_len), 0);
    CU_ASSERT_EQUAL_FATAL(write_file(content, g_content, sizeof g_content), 0);
    /* Ours, opened by openssl cms with the RSA key, the EC key, the KEK, the password. */
    const char *dec = "openssl cms -decrypt -binary -inform DER -in %s -out %s %s 2>/dev/null";
    char opt[600];
    const char *means[] = {"rsa_key.pem", "ec_key.pem", NULL, NULL};
    for (int i = 0; i < 4; i++) {
        if (i < 2)
            snprintf(opt, sizeof opt, "-inkey %s", tmp(means[i]));
        else
            snprintf(opt, sizeof opt, "%s",
                     i == 2 ? secret : "-pwri_password 'correct horse battery staple'");
        unlink(out);
        CU_ASSERT_EQUAL(run(dec, all, out, opt), 0);
        CU_ASSERT(out_is_content(out));
    }
    /* Theirs (AES-256-CBC), opened here. */
    const char *enc =
        "openssl cms -encrypt -binary -aes256 -in %s -outform DER -out %s %s 2>/dev/null";
    dcmci_cms_recipients kr = recipients(1, 0, NULL, 0), pr = recipients(0, 1, NULL, 0);
    for (int i = 0; i < 4; i++) {
        if (i < 2)
            snprintf(opt, sizeof opt, "%s", tmp(i == 0 ? "rsa_cert.pem" : "ec_cert.pem"));
        else
            snprintf(opt, sizeof opt, "%s",
                     i == 2 ? secret : "-pwri_password 'correct horse battery staple'");
        char theirs[512];
        snprintf(theirs, sizeof theirs, "%s", tmp("theirs.der"));
        CU_ASSERT_EQUAL_FATAL(run(enc, content, theirs, opt), 0);
        size_t n = 0;
        uint8_t *der = slurp(theirs, &n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(der);
        const char *key = i == 0 ? tmp("rsa_key.pem") : i == 1 ? tmp("ec_key.pem") : NULL;
        expect_open(der, n, i == 2 ? &kr : i == 3 ? &pr : NULL, key, DCMC_OK);
        free(der);
    }
}

int dcmc_test_register_cms(void)
{
    static const dcmc_test_case cases[] = {
        {"KEK: independent HKDF, deterministic, per UID key", test_kek},
        {"each recipient alone", test_each_recipient_alone},
        {"all recipients in one envelope, each opens it alone", test_all_recipients},
        {"wrong KEK, password and private keys", test_wrong_keys},
        {"every truncation and every byte changed", test_damaged},
        {"hostile password recipients refused before PBKDF2", test_hostile_password_recipients},
        {"envelope: arguments, unreadable and unusable certificates", test_arguments_and_files},
        {"opening: arguments, key files, not an envelope, too many recipients",
         test_opening_arguments_and_files},
        {"openssl cms opens ours, we open theirs", test_openssl_command_line},
        {NULL, NULL},
    };
    CU_pSuite s = CU_add_suite("cms", suite_init, suite_clean);
    if (!s)
        return -1;
    for (const dcmc_test_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn))
            return -1;
    return 0;
}
