/*
 * batch.c - converting a tree of studies (docs/batch.md).
 *
 * The main thread walks dir-in (following links, each directory once), keeps this shard's
 * files, starts -j workers and draws the progress; each worker takes the next file, classifies it
 * by content, and encrypts, decrypts or copies it into a temporary file in its destination
 * directory that gets its name only when complete (cli_tmp), so an output name always holds a
 * finished file. Output directories are opened component by component from the real dir-out
 * without following links, so nothing is ever written outside dir-out. A rerun skips outputs
 * that verify (a MAC check for encrypted objects, a complete parse for decrypted ones, a byte
 * comparison for copies) and removes the fallback temporaries killed runs left. DICOMDIRs are
 * rebuilt last, from the outputs, when every file they reference is done.
 *
 * Threads: each worker's cipher calls get cores / jobs OpenMP threads, so -j never
 * oversubscribes; passphrase keys are derived outside the lock that hands out files, each salt
 * by one worker. Signals reach the main thread only: the first SIGINT/SIGTERM/SIGHUP lets the
 * files in progress finish and stops; a second one removes named temporaries and exits at once.
 */
#define _GNU_SOURCE
#include "batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 256
#define KEY_CACHE 64

/* What a file is and what the batch does with it. */
enum kind { K_OTHER, K_BROKEN, K_IMAGE, K_ENCRYPTED, K_NO_PIXELS, K_DICOMDIR, K_SPECIAL };
static const char *const k_kind_names[] = {"other", "dicom", "image", "encrypted",
                                           "no-pixels", "dicomdir", "special"};
enum action { A_CONVERT, A_COPY, A_DEFER, A_FAIL, A_IGNORE };
/* What happened to a file; S_CONVERTED is "encrypted" or "decrypted" in the report. */
enum status { S_CONVERTED, S_COPIED, S_SKIPPED, S_FAILED, S_DEFERRED, S_DICOMDIR, NSTATUS };
static const char *const k_status_names[NSTATUS] = {NULL, "copied", "skipped", "failed",
                                                     "deferred", "dicomdir"};

typedef struct item {
    char *rel;     /* path below dir-in, '/'-separated */
    uint64_t size;
    unsigned mode; /* permission bits of the file reached (after links): the output's, less umask */
    int special;   /* not a regular file (fifo, socket, device, a directory met twice) */
    int err;       /* errno if it cannot even be looked at (a dangling link, no permission) */
    char *note;    /* why a special item is left out, when the walk decided it */
} item;

/* A key per salt. BUSY: one worker derives it, the others needing it wait (kcv). */
enum { KEY_EMPTY = 0, KEY_BUSY, KEY_READY };
typedef struct key_entry {
    dcmc_kdf kdf;
    dcmc_key key;
    int state;
    uint64_t used; /* for least-recently-used eviction */
} key_entry;

/* A directory walked, for loops and second links: open addressing on (st_dev, st_ino). */
typedef struct seen_dir {
    dev_t dev;
    ino_t ino;
    char *rel; /* where it was first walked; NULL: a free slot */
} seen_dir;

typedef struct batch {
    const cli *c;
    char in_root[PATH_MAX], out_root[PATH_MAX];
    char out_name[PATH_MAX]; /* dir-out as the user wrote it, for messages */
    int out_fd;              /* the real dir-out: every output is reached from here */
    struct stat out_st;
    int proc;                /* /proc/self/fd works: readers reach outputs through it */
    item *items;
    size_t n, cap;
    uint64_t total_bytes;
    seen_dir *seen;
    size_t nseen, seen_cap;
    mode_t umask;
    int threads_per_job, jobs, tty;

    pthread_mutex_t mu; /* everything below */
    size_t next;
    int active;   /* workers still running */
    int disk_full; /* the output file system filled up: hand out no more files */
    size_t done, counts[NSTATUS];
    uint64_t done_bytes;
    FILE *report;
    size_t *dirs; /* indices of DICOMDIRs, rebuilt at the end */
    size_t ndirs;

    /* Keys: a key file's key, or a passphrase with keys derived per salt (cached). */
    cli_secret secret;
    uint8_t uid_key[32];
    dcmc_kdf enc_kdf; /* encryption with a passphrase: one fresh salt for the whole run */
    pthread_mutex_t kmu; /* the cache and the counters below; never held while deriving */
    pthread_cond_t kcv;  /* a derivation ended */
    key_entry cache[KEY_CACHE];
    uint64_t tick;
    int deriving, derive_cap, max_deriving;
    unsigned derivations;
} batch;

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

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* root/rel into buf; -1 (ENAMETOOLONG) rather than a truncated path that names another file. */
static int join(char *buf, size_t len, const char *root, const char *rel)
{
    if ((size_t)snprintf(buf, len, "%s/%s", root, rel) >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

unsigned batch_shard_of(const char *rel, unsigned n)
{
    unsigned char md[32];
    unsigned len = 0;
    if (n <= 1 || !EVP_Digest(rel, strlen(rel), md, &len, EVP_sha256(), NULL))
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return (unsigned)(v % n);
}

/* ---- the file list ----------------------------------------------------------------------- */

static int add_item(batch *b, const char *rel, const struct stat *st, int special, int err,
                    const char *note)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        item *p = realloc(b->items, cap * sizeof *p);
        if (!p)
            return -1;
        b->items = p;
        b->cap = cap;
    }
    item *it = &b->items[b->n];
    memset(it, 0, sizeof *it);
    if (!(it->rel = strdup(rel)) || (note && !(it->note = strdup(note)))) {
        free(it->rel);
        return -1;
    }
    it->size = st && !special ? (uint64_t)st->st_size : 0;
    it->mode = st ? (unsigned)st->st_mode & 0777 : 0;
    it->special = special;
    it->err = err;
    b->n++;
    b->total_bytes += it->size;
    return 0;
}

static size_t seen_slot(const batch *b, dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)dev * 0x9e3779b97f4a7c15ull ^ (uint64_t)ino;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    size_t i = (size_t)h & (b->seen_cap - 1);
    while (b->seen[i].rel && !(b->seen[i].dev == dev && b->seen[i].ino == ino))
        i = (i + 1) & (b->seen_cap - 1);
    return i;
}

/* Remember a directory about to be walked: 1, or 0 when it was walked already (*first: where),
 * -1 out of memory. */
static int seen_add(batch *b, const struct stat *st, const char *rel, const char **first)
{
    if (2 * (b->nseen + 1) > b->seen_cap) {
        const size_t old_cap = b->seen_cap, cap = old_cap ? 2 * old_cap : 256;
        seen_dir *old = b->seen, *p = calloc(cap, sizeof *p);
        if (!p)
            return -1;
        b->seen = p;
        b->seen_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].rel)
                b->seen[seen_slot(b, old[i].dev, old[i].ino)] = old[i];
        free(old);
    }
    seen_dir *s = &b->seen[seen_slot(b, st->st_dev, st->st_ino)];
    if (s->rel) {
        *first = s->rel;
        return 0;
    }
    if (!(s->rel = strdup(rel)))
        return -1;
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    b->nseen++;
    return 1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(batch *b, const char *rel);

/* A directory reached at `rel`: walk it unless it was walked already (a loop, or a second link
 * to it) or is dir-out itself (a link to it, or to a directory above it): those are reported,
 * with the reason, and left out. */
static int walk_dir(batch *b, const char *rel, const struct stat *st)
{
    char note[PATH_MAX + 96];
    const char *first = NULL;
    if (st->st_dev == b->out_st.st_dev && st->st_ino == b->out_st.st_ino)
        return add_item(b, rel, st, 1, 0, "the output directory (reached through a link): not "
                                          "walked");
    const int fresh = seen_add(b, st, rel, &first);
    if (fresh < 0)
        return -1;
    if (fresh)
        return walk(b, rel);
    snprintf(note, sizeof note, "directory already walked as %s (a loop or a second link): skipped",
             *first ? first : "the top of dir-in");
    return add_item(b, rel, st, 1, 0, note);
}

/* Walk dir-in below `rel` (empty at the top), in name order, following symbolic links to files
 * and to directories (as find -L): a folder of links to series converts them. -1 with errno on
 * failure. */
static int walk(batch *b, const char *rel)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s%s%s", b->in_root, *rel ? "/" : "", rel) >= (int)sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) {
                rc = -1;
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n > 1) /* an empty directory has no array at all */
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char r[PATH_MAX], p[PATH_MAX];
        if (snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", names[i]) >= (int)sizeof r ||
            snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= (int)sizeof p) {
            errno = ENAMETOOLONG;
            rc = -1;
            break;
        }
        struct stat st;
        if (stat(p, &st) != 0) /* a link leading nowhere, or the entry went away: that file fails */
            rc = add_item(b, r, NULL, 1, errno ? errno : ENOENT, NULL);
        else if (S_ISDIR(st.st_mode))
            rc = walk_dir(b, r, &st);
        else
            rc = add_item(b, r, &st, !S_ISREG(st.st_mode), 0, NULL);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Removing the fallback temporaries killed runs of this shard left in dir-out (other shards may
 * be running; a live run's temporaries stay anyway). Links are not followed. */
typedef struct sweep_arg {
    const batch *b;
    const char *rel; /* of the directory swept */
} sweep_arg;

static int sweep_want(void *arg, const char *entry, size_t name_len)
{
    const sweep_arg *a = arg;
    const cli *c = a->b->c;
    char r[PATH_MAX];
    if (snprintf(r, sizeof r, "%s%s%.*s", a->rel, *a->rel ? "/" : "", (int)name_len, entry) >=
        (int)sizeof r)
        return 0;
    return c->shard_n <= 1 || batch_shard_of(r, c->shard_n) == c->shard_k - 1;
}

static size_t sweep_subdir(void *arg, int dirfd, const char *entry)
{
    const sweep_arg *a = arg;
    char r[PATH_MAX];
    if (snprintf(r, sizeof r, "%s%s%s", a->rel, *a->rel ? "/" : "", entry) >= (int)sizeof r)
        return 0;
    const int fd = openat(dirfd, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    sweep_arg sub = {a->b, r};
    const size_t n = cli_tmp_sweep(fd, sweep_want, sweep_subdir, &sub);
    close(fd);
    return n;
}

/* ---- files ------------------------------------------------------------------------------- */

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
static int open_chain(const batch *b, int base, const char *rel, int create, char *msg, size_t len)
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
static int dir_path(const batch *b, int dirfd, const char *rel, char *buf, size_t len)
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

static const char *base_name(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash ? slash + 1 : rel;
}

static int copy_file(const char *in, const char *out, char *msg, size_t msg_len)
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

static int same_bytes(const char *a, const char *b)
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

/* A DICOM object by its content: "DICM" after the 128-byte preamble, or (no preamble, as
 * ACR-NEMA and some old exports) a first tag of group 0002 or 0008 in either byte order. */
static int looks_like_dicom(const char *path)
{
    unsigned char h[132];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n == sizeof h && !memcmp(h + 128, "DICM", 4))
        return 1;
    if (n < 8)
        return 0;
    const unsigned g_le = h[0] | h[1] << 8, g_be = h[0] << 8 | h[1];
    return g_le == 0x0008 || g_le == 0x0002 || g_be == 0x0008;
}

/* ---- keys -------------------------------------------------------------------------------- */

/* The key for a file made with `kdf` (ignored with a key file), up to max_mib of scrypt.
 *
 * scrypt is the expensive part (128 MiB and a good part of a second), so it runs outside every
 * lock: a worker claims a cache entry (BUSY), derives, and publishes it (READY); a worker needing
 * the same salt meanwhile waits for it instead of deriving it twice, while workers needing other
 * salts derive side by side, at most one per core (more would only add 128 MiB each). A failed
 * derivation leaves the entry empty, so it is never taken for a key. */
static dcmc_status key_for(batch *b, const dcmc_kdf *kdf, uint64_t max_mib, dcmc_key *key,
                           char *msg, size_t len)
{
    if (b->secret.have_key) {
        *key = b->secret.key;
        return DCMC_OK;
    }
    if (!kdf || kdf->id != DCMC_KDF_SCRYPT) {
        snprintf(msg, len, "encrypted with a key file, not a passphrase: use --key-file");
        return DCMC_ERR_WRONG_KEY;
    }
    if (cli_kdf_too_costly(kdf, max_mib, msg, len))
        return DCMC_ERR_KDF_COST; /* refused before it takes a slot or a turn */
    pthread_mutex_lock(&b->kmu);
    key_entry *e = NULL;
    for (;;) {
        key_entry *victim = NULL; /* an empty entry, else the least recently used ready one */
        for (size_t i = 0; i < KEY_CACHE; i++) {
            key_entry *x = &b->cache[i];
            if (x->state != KEY_EMPTY && !memcmp(&x->kdf, kdf, sizeof *kdf)) {
                e = x;
                break;
            }
            if (x->state == KEY_EMPTY && (!victim || victim->state != KEY_EMPTY))
                victim = x;
            else if (x->state == KEY_READY && (!victim || (victim->state == KEY_READY &&
                                                           x->used < victim->used)))
                victim = x;
        }
        if (e && e->state == KEY_READY) {
            *key = e->key;
            e->used = ++b->tick;
            pthread_mutex_unlock(&b->kmu);
            return DCMC_OK;
        }
        if (!e && victim && b->deriving < b->derive_cap) {
            e = victim;
            break;
        }
        e = NULL;
        pthread_cond_wait(&b->kcv, &b->kmu); /* its salt is being derived, or no room yet */
    }
    dcmc_wipe(e, sizeof *e);
    e->kdf = *kdf;
    e->state = KEY_BUSY;
    b->derivations++;
    if (++b->deriving > b->max_deriving)
        b->max_deriving = b->deriving;
    pthread_mutex_unlock(&b->kmu);

    dcmc_key k;
    const dcmc_status st =
        dcmc_key_from_passphrase_max(b->secret.pass, b->secret.pass_len, kdf, max_mib, &k);

    pthread_mutex_lock(&b->kmu);
    b->deriving--;
    if (st == DCMC_OK) {
        e->key = k;
        e->state = KEY_READY;
        e->used = ++b->tick;
        *key = k;
    } else {
        dcmc_wipe(e, sizeof *e);
        e->state = KEY_EMPTY;
    }
    pthread_cond_broadcast(&b->kcv);
    pthread_mutex_unlock(&b->kmu);
    dcmc_wipe(&k, sizeof k);
    if (st != DCMC_OK)
        snprintf(msg, len, "key derivation failed: %s", dcmc_status_str(st));
    return st;
}

/* The key an encrypted file needs. Only a passphrase needs the file's header (its salt), so a
 * key file's key costs no extra read of the object. The header is not authenticated before the
 * key is known: its scrypt cost is bounded by --scrypt-max-mib. */
static dcmc_status file_key(batch *b, const char *path, dcmc_key *key, char *msg, size_t len)
{
    if (b->secret.have_key)
        return key_for(b, NULL, 0, key, msg, len);
    dcmc_header hdr;
    dcmc_status st = dcmc_dicom_peek(path, &hdr, msg, len);
    return st != DCMC_OK ? st : key_for(b, &hdr.kdf, b->c->scrypt_max_mib, key, msg, len);
}

/* The run's own parameters (encryption) are trusted: the library's default bound, as dcmencrypt
 * for one file. */
static dcmc_status own_key(batch *b, dcmc_key *key, char *msg, size_t len)
{
    return key_for(b, b->secret.have_key ? NULL : &b->enc_kdf, DCMC_SCRYPT_MAX_MIB_DEFAULT, key,
                   msg, len);
}

/* ---- one file ---------------------------------------------------------------------------- */

typedef struct outcome {
    int status; /* S_* */
    char reason[DCMC_DICOM_MSG];
    uint64_t out_bytes;
} outcome;

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void record(batch *b, const item *it, int kind, outcome *o, double ms)
{
    /* The adapter's messages start with the file's full path; the report has it already. */
    char in[PATH_MAX + 2];
    if (join(in, sizeof in - 2, b->in_root, it->rel) == 0) {
        strcat(in, ": ");
        const size_t l = strlen(in);
        if (!strncmp(o->reason, in, l))
            memmove(o->reason, o->reason + l, strlen(o->reason + l) + 1);
    }
    pthread_mutex_lock(&b->mu);
    const int slot = o->status;
    const char *s = slot == S_CONVERTED ? (b->c->encrypt ? "encrypted" : "decrypted")
                                        : k_status_names[slot];
    b->counts[slot]++;
    b->done++;
    b->done_bytes += it->size;
    if (b->report) {
        fputs("{\"path\":", b->report);
        json_str(b->report, it->rel);
        fprintf(b->report, ",\"kind\":\"%s\",\"status\":\"%s\",\"reason\":", k_kind_names[kind], s);
        json_str(b->report, o->reason);
        fprintf(b->report, ",\"in_bytes\":%llu,\"out_bytes\":%llu,\"ms\":%.1f}\n",
                (unsigned long long)it->size, (unsigned long long)o->out_bytes, ms);
        fflush(b->report);
    }
    if (slot == S_FAILED && b->c->verbosity >= 0) {
        if (b->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "%s: %s: %s\n", b->c->prog, it->rel, o->reason);
    } else if (b->c->verbosity >= 1) {
        if (b->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "%s: %s: %s%s%s\n", b->c->prog, it->rel, s, o->reason[0] ? ": " : "",
                o->reason);
    }
    pthread_mutex_unlock(&b->mu);
}

static int classify(const char *path, dcmc_dicom_probe_info *pi, char *msg, size_t len)
{
    if (!looks_like_dicom(path))
        return K_OTHER;
    if (dcmc_dicom_probe(path, 0, pi, msg, len) != DCMC_OK)
        return K_BROKEN;
    switch (pi->kind) {
    case DCMC_DICOM_IMAGE:
        return K_IMAGE;
    case DCMC_DICOM_ENCRYPTED:
        return K_ENCRYPTED;
    case DCMC_DICOM_DIRECTORY:
        return K_DICOMDIR;
    default:
        return K_NO_PIXELS;
    }
}

/* Does an existing output already hold the finished conversion of `in`? */
static int output_done(batch *b, int action, const char *in,
                       const dcmc_dicom_probe_info *pin, const char *out)
{
    char msg[DCMC_DICOM_MSG];
    if (action == A_COPY)
        return same_bytes(in, out);
    dcmc_dicom_probe_info po;
    if (!b->c->encrypt) /* a decrypted object: complete, and no longer ours */
        return dcmc_dicom_probe(out, 1, &po, msg, sizeof msg) == DCMC_OK &&
               (po.kind == DCMC_DICOM_IMAGE);
    dcmc_key key;
    char uid[65], want[65];
    if (file_key(b, out, &key, msg, sizeof msg) != DCMC_OK)
        return 0;
    int ok = dcmc_dicom_verify(out, &key, uid, msg, sizeof msg) == DCMC_OK;
    dcmc_wipe(&key, sizeof key);
    /* ... and is the encryption of this input: its new UID is the input's, mapped. */
    if (ok && pin->sop_instance_uid[0])
        ok = dcmc_uid_map(b->uid_key, pin->sop_instance_uid, want) == DCMC_OK &&
             !strcmp(uid, want);
    return ok;
}

static int convert(batch *b, const char *in, const char *tmp, outcome *o, void *unused)
{
    (void)unused;
    char *msg = o->reason;
    const size_t len = sizeof o->reason;
    dcmc_dicom_info info;
    memset(&info, 0, sizeof info);
    dcmc_options opt = b->c->opt;
    opt.threads = b->threads_per_job;
    dcmc_status st;
    if (b->c->encrypt) {
        dcmc_key key;
        const dcmc_kdf *kdf = b->secret.have_key ? NULL : &b->enc_kdf;
        st = own_key(b, &key, msg, len);
        if (st == DCMC_OK)
            st = dcmc_dicom_encrypt(in, tmp, &key, kdf, b->uid_key, &opt, &info, msg, len);
        dcmc_wipe(&key, sizeof key);
    } else {
        dcmc_key key;
        st = file_key(b, in, &key, msg, len);
        if (st == DCMC_OK)
            st = dcmc_dicom_decrypt(in, tmp, &key, opt.threads, &info, msg, len);
        dcmc_wipe(&key, sizeof key);
    }
    if (st != DCMC_OK && !msg[0])
        snprintf(msg, len, "%s", dcmc_status_str(st));
    return st == DCMC_OK ? 0 : -1;
}

static int copy_into(batch *b, const char *in, const char *tmp, outcome *o, void *unused)
{
    (void)b;
    (void)unused;
    return copy_file(in, tmp, o->reason, sizeof o->reason);
}

/* Fills a temporary output: 0, or -1 with o->reason set (and errno, where it is the cause). */
typedef int (*fill_fn)(batch *b, const char *in, const char *tmp, outcome *o, void *arg);

/* An output to write: `name` in directory dirfd (dirpath: a path to it for writers), with
 * permission bits `mode`. need_name: the writer renames its own file into place (DICOMDIR). */
typedef struct target {
    int dirfd;
    const char *dirpath, *name;
    unsigned mode;
    int need_name;
} target;

/* Write an output through a temporary in its directory that fill() fills and that gets its name
 * only when complete (a named one is in the worker's signal slot meanwhile). 0 with o->out_bytes
 * set, or -1 with o->reason set, errno kept for the caller, and nothing left behind. */
static int produce(batch *b, int slot, const target *to, const char *in, fill_fn fill, void *arg,
                   outcome *o)
{
    cli_tmp t;
    if (cli_tmp_create(&t, to->dirfd, to->dirpath, to->name, to->need_name) != 0) {
        snprintf(o->reason, sizeof o->reason, "cannot create the output: %s", strerror(errno));
        return -1;
    }
    slot_set(slot, &t);
    o->reason[0] = '\0';
    int rc = fill(b, in, t.path, o, arg);
    if (rc != 0)
        cli_msg_rename(o->reason, sizeof o->reason, t.path, "the output");
    else if ((rc = cli_tmp_publish(&t, to->name, to->mode)) != 0)
        snprintf(o->reason, sizeof o->reason, "cannot write the output: %s", strerror(errno));
    const int err = errno;
    struct stat st;
    if (rc == 0 && fstat(t.fd, &st) == 0)
        o->out_bytes = (uint64_t)st.st_size;
    cli_tmp_close(&t);
    slot_clear(slot);
    errno = err;
    return rc;
}

/* After a failed write: if the output file system is full (ENOSPC, EDQUOT, or less room left
 * than the file needed), converting the rest would only fail file after file. Stop handing out
 * files and say so; the rerun after freeing space resumes. */
static void note_disk_full(batch *b, int dirfd, int err, uint64_t need, outcome *o)
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

static void process(batch *b, int slot, size_t idx)
{
    const item *it = &b->items[idx];
    const double t0 = now_s();
    char in[PATH_MAX];
    outcome o;
    memset(&o, 0, sizeof o);
    dcmc_dicom_probe_info pi;
    memset(&pi, 0, sizeof pi);
    int kind = K_SPECIAL, action = A_IGNORE;
    if (join(in, sizeof in, b->in_root, it->rel) != 0) {
        o.status = S_FAILED;
        snprintf(o.reason, sizeof o.reason, "path too long");
        record(b, it, K_SPECIAL, &o, 0);
        return;
    }
    if (!it->special) {
        kind = classify(in, &pi, o.reason, sizeof o.reason);
        switch (kind) {
        case K_BROKEN:
            action = A_FAIL;
            break;
        case K_DICOMDIR:
            action = A_DEFER;
            break;
        case K_IMAGE:
            action = b->c->encrypt ? A_CONVERT : A_COPY;
            snprintf(o.reason, sizeof o.reason, "%s", b->c->encrypt ? "" : "not encrypted");
            break;
        case K_ENCRYPTED:
            action = b->c->encrypt ? A_COPY : A_CONVERT;
            snprintf(o.reason, sizeof o.reason, "%s", b->c->encrypt ? "already encrypted" : "");
            break;
        case K_NO_PIXELS:
            action = A_COPY;
            snprintf(o.reason, sizeof o.reason, "no pixel data");
            break;
        default:
            action = A_COPY;
            snprintf(o.reason, sizeof o.reason, "not DICOM");
        }
    } else if (it->err) {
        action = A_FAIL;
        snprintf(o.reason, sizeof o.reason, "cannot read: %s", strerror(it->err));
    } else if (it->note) {
        snprintf(o.reason, sizeof o.reason, "%s", it->note);
    } else {
        snprintf(o.reason, sizeof o.reason, "not a regular file: left out");
    }
    o.status = action == A_FAIL ? S_FAILED : action == A_IGNORE ? S_SKIPPED : S_DEFERRED;
    if (action == A_DEFER) {
        pthread_mutex_lock(&b->mu);
        b->dirs[b->ndirs++] = idx;
        pthread_mutex_unlock(&b->mu);
        if (b->c->shard_n > 1) {
            snprintf(o.reason, sizeof o.reason,
                     "DICOMDIRs are rebuilt by a run without --shard, once every shard is done");
            record(b, it, kind, &o, (now_s() - t0) * 1e3);
        }
        return;
    }
    if (action == A_CONVERT || action == A_COPY) {
        char why[sizeof o.reason], dir[PATH_MAX], out[PATH_MAX];
        snprintf(why, sizeof why, "%s", o.reason);
        const char *name = base_name(it->rel);
        const int dirfd = open_chain(b, b->out_fd, it->rel, 1, o.reason, sizeof o.reason);
        struct stat st;
        if (dirfd < 0) {
            o.status = S_FAILED;
            note_disk_full(b, b->out_fd, errno, it->size, &o);
        } else if (dir_path(b, dirfd, it->rel, dir, sizeof dir) != 0 ||
                   join(out, sizeof out, dir, name) != 0) {
            o.status = S_FAILED;
            snprintf(o.reason, sizeof o.reason, "path too long");
        } else if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                   output_done(b, action, in, &pi, out)) {
            /* Not through a link: one at the output's name is replaced below, never read. */
            o.status = S_SKIPPED;
            snprintf(o.reason, sizeof o.reason, "output exists and verifies");
            o.out_bytes = (uint64_t)st.st_size;
        } else {
            const target to = {dirfd, dir, name, it->mode & ~b->umask, 0};
            if (produce(b, slot, &to, in, action == A_COPY ? copy_into : convert, NULL, &o) != 0) {
                o.status = S_FAILED;
                note_disk_full(b, dirfd, errno, it->size, &o);
            } else {
                o.status = action == A_COPY ? S_COPIED : S_CONVERTED;
                snprintf(o.reason, sizeof o.reason, "%s", why);
            }
        }
        if (dirfd >= 0)
            close(dirfd);
    }
    record(b, it, kind, &o, (now_s() - t0) * 1e3);
}

typedef struct worker_arg {
    batch *b;
    int slot;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    batch *b = w->b;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        size_t i = b->next < b->n && !atomic_load(&g_stop) && !b->disk_full ? b->next++
                                                                             : (size_t)-1;
        if (i == (size_t)-1)
            b->active--;
        pthread_mutex_unlock(&b->mu);
        if (i == (size_t)-1)
            return NULL;
        process(b, w->slot, i);
    }
}

/* ---- DICOMDIRs --------------------------------------------------------------------------- */

typedef struct dicomdir_arg {
    const char *root;
    const char *const *files;
    size_t n;
} dicomdir_arg;

static int write_dicomdir(batch *b, const char *in, const char *tmp, outcome *o, void *arg)
{
    (void)b;
    const dicomdir_arg *a = arg;
    return dcmc_dicomdir_write(in, tmp, a->root, a->files, a->n, o->reason, sizeof o->reason) ==
                   DCMC_OK
               ? 0
               : -1;
}

/* Does output `ref` (below the directory dirfd) exist as a regular file, reached without
 * following links? */
static int output_exists(const batch *b, int dirfd, const char *ref)
{
    char msg[DCMC_DICOM_MSG];
    const int fd = open_chain(b, dirfd, ref, 0, msg, sizeof msg);
    struct stat st;
    const int ok = fd >= 0 && fstatat(fd, base_name(ref), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                   S_ISREG(st.st_mode);
    if (fd >= 0)
        close(fd);
    return ok;
}

static void rebuild_dicomdir(batch *b, size_t idx)
{
    const item *it = &b->items[idx];
    const double t0 = now_s();
    outcome o;
    memset(&o, 0, sizeof o);
    o.status = S_FAILED;
    char in[PATH_MAX], root_in[PATH_MAX], root_out[PATH_MAX];
    const int dirfd = open_chain(b, b->out_fd, it->rel, 1, o.reason, sizeof o.reason);
    if (dirfd < 0) {
        record(b, it, K_DICOMDIR, &o, 0);
        return;
    }
    if (join(in, sizeof in, b->in_root, it->rel) != 0 ||
        dir_path(b, dirfd, it->rel, root_out, sizeof root_out) != 0) {
        snprintf(o.reason, sizeof o.reason, "path too long");
        record(b, it, K_DICOMDIR, &o, 0);
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
            if (join(pi, sizeof pi, root_in, refs[i]) != 0 || stat(pi, &s) != 0) {
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
            const target to = {dirfd, root_out, base_name(it->rel), it->mode & ~b->umask, 1};
            if (produce(b, 0, &to, in, write_dicomdir, &da, &o) == 0) {
                o.status = S_DICOMDIR;
                snprintf(o.reason, sizeof o.reason, "rebuilt: %zu references", kept);
                if (missing)
                    snprintf(o.reason + strlen(o.reason), sizeof o.reason - strlen(o.reason),
                             ", %zu to files missing from the input dropped", missing);
            }
        }
        dcmc_dicomdir_refs_free(refs, kept);
    }
    close(dirfd);
    record(b, it, K_DICOMDIR, &o, (now_s() - t0) * 1e3);
}

/* ---- progress ---------------------------------------------------------------------------- */

static void human_time(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, len, "--");
    else if (s >= 3600)
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static void progress(batch *b, double t0, int final)
{
    pthread_mutex_lock(&b->mu);
    const size_t done = b->done, n = b->n;
    const uint64_t bytes = b->done_bytes, total = b->total_bytes;
    pthread_mutex_unlock(&b->mu);
    const double el = now_s() - t0, rate = el > 0 ? done / el : 0, mbs = el > 0 ? bytes / el / 1e6 : 0;
    char eta[32];
    human_time(mbs > 0 ? (double)(total - bytes) / 1e6 / mbs : -1, eta, sizeof eta);
    if (b->tty) {
        const int width = 24, fill = total ? (int)((double)bytes / (double)total * width)
                                           : n ? (int)(done * width / n) : width;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[width] = '\0';
        fprintf(stderr, "\r\033[K[%s] %zu/%zu files  %.1f/%.1f MB  %.1f files/s  %.1f MB/s  ETA %s",
                bar, done, n, bytes / 1e6, total / 1e6, rate, mbs, eta);
        if (final)
            fputc('\n', stderr);
    } else if (!final) {
        fprintf(stderr, "%s: progress: %zu/%zu files, %.1f/%.1f MB, %.1f files/s, %.1f MB/s, ETA %s\n",
                b->c->prog, done, n, bytes / 1e6, total / 1e6, rate, mbs, eta);
    }
    fflush(stderr);
}

/* ---- the run ----------------------------------------------------------------------------- */

static int cores(void)
{
    cpu_set_t set;
    /* The CPUs this process may use: a Slurm allocation or taskset, not the whole machine. */
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int setup_keys(batch *b)
{
    const cli *c = b->c;
    int rc = cli_secret_get(c, &b->secret, c->encrypt);
    if (rc >= 0)
        return rc;
    dcmc_status st = DCMC_OK;
    if (b->secret.have_key) {
        st = dcmc_uid_key_from_key(&b->secret.key, b->uid_key);
    } else {
        st = dcmc_uid_key_from_passphrase(b->secret.pass, b->secret.pass_len, b->uid_key);
        if (st == DCMC_OK && c->encrypt) {
            /* One salt for the run: scrypt once, not once per file. Each file still records it. */
            dcmc_key k;
            char msg[128];
            st = dcmc_kdf_new_scrypt(&b->enc_kdf);
            if (st == DCMC_OK)
                st = own_key(b, &k, msg, sizeof msg);
            dcmc_wipe(&k, sizeof k);
        }
    }
    if (st != DCMC_OK) {
        cli_error(c, "key derivation failed: %s", dcmc_status_str(st));
        return EXIT_KEY;
    }
    return -1;
}

static int check_roots(batch *b)
{
    const cli *c = b->c;
    struct stat st;
    if (!realpath(c->in, b->in_root) || stat(b->in_root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error(c, "--recurse: %s is not a readable directory", c->in);
        return EXIT_INPUT;
    }
    /* Walking starts with dir-in itself: a link back to it is a loop. */
    const char *first;
    if (seen_add(b, &st, "", &first) < 0) {
        cli_error(c, "out of memory");
        return EXIT_OUTPUT;
    }
    if (mkdir(c->out, (st.st_mode & 0777) | S_IRWXU) != 0 && errno != EEXIST) {
        cli_error(c, "cannot create %s: %s", c->out, strerror(errno));
        return EXIT_OUTPUT;
    }
    snprintf(b->out_name, sizeof b->out_name, "%s", c->out);
    for (size_t l = strlen(b->out_name); l > 1 && b->out_name[l - 1] == '/'; l--)
        b->out_name[l - 1] = '\0';
    if (!realpath(c->out, b->out_root) ||
        (b->out_fd = open(b->out_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        fstat(b->out_fd, &b->out_st) != 0) {
        cli_error(c, "output %s is not a directory", c->out);
        return EXIT_OUTPUT;
    }
    const size_t li = strlen(b->in_root), lo = strlen(b->out_root);
    if (!strcmp(b->in_root, b->out_root) ||
        (lo > li && !strncmp(b->out_root, b->in_root, li) && b->out_root[li] == '/') ||
        (li > lo && !strncmp(b->in_root, b->out_root, lo) && b->in_root[lo] == '/')) {
        cli_error(c, "--recurse: the output directory must be outside the input tree and not "
                     "contain it");
        return EXIT_USAGE;
    }
    /* A dir-out nobody can write in (a read-only file system, no permission) would fail every
     * file, one after the other: say so at once, before any work, as "output not written". */
    cli_tmp probe;
    if (cli_tmp_create(&probe, b->out_fd, b->out_root, "probe", 0) != 0) {
        cli_error(c, "cannot write in %s: %s", c->out, strerror(errno));
        return EXIT_OUTPUT;
    }
    cli_tmp_close(&probe);
    char path[64];
    b->proc = cli_fd_path(path, sizeof path, b->out_fd) == 0;
    return -1;
}

int batch_run(const cli *c)
{
    batch *b = calloc(1, sizeof *b);
    if (!b) {
        cli_error(c, "out of memory");
        return EXIT_OUTPUT;
    }
    b->c = c;
    b->out_fd = -1;
    b->derive_cap = 1; /* until the jobs are known */
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->kmu, NULL);
    pthread_cond_init(&b->kcv, NULL);
    int rc = check_roots(b);
    if (rc < 0 && walk(b, "") != 0) {
        cli_error(c, "cannot read the tree %s: %s", c->in, strerror(errno));
        rc = EXIT_INPUT;
    }
    if (rc < 0 && c->shard_n > 1) { /* keep this shard's files, in order */
        size_t k = 0;
        b->total_bytes = 0;
        for (size_t i = 0; i < b->n; i++) {
            if (batch_shard_of(b->items[i].rel, c->shard_n) == c->shard_k - 1) {
                b->total_bytes += b->items[i].size;
                b->items[k++] = b->items[i];
            } else {
                free(b->items[i].rel);
                free(b->items[i].note);
            }
        }
        b->n = k;
    }
    if (rc < 0 && !(b->dirs = calloc(b->n + 1, sizeof *b->dirs))) {
        cli_error(c, "out of memory");
        rc = EXIT_OUTPUT;
    }
    if (rc < 0 && c->report && !(b->report = fopen(c->report, "w"))) {
        cli_error(c, "cannot write the report %s: %s", c->report, strerror(errno));
        rc = EXIT_OUTPUT;
    }
    if (rc < 0)
        rc = setup_keys(b);
    if (rc < 0) {
        const int total = c->opt.threads > 0 ? c->opt.threads : cores();
        b->jobs = c->jobs > 0 ? c->jobs : total;
        if (b->jobs > MAX_JOBS)
            b->jobs = MAX_JOBS;
        if ((size_t)b->jobs > b->n && b->n > 0)
            b->jobs = (int)b->n;
        b->threads_per_job = total / b->jobs > 0 ? total / b->jobs : 1;
        b->derive_cap = b->jobs < total ? b->jobs : total;
        b->umask = umask(0);
        umask(b->umask);
        b->tty = c->verbosity >= 0 && isatty(STDERR_FILENO);
        sweep_arg top = {b, ""};
        const size_t stale = cli_tmp_sweep(b->out_fd, sweep_want, sweep_subdir, &top);
        if (stale)
            cli_info(c, 0, "%s: removed %zu temporary file(s) an interrupted run left", c->prog,
                     stale);
        cli_info(c, 1, "%s: %zu files, %.1f MB; %d jobs x %d threads", c->prog, b->n,
                 b->total_bytes / 1e6, b->jobs, b->threads_per_job);

        /* Only the main thread takes the signals: workers (and their OpenMP threads, which
         * inherit the mask) are never interrupted, and the handler never runs on a thread
         * that holds a lock. SA_RESTART: the main thread's writes to the terminal go on. */
        sigset_t stop_sigs, old_mask;
        cli_stop_signals(on_signal, SA_RESTART, &stop_sigs);

        const double t0 = now_s();
        pthread_t th[MAX_JOBS];
        worker_arg wa[MAX_JOBS];
        int started = 0;
        b->active = b->jobs;
        pthread_sigmask(SIG_BLOCK, &stop_sigs, &old_mask); /* inherited by the workers */
        for (int j = 0; j < b->jobs; j++) {
            wa[j].b = b;
            wa[j].slot = j;
            if (pthread_create(&th[j], NULL, worker, &wa[j]) == 0) {
                started++;
            } else {
                pthread_mutex_lock(&b->mu);
                b->active -= b->jobs - j;
                pthread_mutex_unlock(&b->mu);
                break;
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        if (started == 0) /* no threads at all: do the work here */
            worker(&wa[0]);
        /* Progress while the workers run: redrawn on a terminal, a line every 10 s otherwise. */
        double last = now_s();
        for (;;) {
            pthread_mutex_lock(&b->mu);
            const int busy = b->active > 0;
            pthread_mutex_unlock(&b->mu);
            if (!busy || started == 0)
                break;
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
            if (c->verbosity >= 0 && (b->tty || now_s() - last >= 10)) {
                progress(b, t0, 0);
                last = now_s();
            }
        }
        for (int j = 0; j < started; j++)
            pthread_join(th[j], NULL);
        const int stopped = atomic_load(&g_stop);
        if (!stopped && !b->disk_full && c->shard_n <= 1) {
            /* DCMTK creates its own NAME.tmp with 0666 less the umask before we chmod the
             * result: keep it private meanwhile. The workers are gone, so umask is ours. */
            umask(b->umask | 077);
            for (size_t i = 0; i < b->ndirs; i++)
                rebuild_dicomdir(b, b->dirs[i]);
            umask(b->umask);
        }
        if (c->verbosity >= 0 && b->tty)
            progress(b, t0, 1);
        const double el = now_s() - t0;
        if (c->verbosity >= 0) {
            fprintf(stderr,
                    "%s: %zu of %zu files: %zu %s, %zu copied, %zu skipped, %zu DICOMDIR, "
                    "%zu deferred, %zu failed; %.1f MB in %.1f s (%.1f files/s, %.1f MB/s)%s%s%s\n",
                    c->prog, b->done, b->n, b->counts[S_CONVERTED],
                    c->encrypt ? "encrypted" : "decrypted", b->counts[S_COPIED],
                    b->counts[S_SKIPPED], b->counts[S_DICOMDIR], b->counts[S_DEFERRED],
                    b->counts[S_FAILED], b->done_bytes / 1e6, el, el > 0 ? b->done / el : 0,
                    el > 0 ? b->done_bytes / el / 1e6 : 0, c->report ? "; report: " : "",
                    c->report ? c->report : "",
                    stopped       ? "; interrupted: run the same command again to finish"
                    : b->disk_full ? "; stopped: the output file system is full; free space "
                                     "and run the same command again"
                                   : "");
        }
        if (!b->secret.have_key)
            cli_info(c, 1, "%s: %u key derivation(s), at most %d at once", c->prog,
                     b->derivations, b->max_deriving);
        rc = stopped                   ? 128 + stopped
             : b->disk_full            ? EXIT_OUTPUT
             : b->counts[S_FAILED] > 0 ? EXIT_SOME_FAILED
                                       : EXIT_OK;
    }
    if (b->report && fclose(b->report) != 0 && rc == EXIT_OK) {
        cli_error(c, "cannot write the report %s: %s", c->report, strerror(errno));
        rc = EXIT_OUTPUT;
    }
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i].rel);
        free(b->items[i].note);
    }
    free(b->items);
    free(b->dirs);
    for (size_t i = 0; i < b->seen_cap; i++)
        free(b->seen[i].rel);
    free(b->seen);
    if (b->out_fd >= 0)
        close(b->out_fd);
    cli_secret_free(&b->secret);
    dcmc_wipe(b->uid_key, sizeof b->uid_key);
    dcmc_wipe(b->cache, sizeof b->cache);
    dcmc_wipe(&b->enc_kdf, sizeof b->enc_kdf);
    pthread_cond_destroy(&b->kcv);
    pthread_mutex_destroy(&b->kmu);
    pthread_mutex_destroy(&b->mu);
    free(b);
    return rc;
}
