/*
 * cli_output.c - outputs written through a temporary file and published in one step (an
 * interrupted or failed run leaves no half-written output), the sweep of temporaries killed
 * runs left, the stop signals, and the one output of the single-file tools.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Six characters for a temporary's name. They only need to differ between tries (O_EXCL and
 * EEXIST make names unique), so the clock stands in when getrandom cannot answer. */
static void random_suffix(char out[7])
{
    static const char k_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static atomic_uint counter;
    unsigned char r[6];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^
                     (uint64_t)atomic_fetch_add(&counter, 1) << 40;
        for (size_t i = 0; i < sizeof r; i++, v >>= 8)
            r[i] = (unsigned char)v;
    }
    for (size_t i = 0; i < sizeof r; i++)
        out[i] = k_chars[r[i] % (sizeof k_chars - 1)];
    out[6] = '\0';
}

/* NAME CLI_TMP_TAG PID-XXXXXX: the PID tells a later run whether the run that made it still
 * exists; NAME tells a sharded batch whose it is. */
static int tmp_name(char *buf, size_t len, const char *name)
{
    char sfx[7];
    random_suffix(sfx);
    if ((size_t)snprintf(buf, len, "%s" CLI_TMP_TAG "%ld-%s", name, (long)getpid(), sfx) >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int cli_fd_path(char *buf, size_t len, int fd)
{
    struct stat a, b;
    snprintf(buf, len, "/proc/self/fd/%d", fd);
    return fstat(fd, &a) == 0 && stat(buf, &b) == 0 && a.st_dev == b.st_dev &&
                   a.st_ino == b.st_ino
               ? 0
               : -1;
}

int cli_tmp_create(cli_tmp *t, int dirfd, const char *dirpath, const char *name, int need_name)
{
    t->fd = -1;
    t->dirfd = dirfd;
    t->named = 0;
    t->tmpname[0] = '\0';
    if (!need_name) {
        /* No name until it is complete: SIGKILL, a crash or a power cut leave nothing, and
         * writers (DCMTK) reach the file through /proc/self/fd/N. */
        t->fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (t->fd >= 0 && cli_fd_path(t->path, sizeof t->path, t->fd) == 0)
            return 0;
        /* Only "this file system cannot" falls back; EROFS, EACCES, ENOSPC would fail again. */
        if (t->fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL &&
            errno != ENOENT)
            return -1;
        if (t->fd >= 0) { /* no /proc: nobody could write to it by path */
            close(t->fd);
            t->fd = -1;
        }
    }
    /* Named: through /proc/self/fd/DIRFD where possible, so that writers reach this directory
     * and not whatever a path names by now. */
    char dir[PATH_MAX];
    if (cli_fd_path(dir, sizeof dir, dirfd) != 0 &&
        (size_t)snprintf(dir, sizeof dir, "%s", dirpath) >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (int tries = 0; tries < 100 && t->fd < 0; tries++) {
        if (tmp_name(t->tmpname, sizeof t->tmpname, name) != 0)
            return -1;
        t->fd = openat(dirfd, t->tmpname, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (t->fd < 0 && errno != EEXIST)
            return -1;
    }
    if (t->fd < 0)
        return -1;
    t->named = 1;
    if ((size_t)snprintf(t->path, sizeof t->path, "%s/%s", dir, t->tmpname) >= sizeof t->path) {
        cli_tmp_close(t);
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int cli_tmp_publish(cli_tmp *t, const char *name, unsigned mode)
{
    if (t->named) {
        /* The writer may have replaced the file by a rename of its own (DCMTK's DICOMDIR):
         * sync and chmod what the name holds now. */
        int fd = openat(t->dirfd, t->tmpname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -1;
        close(t->fd);
        t->fd = fd;
    }
    /* The data reaches the disk before the name does; the mode is right before anyone can
     * open it by name. */
    if (fsync(t->fd) != 0 || fchmod(t->fd, (mode_t)mode) != 0)
        return -1;
    if (t->named) {
        if (renameat(t->dirfd, t->tmpname, t->dirfd, name) != 0)
            return -1;
        t->named = 0;
        return 0;
    }
    /* linkat cannot replace an existing name: link under a fresh name (the fallback pattern, so
     * that a crash in this instant leaves a name the next run recognises) and rename it over
     * `name`. */
    char link[NAME_MAX + 1];
    for (int tries = 0; tries < 100; tries++) {
        if (tmp_name(link, sizeof link, name) != 0)
            return -1;
        if (linkat(AT_FDCWD, t->path, t->dirfd, link, AT_SYMLINK_FOLLOW) == 0) {
            if (renameat(t->dirfd, link, t->dirfd, name) == 0)
                return 0;
            const int err = errno;
            unlinkat(t->dirfd, link, 0);
            errno = err;
            return -1;
        }
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

void cli_tmp_close(cli_tmp *t)
{
    if (t->named) {
        unlinkat(t->dirfd, t->tmpname, 0);
        /* DCMTK's DICOMDIR writer writes NAME.tmp and renames it: gone too if it stopped. */
        char dcmtk[NAME_MAX + 5];
        snprintf(dcmtk, sizeof dcmtk, "%s.tmp", t->tmpname);
        unlinkat(t->dirfd, dcmtk, 0);
        t->named = 0;
    }
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

int cli_tmp_stale(const char *entry, size_t *name_len)
{
    /* NAME CLI_TMP_TAG PID-XXXXXX, or that with DCMTK's ".tmp"; XXXXXX has no '.', so the two
     * cannot be confused. */
    size_t len = strlen(entry);
    const size_t tag = strlen(CLI_TMP_TAG);
    if (len > 4 && !strcmp(entry + len - 4, ".tmp"))
        len -= 4;
    if (len < 1 + tag + 1 + 1 + 6)
        return 0;
    const char *x = entry + len - 6, *dash = x - 1, *digits = dash;
    for (int i = 0; i < 6; i++)
        if (!((x[i] >= 'A' && x[i] <= 'Z') || (x[i] >= 'a' && x[i] <= 'z') ||
              (x[i] >= '0' && x[i] <= '9')))
            return 0;
    while (digits > entry && digits[-1] >= '0' && digits[-1] <= '9')
        digits--;
    if (*dash != '-' || digits == dash || dash - digits > 9 || (size_t)(digits - entry) < tag + 1 ||
        memcmp(digits - tag, CLI_TMP_TAG, tag) != 0)
        return 0;
    const long pid = strtol(digits, NULL, 10);
    *name_len = (size_t)(digits - tag - entry);
    /* Only a run that no longer exists: another live run (EPERM: another user's) keeps its
     * files. A PID reused since then keeps the file until a later run. */
    return pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

void cli_stop_signals(void (*handler)(int), int flags, sigset_t *set)
{
    static const int k_sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (set)
        sigemptyset(set);
    for (size_t i = 0; i < sizeof k_sigs / sizeof k_sigs[0]; i++) {
        sigaction(k_sigs[i], &sa, NULL);
        if (set)
            sigaddset(set, k_sigs[i]);
    }
}

/* The single-file tools' one output. */
static cli_tmp g_out = {.fd = -1, .dirfd = -1};
static char g_out_name[NAME_MAX + 1];
static mode_t g_out_mode;
static atomic_int g_out_named; /* what the signal handler may remove */

static void on_signal(int sig)
{
    /* An O_TMPFILE temporary vanishes with the process; only a fallback one has a name. */
    if (atomic_load(&g_out_named))
        unlinkat(g_out.dirfd, g_out.tmpname, 0); /* async-signal-safe */
    raise(sig); /* SA_RESETHAND: the default action, once this handler returns */
}

size_t cli_tmp_sweep(int dirfd, int (*want)(void *arg, const char *entry, size_t name_len),
                     size_t (*subdir)(void *arg, int dirfd, const char *entry), void *arg)
{
    const int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    size_t removed = 0, len;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (subdir && fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode))
            removed += subdir(arg, dirfd, e->d_name);
        else if (cli_tmp_stale(e->d_name, &len) && want(arg, e->d_name, len))
            removed += unlinkat(dirfd, e->d_name, 0) == 0;
    }
    closedir(d);
    return removed;
}

static int same_name(void *name, const char *entry, size_t len)
{
    return len == strlen(name) && !memcmp(entry, name, len);
}

/* The directory of `out` and its last component. */
static int split_out(const char *out, char *dir, size_t dir_len, char *base, size_t base_len)
{
    const char *slash = strrchr(out, '/');
    const char *b = slash ? slash + 1 : out;
    if (!*b) {
        errno = EISDIR;
        return -1;
    }
    const int dl = !slash ? snprintf(dir, dir_len, ".")
                   : slash == out ? snprintf(dir, dir_len, "/")
                                  : snprintf(dir, dir_len, "%.*s", (int)(slash - out), out);
    if ((size_t)dl >= dir_len || (size_t)snprintf(base, base_len, "%s", b) >= base_len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int cli_prepare_output(const cli *c, char *tmp, size_t tmp_len)
{
    struct stat si, so;
    if (stat(c->in, &si) != 0) {
        cli_error(c, "cannot read %s: %s", c->in, strerror(errno));
        return EXIT_INPUT;
    }
    if (stat(c->out, &so) == 0) {
        if (si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
            cli_error(c, "refusing to overwrite the input %s with the output", c->in);
            return EXIT_USAGE;
        }
        if (S_ISDIR(so.st_mode)) {
            cli_error(c, "output %s is a directory", c->out);
            return EXIT_OUTPUT;
        }
    }
    char dir[PATH_MAX];
    if (split_out(c->out, dir, sizeof dir, g_out_name, sizeof g_out_name) != 0 ||
        (g_out.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        cli_error(c, "cannot write %s: %s", c->out, strerror(errno));
        return EXIT_OUTPUT;
    }
    const size_t stale = cli_tmp_sweep(g_out.dirfd, same_name, NULL, g_out_name);
    if (stale)
        cli_info(c, 1, "%s: removed %zu temporary file(s) of %s that an interrupted run left",
                 c->prog, stale, c->out);
    int err = cli_tmp_create(&g_out, g_out.dirfd, dir, g_out_name, 0) != 0 ? errno : 0;
    if (!err && (size_t)snprintf(tmp, tmp_len, "%s", g_out.path) >= tmp_len)
        err = ENAMETOOLONG;
    if (err) {
        cli_error(c, "cannot write %s: %s", c->out, strerror(err));
        cli_discard_output(tmp);
        return EXIT_OUTPUT;
    }
    /* As cp: the input's permission bits less the umask (a 0600 input stays private). */
    const mode_t um = umask(0);
    umask(um);
    g_out_mode = si.st_mode & 0777 & ~um;
    atomic_store(&g_out_named, g_out.named);
    cli_stop_signals(on_signal, SA_RESETHAND | SA_RESTART, NULL);
    return -1;
}

int cli_commit_output(const cli *c, const char *tmp)
{
    const int rc = cli_tmp_publish(&g_out, g_out_name, g_out_mode) == 0 ? EXIT_OK : EXIT_OUTPUT;
    if (rc != EXIT_OK)
        cli_error(c, "cannot write %s: %s", c->out, strerror(errno));
    cli_discard_output(tmp);
    return rc;
}

void cli_discard_output(const char *tmp)
{
    (void)tmp; /* the state is g_out: one output per process */
    cli_tmp_close(&g_out);
    atomic_store(&g_out_named, 0); /* after the unlink: a signal in between finds the name gone */
    if (g_out.dirfd >= 0)
        close(g_out.dirfd);
    g_out.dirfd = -1;
}

void cli_msg_rename(char *msg, size_t len, const char *from, const char *to)
{
    /* The adapter names the file it wrote: the temporary (/proc/self/fd/N...), not the output. */
    char *at = from[0] ? strstr(msg, from) : NULL;
    if (!at)
        return;
    char rest[DCMC_DICOM_MSG];
    snprintf(rest, sizeof rest, "%s", at + strlen(from));
    snprintf(at, len - (size_t)(at - msg), "%s%s", to, rest);
}
