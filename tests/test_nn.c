/*
 * test_nn.c - the integer network on its own: plan validation, identical results for any thread
 * count and SIMD path, weights that really change the function, and a receptive field that
 * really mixes neighbouring pixels (the network is a stage of the cipher, not decoration).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "dcmcrypt/dcmcrypt.h"
#include "nn/network.h"
#include "nn/kernels.h"
#include "test_common.h"

#define H 37
#define W 53

static void fill_weights(dcmci_net_plan *p, const dcmc_preset *pr, unsigned planes, uint64_t seed)
{
    size_t n = dcmci_net_weight_bytes(pr, planes);
    uint8_t *w = malloc(n);
    dcmc_test_rng r = {seed};
    for (size_t i = 0; i < n; i++)
        w[i] = (uint8_t)dcmc_test_next(&r);
    dcmci_net_load(p, w);
    free(w);
}

/* The network's output on `threads` threads; alone_after > 0 makes the team go on with the
 * calling thread alone after that many regions (*regions: how many the network ran on more). */
static uint32_t *eval_team(const dcmc_preset *pr, unsigned planes, int threads, unsigned alone_after,
                           uint64_t wseed, const uint32_t *in, unsigned index, unsigned *regions)
{
    dcmci_team team;
    dcmci_team_init(&team, threads);
    dcmci_team_force(&team, alone_after);
    dcmci_team_frame(&team);
    dcmci_net_plan *p = NULL;
    CU_ASSERT_EQUAL_FATAL(dcmci_net_plan_new(&p, pr, planes, H, W, 16, &team), DCMC_OK);
    fill_weights(p, pr, planes, wseed);
    uint32_t *out = malloc((size_t)planes * H * W * sizeof *out);
    dcmci_net_eval(p, index, in, out);
    dcmci_net_plan_free(p);
    if (regions != NULL)
        *regions = team.regions;
    return out;
}

static uint32_t *eval(const dcmc_preset *pr, unsigned planes, int threads, uint64_t wseed,
                      const uint32_t *in, unsigned index)
{
    return eval_team(pr, planes, threads, 0, wseed, in, index, NULL);
}

static uint32_t *random_planes(unsigned planes, uint64_t seed)
{
    uint32_t *v = malloc((size_t)planes * H * W * sizeof *v);
    dcmc_test_rng r = {seed};
    for (size_t i = 0; i < (size_t)planes * H * W; i++)
        v[i] = (uint32_t)dcmc_test_next(&r) & 0xFFFF;
    return v;
}

static void test_plan_validation(void)
{
    dcmc_preset pr;
    dcmc_preset_by_name("at-resnet-cm", &pr);
    dcmci_net_plan *p = (dcmci_net_plan *)1;
    dcmci_team one;
    dcmci_team_init(&one, 1);
    CU_ASSERT_EQUAL(dcmci_net_plan_new(&p, &pr, 0, 4, 4, 8, &one), DCMC_ERR_ARG);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(dcmci_net_plan_new(&p, &pr, 2, 0, 4, 8, &one), DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmci_net_plan_new(&p, &pr, 2, 4, 4, 33, &one), DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmci_net_plan_new(&p, &pr, 2, 4, 4, 8, NULL), DCMC_ERR_ARG);
    CU_ASSERT_EQUAL(dcmci_net_plan_new(&p, &pr, 2, 70000, 4, 8, &one), DCMC_ERR_OVERFLOW);
    pr.sa_kernel = 9;
    CU_ASSERT_EQUAL(dcmci_net_plan_new(&p, &pr, 2, 4, 4, 8, &one), DCMC_ERR_PRESET);
    dcmci_net_plan_free(NULL);
}

static void test_threads_identical(void)
{
    for (int a = 0; a < 2; a++) {
        dcmc_preset pr;
        dcmc_preset_by_name(a ? "at-resnet-cm" : "resnet-cm", &pr);
        for (unsigned planes = 2; planes <= 6; planes += 4) {
            uint32_t *in = random_planes(planes, 5);
            uint32_t *o1 = eval(&pr, planes, 1, 11, in, 1);
            uint32_t *o2 = eval(&pr, planes, 2, 11, in, 1);
            uint32_t *o7 = eval(&pr, planes, 7, 11, in, 1);
            size_t n = (size_t)planes * H * W * sizeof *o1;
            CU_ASSERT(memcmp(o1, o2, n) == 0);
            CU_ASSERT(memcmp(o1, o7, n) == 0);
            free(in);
            free(o1);
            free(o2);
            free(o7);
        }
    }
}

static void test_simd_identical(void)
{
    dcmc_preset pr;
    dcmc_preset_by_name("at-resnet-cm", &pr);
    uint32_t *in = random_planes(6, 8);
    CU_ASSERT_EQUAL_FATAL(dcmci_simd_force("scalar"), DCMC_OK);
    uint32_t *ref = eval(&pr, 6, 2, 3, in, 0);
    const char *paths[] = {"avx2", "avx512-vnni"};
    for (int i = 0; i < 2; i++) {
        if (dcmci_simd_force(paths[i]) != DCMC_OK)
            continue;
        uint32_t *o = eval(&pr, 6, 2, 3, in, 0);
        CU_ASSERT(memcmp(ref, o, (size_t)6 * H * W * sizeof *o) == 0);
        free(o);
    }
    dcmci_simd_force("auto");
    free(in);
    free(ref);
}

static void test_weights_and_mixing(void)
{
    dcmc_preset pr;
    dcmc_preset_by_name("at-resnet-cm", &pr);
    uint32_t *in = random_planes(2, 21);
    uint32_t *a = eval(&pr, 2, 1, 100, in, 0);
    uint32_t *b = eval(&pr, 2, 1, 101, in, 0); /* other key, other weights */
    size_t n = (size_t)2 * H * W, diff = 0;
    for (size_t i = 0; i < n; i++)
        diff += a[i] != b[i];
    CU_ASSERT(diff > n * 9 / 10);
    /* One input value changed: the outputs around it change, not only at that position. */
    in[(H / 2) * W + W / 2] ^= 0x8000;
    uint32_t *c = eval(&pr, 2, 1, 100, in, 0);
    size_t near = 0;
    for (int dy = -2; dy <= 2; dy++)
        for (int dx = -2; dx <= 2; dx++)
            near += a[(H / 2 + dy) * W + W / 2 + dx] != c[(H / 2 + dy) * W + W / 2 + dx];
    CU_ASSERT(near > 5);
    free(in);
    free(a);
    free(b);
    free(c);
}

/* Large frames run in bands of rows (T whole, everything else per band, attention blocks in two
 * passes): every band height, down to the minimum, gives the whole frame's bits. */
static void test_bands_identical(void)
{
    static const size_t bands[] = {1, 5, 6, 8, 13, 36, 37};
    for (int a = 0; a < 2; a++) {
        dcmc_preset pr;
        dcmc_preset_by_name(a ? "at-resnet-cm" : "resnet-cm", &pr);
        for (unsigned planes = 2; planes <= 6; planes += 4) {
            uint32_t *in = random_planes(planes, 40 + planes);
            uint32_t *whole = eval(&pr, planes, 2, 17, in, 3);
            const size_t n = (size_t)planes * H * W * sizeof *whole;
            for (size_t b = 0; b < sizeof bands / sizeof bands[0]; b++) {
                dcmci_net_band_force(bands[b]);
                for (int threads = 1; threads <= 3; threads += 2) {
                    uint32_t *o = eval(&pr, planes, threads, 17, in, 3);
                    CU_ASSERT(memcmp(whole, o, n) == 0);
                    free(o);
                }
                dcmci_net_band_force(0);
            }
            free(in);
            free(whole);
        }
    }
}

/* A busy machine makes the team go on alone part way through a network (core/team.h): after
 * any region, whole frame or in bands, the bits are those of one thread throughout. */
static void test_alone_mid_frame_identical(void)
{
    for (int a = 0; a < 2; a++) {
        dcmc_preset pr;
        dcmc_preset_by_name(a ? "at-resnet-cm" : "resnet-cm", &pr);
        uint32_t *in = random_planes(2, 60 + (unsigned)a);
        uint32_t *ref = eval(&pr, 2, 1, 23, in, 2);
        const size_t n = (size_t)2 * H * W * sizeof *ref;
        for (size_t band = 0; band <= 8; band += 8) {
            dcmci_net_band_force(band);
            unsigned total = 0; /* regions in all: forced never to go alone, not measured */
            free(eval_team(&pr, 2, 3, UINT_MAX, 23, in, 2, &total));
            CU_ASSERT(total >= 2 + 2 * (unsigned)pr.blocks); /* quantise, stem, two per block, head */
            for (unsigned after = 1; after <= total; after++) {
                unsigned ran = 0;
                uint32_t *o = eval_team(&pr, 2, 3, after, 23, in, 2, &ran);
                CU_ASSERT(memcmp(ref, o, n) == 0);
                CU_ASSERT_EQUAL(ran, after); /* it did go on alone there */
                free(o);
            }
            dcmci_net_band_force(0);
        }
        free(in);
        free(ref);
    }
}

int dcmc_test_register_nn(void)
{
    static const dcmc_test_case cases[] = {
        {"plan validation", test_plan_validation},
        {"threads 1, 2, 7 identical", test_threads_identical},
        {"SIMD paths identical to scalar", test_simd_identical},
        {"weights change the function, neighbours mix", test_weights_and_mixing},
        {"any band height gives the whole frame's bits", test_bands_identical},
        {"going on alone after any region gives the same bits", test_alone_mid_frame_identical},
        {NULL, NULL},
    };
    return dcmc_test_add_suite("nn", cases);
}
