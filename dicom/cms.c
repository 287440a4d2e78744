/*
 * cms.c - CMS EnvelopedData (RFC 5652) for the Encrypted Attributes Sequence, with OpenSSL's CMS
 * API: the content under AES-256-CBC, its key for a KEK (RFC 3394 AES key wrap), a password
 * (RFC 3211, PBKDF2) and X.509 certificates (RSA PKCS #1 v1.5 key transport, as PS3.15 E.1.1 via
 * RFC 3370 and gdcmanon; EC certificates get key agreement). Opening refuses what would make
 * OpenSSL crash or spin on a hostile file (see "Password recipients on opening").
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cms.h"

#define KEK_BYTES 32
#define KEK_ID_BYTES 16

/* PBKDF2 iterations of the password recipient. The envelope is in every file, so one file is
 * enough to guess passwords offline, as fast as PBKDF2 allows. OpenSSL's CMS fixes the PRF to
 * HMAC-SHA1 and derives the 32-byte AES-256 KEK, two SHA-1 blocks: 650 000 iterations cost
 * 1.3 million HMAC-SHA1 per guess, OWASP's 2023 figure for PBKDF2-HMAC-SHA1. Measured: about
 * 0.3 to 0.45 s per envelope, and again per opening with the password (one core of a shared
 * AMD EPYC VM, OpenSSL 3.0.19; `openssl kdf` with the same parameters takes as long). */
#define PBKDF2_ITERATIONS 650000L
/* Opening: the most PBKDF2 iterations a file may ask for, over all its password recipients
 * (OpenSSL has no bound): twice ours, so under a second; gdcmanon and openssl cms write 2048. */
#define PBKDF2_MAX_WORK 1300000L
/* Opening: more recipients than this is not an envelope anyone wrote for a few readers. It
 * bounds the private-key operations a hostile file can ask for (all are tried, see open_pkey). */
#define MAX_RECIPIENTS 64

/* ---- helpers --------------------------------------------------------------------------------- */

/* OpenSSL's reason for the latest failure, for a message ("" when it gave none). */
static const char *ossl_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    return r ? r : "";
}

/* A status with its one-line message (msg may be NULL). */
static dcmc_status fail(dcmc_status st, char *msg, size_t msg_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static dcmc_status fail(dcmc_status st, char *msg, size_t msg_len, const char *fmt, ...)
{
    if (msg && msg_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_len, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* HKDF-SHA256 (RFC 5869) without salt: out_len bytes for the label `info`. */
static int hkdf_sha256(const uint8_t *key, size_t key_len, const char *info, uint8_t *out,
                       size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        return 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end()};
    int ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok;
}

/* A malloc'd copy of a memory BIO's bytes (released with dcmc_free, which frees with free()). */
static dcmc_status take_bio(BIO *b, uint8_t **out, size_t *out_len)
{
    BUF_MEM *bm = NULL;
    if (BIO_get_mem_ptr(b, &bm) <= 0 || bm == NULL)
        return DCMC_ERR_CRYPTO;
    uint8_t *p = malloc(bm->length ? bm->length : 1);
    if (p == NULL)
        return DCMC_ERR_NOMEM;
    if (bm->length)
        memcpy(p, bm->data, bm->length);
    *out = p;
    *out_len = bm->length;
    return DCMC_OK;
}

/* Never prompt on the terminal for an encrypted PEM key (OpenSSL's default callback does). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* A key OpenSSL's CMS can give a content key to: RSA (key transport), EC or DH (key agreement).
 * OpenSSL takes any other kind for key transport and fails late, without a useful reason. */
static int cms_capable(const EVP_PKEY *k)
{
    return EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "EC") || EVP_PKEY_is_a(k, "DH") ||
           EVP_PKEY_is_a(k, "DHX");
}

static const char *key_type(const EVP_PKEY *k)
{
    const char *t = k ? EVP_PKEY_get0_type_name(k) : NULL;
    return t ? t : "unknown";
}

dcmc_status dcmci_cms_kek(const uint8_t uid_key[32], uint8_t kek[32], uint8_t kek_id[16])
{
    if (kek)
        memset(kek, 0, KEK_BYTES);
    if (kek_id)
        memset(kek_id, 0, KEK_ID_BYTES);
    if (uid_key == NULL || kek == NULL || kek_id == NULL)
        return DCMC_ERR_ARG;
    ERR_set_mark();
    int ok = hkdf_sha256(uid_key, 32, "dcmcrypt/1/eas-kek", kek, KEK_BYTES) &&
             hkdf_sha256(uid_key, 32, "dcmcrypt/1/eas-kek-id", kek_id, KEK_ID_BYTES);
    ERR_pop_to_mark();
    if (!ok) {
        dcmc_wipe(kek, KEK_BYTES);
        dcmc_wipe(kek_id, KEK_ID_BYTES);
        return DCMC_ERR_CRYPTO;
    }
    return DCMC_OK;
}

/* ---- building -------------------------------------------------------------------------------- */

/* The KEK recipient. CMS_add0_recipient_key takes the key and id (OpenSSL-allocated; the key is
 * cleansed when the envelope is freed) only when it succeeds. */
static dcmc_status add_kek(CMS_ContentInfo *cms, const uint8_t *kek, const uint8_t *kek_id,
                           char *msg, size_t msg_len)
{
    unsigned char *k = OPENSSL_malloc(KEK_BYTES), *id = OPENSSL_malloc(KEK_ID_BYTES);
    if (k == NULL || id == NULL) {
        OPENSSL_free(k);
        OPENSSL_free(id);
        return DCMC_ERR_NOMEM;
    }
    memcpy(k, kek, KEK_BYTES);
    memcpy(id, kek_id, KEK_ID_BYTES);
    if (CMS_add0_recipient_key(cms, NID_id_aes256_wrap, k, KEK_BYTES, id, KEK_ID_BYTES, NULL, NULL,
                               NULL) == NULL) {
        OPENSSL_clear_free(k, KEK_BYTES);
        OPENSSL_free(id);
        return fail(DCMC_ERR_CRYPTO, msg, msg_len, "cannot add the key recipient: %s",
                    ossl_reason());
    }
    return DCMC_OK;
}

/* The password recipient: PBKDF2, then the RFC 3211 wrap under AES-256-CBC (the content cipher,
 * as gdcmanon -p writes). The password is attached after the recipient exists, so that its
 * ownership is never in doubt (the recipient cleanses it when the envelope is freed). */
static dcmc_status add_password(CMS_ContentInfo *cms, const char *pw, size_t pw_len, char *msg,
                                size_t msg_len)
{
    CMS_RecipientInfo *ri = CMS_add0_recipient_password(
        cms, (int)PBKDF2_ITERATIONS, NID_id_alg_PWRI_KEK, NID_id_pbkdf2, NULL, 0, NULL);
    if (ri == NULL)
        return fail(DCMC_ERR_CRYPTO, msg, msg_len, "cannot add the password recipient: %s",
                    ossl_reason());
    unsigned char *p = OPENSSL_malloc(pw_len);
    if (p == NULL)
        return DCMC_ERR_NOMEM;
    memcpy(p, pw, pw_len);
    if (!CMS_RecipientInfo_set0_password(ri, p, (ossl_ssize_t)pw_len)) {
        OPENSSL_clear_free(p, pw_len);
        return fail(DCMC_ERR_CRYPTO, msg, msg_len, "cannot set the password: %s", ossl_reason());
    }
    return DCMC_OK;
}

/* A certificate recipient from a PEM file: key transport (RSA, PKCS #1 v1.5) or key agreement
 * (EC: ephemeral-static ECDH, X9.63 KDF, AES key wrap), as OpenSSL chooses for the key. */
static dcmc_status add_cert(CMS_ContentInfo *cms, const char *path, char *msg, size_t msg_len)
{
    if (path == NULL)
        return fail(DCMC_ERR_ARG, msg, msg_len, "a certificate file name is NULL");
    errno = 0;
    BIO *b = BIO_new_file(path, "r");
    if (b == NULL) {
        int e = errno;
        return fail(DCMC_ERR_IO, msg, msg_len, "cannot read certificate file %s: %s", path,
                    e ? strerror(e) : ossl_reason());
    }
    X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (x == NULL)
        return fail(DCMC_ERR_FORMAT, msg, msg_len, "%s holds no PEM certificate: %s", path,
                    ossl_reason());
    EVP_PKEY *k = X509_get0_pubkey(x);
    dcmc_status st = DCMC_OK;
    if (k == NULL || !cms_capable(k) || CMS_add1_recipient_cert(cms, x, 0) == NULL)
        st = fail(DCMC_ERR_FORMAT, msg, msg_len,
                  "the %s key of certificate %s cannot receive a CMS envelope", key_type(k), path);
    X509_free(x); /* a recipient holds its own reference */
    return st;
}

static dcmc_status check_recipients(const dcmci_cms_recipients *to, char *msg, size_t msg_len)
{
    if (to->kek == NULL && to->password == NULL && to->n_certs == 0)
        return fail(DCMC_ERR_ARG, msg, msg_len, "a CMS envelope needs at least one recipient");
    if ((to->kek != NULL && to->kek_id == NULL) || (to->n_certs > 0 && to->cert_files == NULL))
        return DCMC_ERR_ARG;
    if (to->password != NULL && to->password_len == 0)
        return fail(DCMC_ERR_KEY, msg, msg_len, "the envelope password is empty");
    if (to->password_len > INT_MAX) /* PBKDF2 takes an int length */
        return DCMC_ERR_ARG;
    return DCMC_OK;
}

/* Recipients, content, then the DER. */
static dcmc_status build(CMS_ContentInfo *cms, const uint8_t *content, size_t content_len,
                         const dcmci_cms_recipients *to, uint8_t **der, size_t *der_len, char *msg,
                         size_t msg_len)
{
    dcmc_status st = DCMC_OK;
    if (to->kek)
        st = add_kek(cms, to->kek, to->kek_id, msg, msg_len);
    if (st == DCMC_OK && to->password)
        st = add_password(cms, to->password, to->password_len, msg, msg_len);
    for (size_t i = 0; st == DCMC_OK && i < to->n_certs; i++)
        st = add_cert(cms, to->cert_files[i], msg, msg_len);
    if (st != DCMC_OK)
        return st;
    /* CMS_BINARY: the content is copied as it is (without it, LF would become CR LF). */
    BIO *in = BIO_new_mem_buf(content_len ? (const void *)content : "", (int)content_len);
    if (in == NULL)
        return DCMC_ERR_NOMEM;
    int ok = CMS_final(cms, in, NULL, CMS_BINARY);
    BIO_free(in);
    if (!ok)
        return fail(DCMC_ERR_CRYPTO, msg, msg_len, "cannot encrypt the CMS envelope: %s",
                    ossl_reason());
    int n = i2d_CMS_ContentInfo(cms, NULL);
    if (n <= 0)
        return fail(DCMC_ERR_CRYPTO, msg, msg_len, "cannot encode the CMS envelope: %s",
                    ossl_reason());
    uint8_t *buf = malloc((size_t)n);
    if (buf == NULL)
        return DCMC_ERR_NOMEM;
    unsigned char *p = buf;
    if (i2d_CMS_ContentInfo(cms, &p) != n) {
        free(buf);
        return fail(DCMC_ERR_CRYPTO, msg, msg_len, "cannot encode the CMS envelope");
    }
    *der = buf;
    *der_len = (size_t)n;
    return DCMC_OK;
}

dcmc_status dcmci_cms_envelope(const uint8_t *content, size_t content_len,
                               const dcmci_cms_recipients *to, uint8_t **der, size_t *der_len,
                               char *msg, size_t msg_len)
{
    if (der)
        *der = NULL;
    if (der_len)
        *der_len = 0;
    if (msg && msg_len)
        msg[0] = '\0';
    if ((content == NULL && content_len > 0) || to == NULL || der == NULL || der_len == NULL)
        return DCMC_ERR_ARG;
    if (content_len > INT_MAX) /* a memory BIO's length is an int */
        return fail(DCMC_ERR_OVERFLOW, msg, msg_len, "the content is too large for CMS");
    dcmc_status st = check_recipients(to, msg, msg_len);
    if (st != DCMC_OK)
        return st;
    ERR_set_mark();
    /* CMS_PARTIAL: recipients are added before CMS_final encrypts. */
    CMS_ContentInfo *cms = CMS_encrypt_ex(NULL, NULL, EVP_aes_256_cbc(), CMS_PARTIAL | CMS_BINARY,
                                          NULL, NULL);
    if (cms == NULL)
        st = fail(DCMC_ERR_CRYPTO, msg, msg_len, "cannot create a CMS envelope: %s", ossl_reason());
    else
        st = build(cms, content, content_len, to, der, der_len, msg, msg_len);
    CMS_ContentInfo_free(cms); /* cleanses the content key, the KEK and the password */
    ERR_pop_to_mark();
    return st;
}

/* ---- password recipients on opening -----------------------------------------------------------
 * OpenSSL 3.0 derives a password recipient's key with whatever derivation the file names, with
 * no bound on its cost (PBKDF2 at 2^31 iterations is half an hour), and it dereferences a
 * missing keyDerivationAlgorithm, which RFC 3211 makes OPTIONAL (`openssl cms -decrypt
 * -pwri_password` on such a file segfaults, 3.0.19). It has no getter for either. So before a
 * password is offered, each PasswordRecipientInfo is read here, with OpenSSL's DER reader, from
 * OpenSSL's own re-encoding of the envelope (definite lengths only): PBKDF2 must be there, and
 * the iterations of all of them are bounded. Nothing is decoded by hand beyond tags and lengths. */

typedef struct {
    const unsigned char *p, *end;
} der_span;

/* The next element of s (its tag, class and contents); s moves past it. 0 if malformed. */
static int der_next(der_span *s, int *tag, int *cls, der_span *body)
{
    const unsigned char *q = s->p;
    long len = 0;
    if (s->p >= s->end)
        return 0;
    int r = ASN1_get_object(&q, &len, tag, cls, s->end - s->p);
    if ((r & 0x80) != 0 || (r & 0x01) != 0) /* malformed, or indefinite length */
        return 0;
    body->p = q;
    body->end = q + len; /* ASN1_get_object has checked len against what is left */
    s->p = body->end;
    return 1;
}

/* The PBKDF2 iterations of one PasswordRecipientInfo ([3] IMPLICIT: its fields), 0 if it has no
 * PBKDF2 keyDerivationAlgorithm ([0] IMPLICIT AlgorithmIdentifier) with a positive count. */
static long pwri_iterations(der_span pw)
{
    int tag, cls;
    der_span e;
    if (!der_next(&pw, &tag, &cls, &e) || cls != V_ASN1_UNIVERSAL || tag != V_ASN1_INTEGER)
        return 0;
    if (!der_next(&pw, &tag, &cls, &e) || cls != V_ASN1_CONTEXT_SPECIFIC || tag != 0)
        return 0;
    const unsigned char *p = e.p;
    ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, e.end - p);
    int nid = oid ? OBJ_obj2nid(oid) : NID_undef;
    ASN1_OBJECT_free(oid);
    if (nid != NID_id_pbkdf2 || p >= e.end)
        return 0;
    PBKDF2PARAM *kdf = d2i_PBKDF2PARAM(NULL, &p, e.end - p);
    long iter = kdf && kdf->iter ? ASN1_INTEGER_get(kdf->iter) : 0; /* -1 when too large */
    PBKDF2PARAM_free(kdf);
    return iter > 0 ? iter : 0;
}

/* The PBKDF2 iterations of all password recipients of a DER ContentInfo holding EnvelopedData,
 * or -1 if one of them cannot be opened safely or they ask for more than PBKDF2_MAX_WORK. */
static long pwri_work(const unsigned char *der, long n)
{
    der_span s = {der, der + n}, ci, c0, env, ris, e;
    int tag, cls;
    if (!der_next(&s, &tag, &cls, &ci) || !der_next(&ci, &tag, &cls, &e) /* contentType */
        || !der_next(&ci, &tag, &cls, &c0) || cls != V_ASN1_CONTEXT_SPECIFIC || tag != 0 ||
        !der_next(&c0, &tag, &cls, &env) || tag != V_ASN1_SEQUENCE ||
        !der_next(&env, &tag, &cls, &e) /* version */ || !der_next(&env, &tag, &cls, &ris))
        return -1;
    if (cls == V_ASN1_CONTEXT_SPECIFIC && !der_next(&env, &tag, &cls, &ris)) /* originatorInfo */
        return -1;
    if (cls != V_ASN1_UNIVERSAL || tag != V_ASN1_SET)
        return -1;
    long work = 0;
    while (ris.p < ris.end) {
        der_span ri;
        if (!der_next(&ris, &tag, &cls, &ri))
            return -1;
        if (cls != V_ASN1_CONTEXT_SPECIFIC || tag != 3)
            continue;
        long it = pwri_iterations(ri);
        if (it <= 0 || it > PBKDF2_MAX_WORK - work)
            return -1;
        work += it;
    }
    return work;
}

/* ---- opening --------------------------------------------------------------------------------- */

/* The content, once a recipient has set the content key. Failing here, after a recipient that
 * checks its key (key wrap, RFC 3211 check bytes, key agreement) said yes: the content is
 * damaged (DCMC_ERR_INTEGRITY, with CBC only its padding can tell). */
static dcmc_status decrypt_content(CMS_ContentInfo *cms, uint8_t **content, size_t *content_len)
{
    BIO *out = BIO_new(BIO_s_mem());
    if (out == NULL)
        return DCMC_ERR_NOMEM;
    dcmc_status st = CMS_decrypt(cms, NULL, NULL, NULL, out, CMS_BINARY)
                         ? take_bio(out, content, content_len)
                         : DCMC_ERR_INTEGRITY;
    BIO_free(out); /* a memory BIO cleanses its buffer when freed */
    return st;
}

static dcmc_status open_kek(CMS_ContentInfo *cms, const dcmci_cms_recipients *with,
                            uint8_t **content, size_t *content_len)
{
    /* OpenSSL lends the key to the recipient for the unwrap and takes it back: not written. */
    if (!CMS_decrypt_set1_key(cms, (unsigned char *)with->kek, KEK_BYTES, with->kek_id,
                              KEK_ID_BYTES))
        return DCMC_ERR_WRONG_KEY;
    return decrypt_content(cms, content, content_len);
}

static dcmc_status open_password(CMS_ContentInfo *cms, const dcmci_cms_recipients *with,
                                 uint8_t **content, size_t *content_len, char *msg, size_t msg_len)
{
    if (with->password_len == 0 || with->password_len > INT_MAX)
        return fail(DCMC_ERR_KEY, msg, msg_len, "the password is empty or too long");
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    long work = n > 0 ? pwri_work(der, n) : -1;
    OPENSSL_free(der);
    if (work < 0)
        return fail(DCMC_ERR_FORMAT, msg, msg_len,
                    "a password recipient of the CMS envelope is malformed or asks for more "
                    "than %ld PBKDF2 iterations",
                    PBKDF2_MAX_WORK);
    /* Lent to each password recipient in turn and taken back: not written. */
    if (!CMS_decrypt_set1_password(cms, (unsigned char *)with->password,
                                   (ossl_ssize_t)with->password_len))
        return DCMC_ERR_WRONG_KEY;
    return decrypt_content(cms, content, content_len);
}

/* The private key of a PEM file and, when the file holds it too (a bundle), the certificate of
 * that key: with it the recipient is found by its identifier instead of by trying. */
static dcmc_status read_key(const char *path, EVP_PKEY **pkey, X509 **cert, char *msg,
                            size_t msg_len)
{
    errno = 0;
    BIO *b = BIO_new_file(path, "r");
    if (b == NULL) {
        int e = errno;
        return fail(DCMC_ERR_IO, msg, msg_len, "cannot read key file %s: %s", path,
                    e ? strerror(e) : ossl_reason());
    }
    *pkey = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    if (*pkey == NULL) {
        BIO_free(b);
        return fail(DCMC_ERR_KEY, msg, msg_len, "%s holds no unencrypted PEM private key: %s", path,
                    ossl_reason());
    }
    /* From the start again: the certificate may come before the key. */
    if (BIO_seek(b, 0) == 0) {
        X509 *x;
        while (*cert == NULL && (x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
            if (X509_check_private_key(x, *pkey) == 1)
                *cert = x;
            else
                X509_free(x);
        }
    }
    BIO_free(b);
    return DCMC_OK;
}

/* With a private key. For RSA without its certificate OpenSSL tries every key-transport
 * recipient and, so as not to be a Bleichenbacher oracle, goes on with a random content key
 * when none decrypts: then only the CBC padding of the content tells a wrong key, and about 1
 * time in 256 it does not, and garbage comes back as content (the dataset parse that follows
 * rejects it). With the certificate (a bundle) or with key agreement (EC) the answer is exact. */
static dcmc_status open_pkey(CMS_ContentInfo *cms, EVP_PKEY *pkey, X509 *cert, uint8_t **content,
                             size_t *content_len)
{
    /* As CMS_decrypt does before its own call to CMS_decrypt_set1_pkey: no debug mode, so the
     * countermeasure above stays on (this call returns at once, having set only that). */
    (void)CMS_decrypt(cms, NULL, NULL, NULL, NULL, CMS_BINARY);
    if (!CMS_decrypt_set1_pkey(cms, pkey, cert))
        return DCMC_ERR_WRONG_KEY;
    dcmc_status st = decrypt_content(cms, content, content_len);
    int guessed = cert == NULL && EVP_PKEY_is_a(pkey, "RSA");
    return st == DCMC_ERR_INTEGRITY && guessed ? DCMC_ERR_WRONG_KEY : st;
}

static dcmc_status open_key_file(CMS_ContentInfo *cms, const char *key_file, uint8_t **content,
                                 size_t *content_len, char *msg, size_t msg_len)
{
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    dcmc_status st = read_key(key_file, &pkey, &cert, msg, msg_len);
    if (st == DCMC_OK && !cms_capable(pkey))
        st = fail(DCMC_ERR_UNSUPPORTED, msg, msg_len, "the %s key in %s cannot open CMS envelopes",
                  key_type(pkey), key_file);
    if (st == DCMC_OK)
        st = open_pkey(cms, pkey, cert, content, content_len);
    X509_free(cert);
    EVP_PKEY_free(pkey); /* cleanses the private key */
    return st;
}

/* The envelope in a DER (or BER) ContentInfo: EnvelopedData with its content inside, a
 * reasonable number of recipients, and nothing after it but DICOM's even-length padding. */
static dcmc_status parse(const uint8_t *der, size_t der_len, CMS_ContentInfo **out, char *msg,
                         size_t msg_len)
{
    if (der_len == 0 || der_len > INT_MAX)
        return fail(DCMC_ERR_FORMAT, msg, msg_len, "the CMS envelope is empty or too large");
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len);
    if (cms == NULL)
        return fail(DCMC_ERR_FORMAT, msg, msg_len, "not a CMS object: %s", ossl_reason());
    size_t rest = der_len - (size_t)(p - der);
    const char *why = NULL;
    if (rest > 1 || (rest == 1 && *p != 0))
        why = "bytes follow the CMS object";
    else if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped)
        why = "the CMS object is not EnvelopedData";
    else if (CMS_get0_content(cms) == NULL || *CMS_get0_content(cms) == NULL)
        why = "the CMS envelope holds no encrypted content";
    else if (sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(cms)) < 1 ||
             sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(cms)) > MAX_RECIPIENTS)
        why = "the CMS envelope has no recipient or too many";
    if (why) {
        CMS_ContentInfo_free(cms);
        return fail(DCMC_ERR_FORMAT, msg, msg_len, "%s", why);
    }
    *out = cms;
    return DCMC_OK;
}

/* Each means the caller gave, cheapest first. The first failure other than "not for this key"
 * (a damaged content, an unreadable key file...) is the answer, with its message. */
static dcmc_status open_with(CMS_ContentInfo *cms, const dcmci_cms_recipients *with,
                             const char *key_file, uint8_t **content, size_t *content_len,
                             char *msg, size_t msg_len)
{
    dcmc_status st = DCMC_ERR_WRONG_KEY;
    for (int means = 0; means < 3; means++) {
        char *m = st == DCMC_ERR_WRONG_KEY ? msg : NULL;
        dcmc_status r;
        if (means == 0 && with && with->kek)
            r = open_kek(cms, with, content, content_len);
        else if (means == 1 && key_file)
            r = open_key_file(cms, key_file, content, content_len, m, msg_len);
        else if (means == 2 && with && with->password)
            r = open_password(cms, with, content, content_len, m, msg_len);
        else
            continue;
        if (r == DCMC_OK) {
            if (msg && msg_len)
                msg[0] = '\0';
            return DCMC_OK;
        }
        if (r == DCMC_ERR_INTEGRITY && m)
            fail(r, m, msg_len, "the encrypted content of the CMS envelope is damaged");
        if (st == DCMC_ERR_WRONG_KEY)
            st = r;
    }
    if (st == DCMC_ERR_WRONG_KEY)
        fail(st, msg, msg_len, "no recipient of the CMS envelope opens with the key given");
    return st;
}

dcmc_status dcmci_cms_open(const uint8_t *der, size_t der_len, const dcmci_cms_recipients *with,
                           const char *key_file, uint8_t **content, size_t *content_len, char *msg,
                           size_t msg_len)
{
    if (content)
        *content = NULL;
    if (content_len)
        *content_len = 0;
    if (msg && msg_len)
        msg[0] = '\0';
    int kek = with && with->kek, pw = with && with->password;
    if ((der == NULL && der_len > 0) || content == NULL || content_len == NULL ||
        (!kek && !pw && key_file == NULL) || (kek && with->kek_id == NULL))
        return DCMC_ERR_ARG;
    ERR_set_mark();
    CMS_ContentInfo *cms = NULL;
    dcmc_status st = parse(der, der_len, &cms, msg, msg_len);
    if (st == DCMC_OK)
        st = open_with(cms, with, key_file, content, content_len, msg, msg_len);
    CMS_ContentInfo_free(cms); /* cleanses the content key */
    ERR_pop_to_mark();
    return st;
}
