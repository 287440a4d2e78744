/*
 * preset.c - the named network presets and the validation of recorded preset parameters, which
 * arrive from untrusted files and size every buffer of the network plan.
 */
#include <string.h>

#include "dcmcrypt/dcmcrypt.h"

static const dcmc_preset k_presets[] = {
    /* id, C, blocks, rounds, attention, ca_red, sa_kernel, shifts: stem conv ca sa */
    {DCMC_PRESET_AT_RESNET_CM, 16, 2, 2, 1, 4, 7, 8, 8, 6, 6},
    {DCMC_PRESET_RESNET_CM, 16, 2, 2, 0, 4, 7, 8, 8, 6, 6},
};
static const char *const k_names[] = {"at-resnet-cm", "resnet-cm"};

dcmc_status dcmc_preset_by_name(const char *name, dcmc_preset *out)
{
    if (name == NULL || out == NULL)
        return DCMC_ERR_ARG;
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++) {
        if (strcmp(name, k_names[i]) == 0) {
            *out = k_presets[i];
            return DCMC_OK;
        }
    }
    return DCMC_ERR_PRESET;
}

dcmc_status dcmc_preset_by_id(uint8_t id, dcmc_preset *out)
{
    if (out == NULL)
        return DCMC_ERR_ARG;
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++) {
        if (k_presets[i].id == id) {
            *out = k_presets[i];
            return DCMC_OK;
        }
    }
    return DCMC_ERR_PRESET;
}

const char *dcmc_preset_name(uint8_t id)
{
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++)
        if (k_presets[i].id == id)
            return k_names[i];
    return "unknown";
}

dcmc_status dcmc_preset_check(const dcmc_preset *p)
{
    if (p == NULL)
        return DCMC_ERR_ARG;
    if (p->id != DCMC_PRESET_AT_RESNET_CM && p->id != DCMC_PRESET_RESNET_CM)
        return DCMC_ERR_PRESET;
    /* The convolution kernels produce exactly 16 channels; other widths are not implemented. */
    if (p->channels != 16 || p->blocks < 1 || p->blocks > 8 || p->rounds < 1 || p->rounds > 8 ||
        p->attention > 1)
        return DCMC_ERR_PRESET;
    if (p->ca_reduction == 0 || p->ca_reduction > 16 || (p->ca_reduction & (p->ca_reduction - 1)) != 0)
        return DCMC_ERR_PRESET;
    if (p->sa_kernel != 3 && p->sa_kernel != 5 && p->sa_kernel != 7)
        return DCMC_ERR_PRESET;
    if (p->shift_stem > 24 || p->shift_conv > 24 || p->shift_ca > 24 || p->shift_sa > 24)
        return DCMC_ERR_PRESET;
    return DCMC_OK;
}
