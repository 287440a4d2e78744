/*
 * cms.h - CMS enveloped data (RFC 5652) for the Encrypted Attributes Sequence (0400,0500) of
 * PS3.15 E.1.1, built and opened with OpenSSL's CMS API only (no hand-written ASN.1): content
 * AES-256-CBC, recipients a KEK derived from the dcmcrypt key (RFC 3394 AES key wrap), an
 * optional password (PBKDF2, RFC 3211) and any number of X.509 certificates (key transport, as
 * gdcmanon writes and reads). Internal to libdcmcrypt_dicom (C, so the C tests can call it).
 */
#ifndef DCMCRYPT_DICOM_CMS_H
#define DCMCRYPT_DICOM_CMS_H

#include <stddef.h>
#include <stdint.h>

#include "dcmcrypt/dcmcrypt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The KEK recipient's key and key identifier, from the UID key (HKDF-SHA256, info
 * "dcmcrypt/1/eas-kek" and "dcmcrypt/1/eas-kek-id"): the same key gives the same KEK in every
 * file and run, a key file and a passphrase alike (the UID key of a passphrase comes from scrypt). */
dcmc_status dcmci_cms_kek(const uint8_t uid_key[32], uint8_t kek[32], uint8_t kek_id[16]);

typedef struct dcmci_cms_recipients {
    const uint8_t *kek;        /* 32 bytes, or NULL */
    const uint8_t *kek_id;     /* 16 bytes when kek is given */
    const char *password;      /* or NULL */
    size_t password_len;
    const char *const *cert_files; /* PEM certificates */
    size_t n_certs;
} dcmci_cms_recipients;

/* DER EnvelopedData of `content` for the recipients (at least one). *der is allocated here
 * (release with dcmc_free). A certificate that cannot be read or used: DCMC_ERR_IO or
 * DCMC_ERR_FORMAT, with a one-line reason in msg (may be NULL). */
dcmc_status dcmci_cms_envelope(const uint8_t *content, size_t content_len,
                               const dcmci_cms_recipients *to, uint8_t **der, size_t *der_len,
                               char *msg, size_t msg_len);

/* The content of DER EnvelopedData, opened with the KEK (kek, kek_id), or the password, or a PEM
 * private key file (key_file; its certificate is not needed). *content allocated here (dcmc_free).
 * Not DER EnvelopedData: DCMC_ERR_FORMAT; no recipient this key opens: DCMC_ERR_WRONG_KEY. */
dcmc_status dcmci_cms_open(const uint8_t *der, size_t der_len, const dcmci_cms_recipients *with,
                           const char *key_file, uint8_t **content, size_t *content_len,
                           char *msg, size_t msg_len);

#ifdef __cplusplus
}
#endif

#endif
