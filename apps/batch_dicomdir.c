/*
 * batch_dicomdir.c - DICOMDIRs, rebuilt last from the outputs (DCMTK's writer), each only when
 * every file it references has an output: a DICOMDIR silently missing images would mislead.
 */
#define _GNU_SOURCE
#include "batch_int.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct dicomdir_arg {
    const char *root;
    const char *const *files;
    size_t n;
} dicomdir_arg;

static int write_dicomdir(batch *b, const char *in, const char *tmp, outcome *o, void *arg)
{
    (void)b;
    const dicomdir_arg *a = arg;
    const dcmc_status st =
        dcmc_dicomdir_write(in, tmp, a->root, a->files, a->n, o->reason, sizeof o->reason);
    if (st != DCMC_OK)
        cli_status_msg(o->reason, sizeof o->reason, st);
    return st == DCMC_OK ? 0 : -1;
}

/* Does output `ref` (below the directory dirfd) exist as a regular file, reached without
 * following links? */
static int output_exists(const batch *b, int dirfd, const char *ref)
{
    char msg[DCMC_DICOM_MSG];
    const int fd = batch_open_chain(b, dirfd, ref, 0, msg, sizeof msg);
    struct stat st;
    const int ok = fd >= 0 && fstatat(fd, batch_base_name(ref), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                   S_ISREG(st.st_mode);
    if (fd >= 0)
        close(fd);
    return ok;
}

static void rebuild_dicomdir(batch *b, size_t idx)
{
    const item *it = &b->items[idx];
    const double t0 = batch_now();
    outcome o;
    memset(&o, 0, sizeof o);
    o.status = S_FAILED;
    char in[PATH_MAX], root_in[PATH_MAX], root_out[PATH_MAX];
    const int dirfd = batch_open_chain(b, b->out_fd, it->rel, 1, o.reason, sizeof o.reason);
    if (dirfd < 0) {
        batch_record(b, it, K_DICOMDIR, &o, 0);
        return;
    }
    if (batch_join(in, sizeof in, b->in_root, it->rel) != 0 ||
        batch_dir_path(b, dirfd, it->rel, root_out, sizeof root_out) != 0) {
        snprintf(o.reason, sizeof o.reason, "path too long");
        batch_record(b, it, K_DICOMDIR, &o, 0);
        close(dirfd);
        return;
    }
    snprintf(root_in, sizeof root_in, "%s", in);
    *strrchr(root_in, '/') = '\0';
    char **refs = NULL;
    size_t n = 0, kept = 0, missing = 0;
    const char *bad = NULL;
    dcmc_status st = dcmc_dicomdir_refs(in, &refs, &n, o.reason, sizeof o.reason);
    if (st == DCMC_OK) {
        /* References to files the input never had are dropped (and said); one to a file that
         * failed stops the rebuild: a DICOMDIR silently missing images would mislead. */
        for (size_t i = 0; i < n; i++) {
            char pi[PATH_MAX];
            struct stat s;
            if (batch_join(pi, sizeof pi, root_in, refs[i]) != 0 || stat(pi, &s) != 0) {
                missing++;
                free(refs[i]);
                continue;
            }
            if (!output_exists(b, dirfd, refs[i]))
                bad = refs[i];
            refs[kept++] = refs[i];
        }
        if (bad) {
            snprintf(o.reason, sizeof o.reason,
                     "not rebuilt: it references %.300s, which has no output", bad);
        } else {
            /* DCMTK writes the DICOMDIR through a temporary of its own and a rename: ours must
             * have a name (the fallback), reached through /proc/self/fd/DIRFD where possible. */
            dicomdir_arg da = {root_out, (const char *const *)refs, kept};
            const target to = {dirfd, root_out, batch_base_name(it->rel), it->mode & ~b->umask, 1, 0, 0};
            if (batch_produce(b, 0, &to, in, write_dicomdir, &da, &o) == 0) {
                o.status = S_DICOMDIR;
                snprintf(o.reason, sizeof o.reason, "rebuilt: %zu references", kept);
                if (missing)
                    snprintf(o.reason + strlen(o.reason), sizeof o.reason - strlen(o.reason),
                             ", %zu to files missing from the input dropped", missing);
            }
        }
        dcmc_dicomdir_refs_free(refs, kept);
    } else {
        cli_status_msg(o.reason, sizeof o.reason, st);
    }
    close(dirfd);
    batch_record(b, it, K_DICOMDIR, &o, (batch_now() - t0) * 1e3);
}

void batch_rebuild_dicomdirs(batch *b)
{
    /* DCMTK creates its own NAME.tmp with 0666 less the umask before we chmod the result: keep
     * it private meanwhile. The workers are gone, so umask is ours. */
    umask(b->umask | 077);
    for (size_t i = 0; i < b->ndirs; i++)
        rebuild_dicomdir(b, b->dirs[i]);
    umask(b->umask);
}
