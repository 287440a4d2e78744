/*
 * testhook.h - an internal entry point of the DICOM adapter for tests/test_dicom.c, not part of
 * the API (prefix dcmci_, hidden, not exported from the shared object): it throws a chosen kind
 * of exception, inside or outside the parse boundary (errors.cc), through the same guard() the
 * API uses, so that the mapping of exceptions to statuses can be checked.
 */
#ifndef DCMCRYPT_DICOM_TESTHOOK_H
#define DCMCRYPT_DICOM_TESTHOOK_H

#include <stddef.h>

#include "dcmcrypt/dcmcrypt.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    DCMCI_THROW_NOTHING = 0,
    DCMCI_THROW_FAILURE = 1,      /* our own refusal: DCMC_ERR_UNSUPPORTED */
    DCMCI_THROW_BAD_ALLOC = 2,    /* std::bad_alloc */
    DCMCI_THROW_LOGIC_ERROR = 3,  /* std::logic_error */
    DCMCI_THROW_OUT_OF_RANGE = 4, /* std::out_of_range, as DCMTK 3.6.7 throws from its parser */
    DCMCI_THROW_UNKNOWN = 5,      /* not a std::exception */
    DCMCI_THROW_BUG = 6,          /* bug(): a broken invariant of ours */
    DCMCI_THROW_WHILE_PARSING = 0x100 /* or-ed in: thrown inside parsing() */
};

/* The status (and message) the adapter gives for `what`. */
dcmc_status dcmci_dicom_exception_status(int what, char *msg, size_t msg_len);

#ifdef __cplusplus
}
#endif

#endif
