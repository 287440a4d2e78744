/*
 * test_main.c - the CUnit runner. Exit status is non-zero when any assertion failed, so ctest and
 * CI see failures. `dcmcrypt-tests [suite]` runs one suite; DCMC_TEST_LONG=1 enables long cases.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "test_common.h"
#include "runtime.h"

typedef struct {
    const char *name;
    int (*reg)(void);
} suite_entry;

static const suite_entry k_suites[] = {
    {"core", dcmc_test_register_core},
    {"io", dcmc_test_register_io},
    {"nn", dcmc_test_register_nn},
    {"kernels", dcmc_test_register_kernels},
    {"cipher", dcmc_test_register_cipher},
    {"kat", dcmc_test_register_kat},
    {"stats", dcmc_test_register_stats},
    {"dicom", dcmc_test_register_dicom},
    {"prescan", dcmc_test_register_prescan},
    {"deid", dcmc_test_register_deid},
    {"cms", dcmc_test_register_cms},
    {"paper", dcmc_test_register_paper},
};

int main(int argc, char **argv)
{
    app_runtime_init(argv);
    const char *only = argc > 1 ? argv[1] : NULL;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    int found = 0;
    for (size_t i = 0; i < sizeof k_suites / sizeof k_suites[0]; i++) {
        if (only && strcmp(only, k_suites[i].name) != 0)
            continue;
        found = 1;
        if (k_suites[i].reg() != 0) {
            fprintf(stderr, "cannot register suite %s: %s\n", k_suites[i].name, CU_get_error_msg());
            CU_cleanup_registry();
            return 2;
        }
    }
    if (!found) {
        fprintf(stderr, "no suite named %s\n", only);
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned asserts = CU_get_number_of_asserts();
    CU_cleanup_registry();
    printf("assertions: %u, failures: %u\n", asserts, failed);
    return failed == 0 && asserts > 0 ? 0 : 1;
}
