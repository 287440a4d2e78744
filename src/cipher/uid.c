/*
 * uid.c - deterministic replacement UIDs: 2.25.<decimal of a keyed 128-bit hash of the original
 * UID> (PS3.5 B.2 allows UUID-derived 2.25 roots). Same key, same mapping, in every file and run,
 * so a whole study keeps its structure without a mapping table; without the key the original
 * UIDs cannot be recovered or linked.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cipher/internal.h"

/* A fixed salt: the mapping must not depend on anything random per file. */
static const uint8_t k_uid_salt[16] = {'d', 'c', 'm', 'c', 'r', 'y', 'p', 't',
                                       '/', '1', '/', 'u', 'i', 'd', 0, 0};

dcmc_status dcmc_uid_key_from_key(const dcmc_key *key, uint8_t uid_key[32])
{
    if (key == NULL || uid_key == NULL)
        return DCMC_ERR_ARG;
    uint8_t prk[32];
    dcmc_status st = dcmci_prk_derive(key, k_uid_salt, prk);
    if (st == DCMC_OK)
        st = dcmci_subkey(prk, "uid", 0, uid_key);
    dcmc_wipe(prk, sizeof prk);
    return st;
}

dcmc_status dcmc_uid_key_from_passphrase(const char *pass, size_t pass_len, uint8_t uid_key[32])
{
    if (pass == NULL || uid_key == NULL)
        return DCMC_ERR_ARG;
    dcmc_kdf kdf;
    memset(&kdf, 0, sizeof kdf);
    kdf.id = DCMC_KDF_SCRYPT;
    kdf.log2_n = DCMC_SCRYPT_LOG2N_DEFAULT;
    kdf.r = DCMC_SCRYPT_R_DEFAULT;
    kdf.p = DCMC_SCRYPT_P_DEFAULT;
    memcpy(kdf.salt, k_uid_salt, sizeof kdf.salt);
    dcmc_key k;
    dcmc_status st = dcmc_key_from_passphrase(pass, pass_len, &kdf, &k);
    if (st == DCMC_OK)
        st = dcmc_uid_key_from_key(&k, uid_key);
    dcmc_wipe(&k, sizeof k);
    return st;
}

dcmc_status dcmc_uid_map(const uint8_t uid_key[32], const char *uid, char out[65])
{
    if (out)
        out[0] = '\0';
    if (uid_key == NULL || uid == NULL || out == NULL)
        return DCMC_ERR_ARG;
    size_t n = strlen(uid);
    if (n == 0 || n > 64)
        return DCMC_ERR_FORMAT;
    uint8_t mac[32];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), uid_key, 32, (const uint8_t *)uid, n, mac, &len) == NULL || len != 32)
        return DCMC_ERR_CRYPTO;
    /* 128 bits as a decimal number: repeated division of four 32-bit limbs by 10. */
    uint32_t limb[4];
    for (size_t i = 0; i < 4; i++)
        limb[i] = (uint32_t)mac[4 * i] << 24 | (uint32_t)mac[4 * i + 1] << 16 |
                  (uint32_t)mac[4 * i + 2] << 8 | mac[4 * i + 3];
    char digits[40];
    int nd = 0;
    for (;;) {
        uint64_t rem = 0;
        int zero = 1;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = rem << 32 | limb[i];
            limb[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
            zero &= limb[i] == 0;
        }
        digits[nd++] = (char)('0' + rem);
        if (zero)
            break;
    }
    memcpy(out, "2.25.", 5);
    for (int i = 0; i < nd; i++)
        out[5 + i] = digits[nd - 1 - i];
    out[5 + nd] = '\0';
    return DCMC_OK;
}
