/*
 * keys.c - master keys (key files, scrypt passphrases, the CSPRNG) and the standard primitives
 * the cipher draws on: HKDF subkeys, ChaCha20 keystreams and HMAC-SHA256, all from OpenSSL's
 * libcrypto. Every buffer that held key material is wiped before it is released.
 */
#define _POSIX_C_SOURCE 200809L
#include "cipher/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

/* A key file is 32 raw bytes or 64 hex digits plus whitespace: anything larger is not a key. */
#define KEY_FILE_MAX 256
#define KEY_HEX_DIGITS ((size_t)2 * DCMC_KEY_BYTES)

/* OpenSSL takes int lengths: anything larger is fed in chunks of this many bytes (<= INT_MAX, a
 * multiple of every block size, so chunking does not change a byte of the output). */
#define EVP_CHUNK ((size_t)1 << 30)

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

dcmc_status dcmc_key_parse(const uint8_t *data, size_t len, dcmc_key *key)
{
    if (key == NULL)
        return DCMC_ERR_ARG;
    memset(key, 0, sizeof *key);
    if (data == NULL)
        return DCMC_ERR_ARG;
    size_t hexlen = 0;
    while (hexlen < len && hexval(data[hexlen]) >= 0)
        hexlen++;
    if (hexlen == KEY_HEX_DIGITS) {
        size_t i = hexlen;
        while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
            i++;
        if (i == len) {
            for (size_t b = 0; b < DCMC_KEY_BYTES; b++)
                key->bytes[b] = (uint8_t)(hexval(data[2 * b]) << 4 | hexval(data[2 * b + 1]));
            return DCMC_OK;
        }
    }
    if (len == DCMC_KEY_BYTES) {
        memcpy(key->bytes, data, DCMC_KEY_BYTES);
        return DCMC_OK;
    }
    return DCMC_ERR_KEY;
}

dcmc_status dcmc_key_read_file(const char *path, dcmc_key *key)
{
    if (key == NULL)
        return DCMC_ERR_ARG;
    memset(key, 0, sizeof *key);
    if (path == NULL)
        return DCMC_ERR_ARG;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return DCMC_ERR_IO;
    uint8_t buf[KEY_FILE_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    int err = ferror(f);
    fclose(f);
    dcmc_status st;
    if (err)
        st = DCMC_ERR_IO;
    else if (n > KEY_FILE_MAX)
        st = DCMC_ERR_KEY;
    else
        st = dcmc_key_parse(buf, n, key);
    dcmc_wipe(buf, sizeof buf);
    return st;
}

dcmc_status dcmc_key_generate(dcmc_key *key)
{
    if (key == NULL)
        return DCMC_ERR_ARG;
    if (RAND_bytes(key->bytes, DCMC_KEY_BYTES) != 1) {
        dcmc_wipe(key, sizeof *key);
        return DCMC_ERR_CRYPTO;
    }
    return DCMC_OK;
}

dcmc_status dcmc_key_write_file(const char *path, const dcmc_key *key)
{
    if (path == NULL || key == NULL)
        return DCMC_ERR_ARG;
    static const char hex[] = "0123456789abcdef";
    char buf[KEY_HEX_DIGITS + 1];
    for (size_t i = 0; i < DCMC_KEY_BYTES; i++) {
        buf[2 * i] = hex[key->bytes[i] >> 4];
        buf[2 * i + 1] = hex[key->bytes[i] & 15];
    }
    buf[KEY_HEX_DIGITS] = '\n';
    /* O_EXCL: a key file is never silently replaced (it may be the only copy of a key). */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    dcmc_status st = DCMC_OK;
    if (fd < 0) {
        st = DCMC_ERR_IO;
    } else {
        size_t off = 0;
        while (off < sizeof buf) {
            ssize_t w = write(fd, buf + off, sizeof buf - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                st = DCMC_ERR_IO;
                break;
            }
            off += (size_t)w;
        }
        if (st == DCMC_OK && fsync(fd) != 0)
            st = DCMC_ERR_IO;
        if (close(fd) != 0)
            st = DCMC_ERR_IO;
        if (st != DCMC_OK)
            unlink(path);
    }
    dcmc_wipe(buf, sizeof buf);
    return st;
}

dcmc_status dcmc_kdf_new_scrypt(dcmc_kdf *kdf)
{
    if (kdf == NULL)
        return DCMC_ERR_ARG;
    memset(kdf, 0, sizeof *kdf);
    kdf->id = DCMC_KDF_SCRYPT;
    kdf->log2_n = DCMC_SCRYPT_LOG2N_DEFAULT;
    kdf->r = DCMC_SCRYPT_R_DEFAULT;
    kdf->p = DCMC_SCRYPT_P_DEFAULT;
    if (RAND_bytes(kdf->salt, DCMC_SALT_BYTES) != 1)
        return DCMC_ERR_CRYPTO;
    return DCMC_OK;
}

uint64_t dcmc_kdf_cost_mib(const dcmc_kdf *kdf)
{
    if (kdf == NULL || kdf->id != DCMC_KDF_SCRYPT || kdf->log2_n > 40)
        return 0;
    const uint64_t bytes = 128ull * kdf->r * ((uint64_t)1 << kdf->log2_n) * kdf->p;
    return (bytes + (1u << 20) - 1) >> 20;
}

dcmc_status dcmc_key_from_passphrase_max(const char *pass, size_t pass_len, const dcmc_kdf *kdf,
                                         uint64_t max_mib, dcmc_key *key)
{
    if (key == NULL)
        return DCMC_ERR_ARG;
    memset(key, 0, sizeof *key);
    if (pass == NULL || kdf == NULL)
        return DCMC_ERR_ARG;
    if (pass_len == 0)
        return DCMC_ERR_KEY;
    if (kdf->id != DCMC_KDF_SCRYPT)
        return DCMC_ERR_ARG;
    if (kdf->log2_n < 10 || kdf->log2_n > 22 || kdf->r < 1 || kdf->r > 32 || kdf->p < 1 ||
        kdf->p > 16)
        return DCMC_ERR_FORMAT;
    /* The parameters come from an unauthenticated header: the cost is bounded before any work. */
    if (dcmc_kdf_cost_mib(kdf) > max_mib)
        return DCMC_ERR_KDF_COST;
    uint64_t n = (uint64_t)1 << kdf->log2_n;
    /* scrypt needs about 128*r*(N + p) bytes, plus slack for OpenSSL's own buffers. */
    uint64_t need = 128ull * kdf->r * (n + kdf->p) + (1u << 20);
    if (EVP_PBE_scrypt(pass, pass_len, kdf->salt, DCMC_SALT_BYTES, n, kdf->r, kdf->p, need,
                       key->bytes, DCMC_KEY_BYTES) != 1) {
        dcmc_wipe(key, sizeof *key);
        return DCMC_ERR_CRYPTO;
    }
    return DCMC_OK;
}

dcmc_status dcmc_key_from_passphrase(const char *pass, size_t pass_len, const dcmc_kdf *kdf,
                                     dcmc_key *key)
{
    return dcmc_key_from_passphrase_max(pass, pass_len, kdf, DCMC_SCRYPT_MAX_MIB_DEFAULT, key);
}

/* ---- HKDF ------------------------------------------------------------------------------------ */

static dcmc_status hkdf(int mode, const uint8_t *key, size_t key_len, const uint8_t *salt,
                        size_t salt_len, const uint8_t *info, size_t info_len, uint8_t out[32])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (kdf == NULL)
        return DCMC_ERR_CRYPTO;
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        return DCMC_ERR_CRYPTO;
    OSSL_PARAM params[6], *p = params;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    if (salt)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    *p = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(ctx, out, 32, params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok ? DCMC_OK : DCMC_ERR_CRYPTO;
}

dcmc_status dcmci_prk_derive(const dcmc_key *key, const uint8_t nonce[DCMC_NONCE_BYTES],
                            uint8_t prk[32])
{
    return hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, key->bytes, DCMC_KEY_BYTES, nonce,
                DCMC_NONCE_BYTES, NULL, 0, prk);
}

dcmc_status dcmci_subkey(const uint8_t prk[32], const char *label, uint32_t frame, uint8_t out[32])
{
    uint8_t info[64];
    static const char prefix[] = "dcmcrypt/1/";
    size_t pl = sizeof prefix - 1, ll = strlen(label);
    if (pl + ll + 4 > sizeof info)
        return DCMC_ERR_ARG;
    memcpy(info, prefix, pl);
    memcpy(info + pl, label, ll); /* NOLINT(bugprone-not-null-terminated-result): binary info */
    dcmci_store32be(info + pl + ll, frame);
    return hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, 32, NULL, 0, info, pl + ll + 4, out);
}

/* ---- ChaCha20 -------------------------------------------------------------------------------- */

/* XOR the cipher's next n keystream bytes into buf; OpenSSL's int lengths are fed in chunks. */
static int update_in_place(EVP_CIPHER_CTX *ctx, uint8_t *buf, size_t n)
{
    int ok = 1;
    for (size_t off = 0; ok && off < n;) {
        const size_t chunk = n - off > EVP_CHUNK ? EVP_CHUNK : n - off;
        int outl = 0;
        ok = EVP_EncryptUpdate(ctx, buf + off, &outl, buf + off, (int)chunk) == 1 &&
             (size_t)outl == chunk;
        off += chunk;
    }
    return ok;
}

dcmc_status dcmci_stream_xor(const EVP_CIPHER *cipher, const uint8_t *key, const uint8_t *iv,
                             uint8_t *buf, size_t n)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return DCMC_ERR_CRYPTO;
    int ok = EVP_EncryptInit_ex(ctx, cipher, NULL, key, iv) == 1 && update_in_place(ctx, buf, n);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? DCMC_OK : DCMC_ERR_CRYPTO;
}

dcmc_status dcmci_chacha20_xor(const uint8_t key[32], uint8_t *buf, size_t n)
{
    static const uint8_t iv[16] = {0};
    return dcmci_stream_xor(EVP_chacha20(), key, iv, buf, n);
}

dcmc_status dcmci_chacha20_stream(const uint8_t key[32], uint8_t *buf, size_t n)
{
    memset(buf, 0, n);
    return dcmci_chacha20_xor(key, buf, n);
}

dcmc_status dcmci_chacha20_open(dcmci_chacha20 *g, const uint8_t key[32])
{
    static const uint8_t iv[16] = {0};
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    g->ctx = ctx;
    if (ctx == NULL)
        return DCMC_ERR_CRYPTO;
    if (EVP_EncryptInit_ex(ctx, EVP_chacha20(), NULL, key, iv) != 1) {
        dcmci_chacha20_close(g);
        return DCMC_ERR_CRYPTO;
    }
    return DCMC_OK;
}

dcmc_status dcmci_chacha20_next(dcmci_chacha20 *g, uint8_t *buf, size_t n)
{
    memset(buf, 0, n);
    return update_in_place((EVP_CIPHER_CTX *)g->ctx, buf, n) ? DCMC_OK : DCMC_ERR_CRYPTO;
}

void dcmci_chacha20_close(dcmci_chacha20 *g)
{
    EVP_CIPHER_CTX_free((EVP_CIPHER_CTX *)g->ctx); /* cleanses the key schedule */
    g->ctx = NULL;
}

/* ---- HMAC-SHA256 ----------------------------------------------------------------------------- */

dcmc_status dcmci_mac_init(dcmci_mac *m, const uint8_t key[32])
{
    m->ctx = NULL;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        return DCMC_ERR_CRYPTO;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (ctx == NULL)
        return DCMC_ERR_CRYPTO;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, 32, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return DCMC_ERR_CRYPTO;
    }
    m->ctx = ctx;
    return DCMC_OK;
}

dcmc_status dcmci_mac_update(dcmci_mac *m, const uint8_t *data, size_t n)
{
    if (n == 0)
        return DCMC_OK;
    return EVP_MAC_update((EVP_MAC_CTX *)m->ctx, data, n) == 1 ? DCMC_OK : DCMC_ERR_CRYPTO;
}

dcmc_status dcmci_mac_final(dcmci_mac *m, uint8_t out[DCMC_MAC_BYTES])
{
    size_t outl = 0;
    int ok = EVP_MAC_final((EVP_MAC_CTX *)m->ctx, out, &outl, DCMC_MAC_BYTES) == 1 &&
             outl == DCMC_MAC_BYTES;
    dcmci_mac_abort(m);
    return ok ? DCMC_OK : DCMC_ERR_CRYPTO;
}

void dcmci_mac_abort(dcmci_mac *m)
{
    EVP_MAC_CTX_free((EVP_MAC_CTX *)m->ctx);
    m->ctx = NULL;
}

int dcmci_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

dcmc_status dcmci_random(uint8_t *buf, size_t n)
{
    for (size_t off = 0; off < n;) {
        const size_t chunk = n - off > EVP_CHUNK ? EVP_CHUNK : n - off;
        if (RAND_bytes(buf + off, (int)chunk) != 1)
            return DCMC_ERR_CRYPTO;
        off += chunk;
    }
    return DCMC_OK;
}
