/*
 * test_common.h - what the test suites share: registration entry points, the corpus and
 * sample-data locations (set by CMake), and a deterministic test RNG (not for keys).
 */
#ifndef DCMC_TEST_COMMON_H
#define DCMC_TEST_COMMON_H

#include <stdint.h>
#include <stdlib.h>

#include <CUnit/CUnit.h>

#include "dcmcrypt/dcmcrypt.h"

int dcmc_test_register_core(void);
int dcmc_test_register_io(void);
int dcmc_test_register_nn(void);
int dcmc_test_register_kernels(void);
int dcmc_test_register_cipher(void);
int dcmc_test_register_kat(void);
int dcmc_test_register_stats(void);
int dcmc_test_register_dicom(void);
int dcmc_test_register_prescan(void);
int dcmc_test_register_deid(void);
int dcmc_test_register_cms(void);
int dcmc_test_register_paper(void);

/* Directories: DCMC_SOURCE_DIR is compiled in; the shared corpus is optional (tests skip it). */
const char *dcmc_test_source_dir(void);
/* Path under the source tree (static buffer, valid until the next call). */
const char *dcmc_test_path(const char *rel);
/* Path in ../shared/corpus or NULL when the corpus is not present. */
const char *dcmc_test_corpus(const char *rel);
/* 1 when DCMC_TEST_LONG is set: long randomised runs. */
int dcmc_test_long(void);

/* xorshift64* for test data only. */
typedef struct { uint64_t s; } dcmc_test_rng;
static inline uint64_t dcmc_test_next(dcmc_test_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

/* 1 when two structs hold the same values, compared field by field: memcmp would also compare
 * the padding between fields, whose bytes C leaves unspecified. */
int dcmc_test_preset_equal(const dcmc_preset *a, const dcmc_preset *b);
int dcmc_test_kdf_equal(const dcmc_kdf *a, const dcmc_kdf *b);
int dcmc_test_layout_equal(const dcmc_layout *a, const dcmc_layout *b);
int dcmc_test_header_equal(const dcmc_header *a, const dcmc_header *b);

/* Register a suite from a NULL-terminated table of {name, fn}. */
typedef struct { const char *name; CU_TestFunc fn; } dcmc_test_case;
int dcmc_test_add_suite(const char *name, const dcmc_test_case *cases);

#endif
