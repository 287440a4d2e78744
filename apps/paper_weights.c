/*
 * paper_weights.c - finds and loads the paper's trained networks for the tools that run them:
 * --paper-weights DIR when given; otherwise the installed copy, found from the executable's own
 * place so that a relocated install (cmake --install --prefix P) still finds it; otherwise the
 * source tree of the build (DCMC_PAPER_WEIGHTS_DIR, set by CMake), so build/bin works as is.
 */
#define _POSIX_C_SOURCE 200809L
#include "paper_weights.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef DCMC_PAPER_WEIGHTS_DIR
#define DCMC_PAPER_WEIGHTS_DIR "research/paper/weights"
#endif

const char *app_paper_variant(const char *scheme)
{
    static const char prefix[] = "paper-";
    if (!scheme || strncmp(scheme, prefix, sizeof prefix - 1) != 0)
        return NULL;
    const char *v = scheme + sizeof prefix - 1;
    return !strcmp(v, "at-resnet-cm") || !strcmp(v, "resnet-cm") ? v : NULL;
}

/* BIN/../share/dcmcrypt/paper of the running executable, or "" when /proc says nothing. */
static void installed_dir(char *out, size_t n)
{
    char exe[4096];
    out[0] = '\0';
    const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    snprintf(out, n, "%s/../share/dcmcrypt/paper", exe);
}

dcmc_status app_paper_load(const char *dir, const char *variant, dcmc_paper_model **m, char *msg,
                           size_t mlen)
{
    char inst[4200], path[4400];
    const char *dirs[2] = {dir, NULL};
    if (!dir) {
        installed_dir(inst, sizeof inst);
        dirs[0] = inst;
        dirs[1] = DCMC_PAPER_WEIGHTS_DIR;
    }
    dcmc_status st = DCMC_ERR_IO;
    for (int i = 0; i < 2 && dirs[i]; i++) {
        if (!dirs[i][0])
            continue;
        snprintf(path, sizeof path, "%s/%s.bin", dirs[i], variant);
        st = dcmc_paper_model_load(path, m);
        if (st != DCMC_ERR_IO) /* found: loaded, or refused for a reason worth saying */
            break;
    }
    if (st == DCMC_ERR_IO && !dir)
        snprintf(msg, mlen, "%s.bin: not found in BIN/../share/dcmcrypt/paper nor "
                 DCMC_PAPER_WEIGHTS_DIR " (--paper-weights DIR)", variant);
    else if (st != DCMC_OK)
        snprintf(msg, mlen, "%s: %s", path, dcmc_status_str(st));
    return st;
}
