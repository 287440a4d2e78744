/*
 * status.c - human-readable text for every dcmc_status. The enum is append-only, so old codes
 * keep their meaning in logs and batch reports.
 */
#include "dcmcrypt/dcmcrypt.h"

const char *dcmc_status_str(dcmc_status s)
{
    switch (s) {
    case DCMC_OK: return "success";
    case DCMC_ERR_ARG: return "invalid argument";
    case DCMC_ERR_NOMEM: return "out of memory";
    case DCMC_ERR_OVERFLOW: return "size too large (arithmetic overflow)";
    case DCMC_ERR_LAYOUT: return "unsupported or inconsistent pixel layout";
    case DCMC_ERR_IO: return "file could not be read or written";
    case DCMC_ERR_FORMAT: return "malformed input";
    case DCMC_ERR_UNSUPPORTED: return "unsupported input";
    case DCMC_ERR_KEY: return "malformed key or empty passphrase";
    case DCMC_ERR_WRONG_KEY: return "wrong key or passphrase";
    case DCMC_ERR_INTEGRITY: return "integrity check failed: data tampered or damaged";
    case DCMC_ERR_CRYPTO: return "cryptographic library failure";
    case DCMC_ERR_PRESET: return "unknown preset";
    case DCMC_ERR_TRUNCATED: return "input truncated";
    case DCMC_ERR_WRITE: return "output could not be written";
    case DCMC_ERR_NOT_IMAGE: return "no pixel data: not an image";
    case DCMC_ERR_NOT_ENCRYPTED: return "not encrypted by dcmcrypt";
    case DCMC_ERR_ALREADY_ENCRYPTED: return "already encrypted by dcmcrypt";
    case DCMC_ERR_KDF_COST: return "the passphrase's scrypt parameters cost more than the limit";
    case DCMC_ERR_INTERNAL: return "internal error (a bug in dcmcrypt, please report it)";
    }
    return "unknown status";
}
