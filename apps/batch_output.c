/*
 * batch_output.c - where a batch writes: output directories opened from the real dir-out one
 * component at a time (never through a link), outputs through temporaries that get their name
 * only when complete, and the stop signals (the first lets the files in progress finish, a
 * second removes the named temporaries and ends the run at once).
 */
#define _GNU_SOURCE
#include "batch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Named temporaries in progress (the fallback and DICOMDIRs), one slot per worker, for the second
 * signal. A worker writes a slot's names only while it is FREE; the handler reads them only after
 * taking the slot LIVE -> CLAIMED; so it never reads a name being rewritten. */
enum { SLOT_FREE, SLOT_LIVE, SLOT_CLAIMED };
typedef struct tmp_slot {
    atomic_int state;
    int dirfd;
    char name[NAME_MAX + 1], dcmtk[NAME_MAX + 5];
} tmp_slot;
static tmp_slot g_slots[MAX_JOBS];
static atomic_int g_stop; /* the first signal, read by every worker */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "a signal handler needs lock-free atomics");

static void on_signal(int sig)
{
    int none = 0;
    if (atomic_compare_exchange_strong(&g_stop, &none, sig))
        return;
    for (int i = 0; i < MAX_JOBS; i++) {
        int live = SLOT_LIVE;
        if (atomic_compare_exchange_strong(&g_slots[i].state, &live, SLOT_CLAIMED)) {
            unlinkat(g_slots[i].dirfd, g_slots[i].name, 0); /* async-signal-safe */
            unlinkat(g_slots[i].dirfd, g_slots[i].dcmtk, 0);
        }
    }
    _exit(128 + sig);
}

static void slot_set(int slot, const cli_tmp *t)
{
    if (!t->named) /* an O_TMPFILE temporary vanishes with the process */
        return;
    tmp_slot *s = &g_slots[slot];
    s->dirfd = t->dirfd;
    snprintf(s->name, sizeof s->name, "%s", t->tmpname);
    snprintf(s->dcmtk, sizeof s->dcmtk, "%s.tmp", t->tmpname); /* DCMTK's DICOMDIR writer's */
    atomic_store(&s->state, SLOT_LIVE);
}

static void slot_clear(int slot)
{
    int live = SLOT_LIVE;
    if (!atomic_compare_exchange_strong(&g_slots[slot].state, &live, SLOT_FREE) &&
        live == SLOT_CLAIMED)
        for (;;) /* the handler has it and is ending the process */
            pause();
}

void batch_signals(sigset_t *set)
{
    /* SA_RESTART: a signal is taken by the main thread only (the workers block them), and what
     * it interrupts (nanosleep, writes to the terminal) either restarts or is harmless. */
    cli_stop_signals(on_signal, SA_RESTART, set);
}

int batch_stop_signal(void)
{
    return atomic_load(&g_stop);
}

double batch_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int batch_join(char *buf, size_t len, const char *root, const char *rel)
{
    if ((size_t)snprintf(buf, len, "%s/%s", root, rel) >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* The mode for a new output directory: its source directory's permission bits (mkdirat takes
 * the umask off), plus rwx for the owner, or the run could not write into it, nor a rerun. */
static mode_t dir_mode(const batch *b, const char *rel, size_t len)
{
    char p[PATH_MAX];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/%.*s", b->in_root, (int)len, rel) >= (int)sizeof p ||
        stat(p, &st) != 0)
        return 0777;
    return (st.st_mode & 0777) | S_IRWXU;
}

/* Open the directory that holds `rel` below base (dir-out's fd for outputs), one component at a
 * time, never following a symbolic link: whatever a link below dir-out points to, no output,
 * temporary or directory is made through it. create: make missing directories (base is dir-out,
 * rel a path below dir-in). The fd, or -1 with errno and the reason in msg. */
int batch_open_chain(const batch *b, int base, const char *rel, int create, char *msg, size_t len)
{
    int fd = openat(base, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (const char *p = rel, *slash; fd >= 0 && (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        char comp[NAME_MAX + 1];
        const size_t cl = (size_t)(slash - p), upto = (size_t)(slash - rel);
        if (cl > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            snprintf(msg, len, "cannot create the output: %s", strerror(errno));
            return -1;
        }
        memcpy(comp, p, cl);
        comp[cl] = '\0';
        int sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 && errno == ENOENT && create &&
            (mkdirat(fd, comp, dir_mode(b, rel, upto)) == 0 || errno == EEXIST))
            sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            const int err = errno;
            struct stat st;
            if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                snprintf(msg, len, "%.200s/%.*s is a symbolic link: not followed", b->out_name,
                         (int)upto, rel);
            else
                snprintf(msg, len, "cannot create the output directory %.200s/%.*s: %s", b->out_name,
                         (int)upto, rel, strerror(err));
            close(fd);
            errno = err;
            return -1;
        }
        close(fd);
        fd = sub;
    }
    if (fd < 0)
        snprintf(msg, len, "cannot open the output directory: %s", strerror(errno));
    return fd;
}

/* A path readers (the adapter) can use for directory fd `dirfd`, the directory of `rel` below
 * dir-out: /proc/self/fd/N, which no link can redirect, or the textual path without /proc. */
int batch_dir_path(const batch *b, int dirfd, const char *rel, char *buf, size_t len)
{
    const char *slash = strrchr(rel, '/');
    const int n = b->proc ? snprintf(buf, len, "/proc/self/fd/%d", dirfd)
                          : snprintf(buf, len, "%s%s%.*s", b->out_root, slash ? "/" : "",
                                     slash ? (int)(slash - rel) : 0, rel);
    if ((size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

const char *batch_base_name(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash ? slash + 1 : rel;
}

int batch_copy_file(const char *in, const char *out, char *msg, size_t msg_len)
{
    int fi = open(in, O_RDONLY), fo = open(out, O_WRONLY | O_TRUNC);
    int rc = fi >= 0 && fo >= 0 ? 0 : -1;
    static const size_t chunk = 1u << 20;
    char *buf = rc == 0 ? malloc(chunk) : NULL;
    if (rc == 0 && !buf) {
        errno = ENOMEM;
        rc = -1;
    }
    while (rc == 0) {
        ssize_t r = read(fi, buf, chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
        }
        if (r <= 0)
            break;
        for (ssize_t w = 0; w < r && rc == 0;) {
            ssize_t k = write(fo, buf + w, (size_t)(r - w));
            if (k < 0 && errno != EINTR)
                rc = -1;
            else if (k > 0)
                w += k;
        }
    }
    const int err = errno;
    if (rc != 0)
        snprintf(msg, msg_len, "copy failed: %s", strerror(err));
    free(buf);
    if (fi >= 0)
        close(fi);
    if (fo >= 0)
        close(fo);
    errno = err; /* the caller looks for ENOSPC */
    return rc;
}

int batch_same_bytes(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    char x[65536], y[65536];
    while (same) {
        size_t na = fread(x, 1, sizeof x, fa), nb = fread(y, 1, sizeof y, fb);
        same = na == nb && memcmp(x, y, na) == 0;
        if (na < sizeof x)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* Write an output through a temporary in its directory that fill() fills and that gets its name
 * only when complete (a named one is in the worker's signal slot meanwhile). 0 with o->out_bytes
 * set, or -1 with o->reason set (and the disk-full check made, when asked) and nothing left
 * behind. */
int batch_produce(batch *b, int slot, const target *to, const char *in, fill_fn fill, void *arg,
                  outcome *o)
{
    cli_tmp t;
    if (cli_tmp_create(&t, to->dirfd, to->dirpath, to->name, to->need_name) != 0) {
        const int err = errno;
        snprintf(o->reason, sizeof o->reason, "cannot create the output: %s", strerror(err));
        if (to->check_full)
            batch_note_disk_full(b, to->dirfd, err, to->need, o);
        return -1;
    }
    slot_set(slot, &t);
    o->reason[0] = '\0';
    int rc = fill(b, in, t.path, o, arg);
    int err = errno; /* a fill that made system calls says why; a library's leaves 0 */
    if (rc != 0) {
        cli_msg_rename(o->reason, sizeof o->reason, t.path, "the output");
    } else if ((rc = cli_tmp_publish(&t, to->name, to->mode)) != 0) {
        err = errno;
        snprintf(o->reason, sizeof o->reason, "cannot write the output: %s", strerror(err));
    }
    /* While the temporary still holds what was written: the free space it left. */
    if (rc != 0 && to->check_full)
        batch_note_disk_full(b, to->dirfd, err, to->need, o);
    struct stat st;
    if (rc == 0 && fstat(t.fd, &st) == 0)
        o->out_bytes = (uint64_t)st.st_size;
    cli_tmp_close(&t);
    slot_clear(slot);
    return rc;
}

/* After a failed write: if the output file system is full (ENOSPC, EDQUOT, or less room left
 * than the file needed), converting the rest would only fail file after file. Stop handing out
 * files and say so; the rerun after freeing space resumes. */
void batch_note_disk_full(batch *b, int dirfd, int err, uint64_t need, outcome *o)
{
    struct statvfs v;
    const int full = err == ENOSPC || err == EDQUOT ||
                     (fstatvfs(dirfd, &v) == 0 &&
                      (uint64_t)v.f_bavail * v.f_frsize < need + (need >> 2) + 65536);
    if (!full)
        return;
    pthread_mutex_lock(&b->mu);
    b->disk_full = 1;
    pthread_mutex_unlock(&b->mu);
    const size_t l = strlen(o->reason);
    snprintf(o->reason + l, sizeof o->reason - l, "%sthe output file system is full",
             l ? "; " : "");
}
