/*
 * batch.c - converting a tree of studies (docs/batch.md).
 *
 * The main thread walks dir-in, keeps this shard's files, starts -j workers and draws the
 * progress; each worker takes the next file, classifies it by content, and encrypts, decrypts or
 * copies it to a temporary file beside its destination that is renamed into place only when
 * complete, so an output name always holds a finished file. A rerun skips outputs that verify
 * (a MAC check for encrypted objects, a complete parse for decrypted ones, a byte comparison
 * for copies) and removes temporary files an interrupted run left. DICOMDIRs are rebuilt last,
 * from the outputs, when every file they reference is done.
 *
 * Threads: each worker's cipher calls get cores / jobs OpenMP threads, so -j never
 * oversubscribes. Signals: the first SIGINT/SIGTERM/SIGHUP lets the files in progress finish and
 * stops; a second one removes the temporary files in progress and exits at once.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 256
#define KEY_CACHE 8

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
    int special;   /* not a regular file (fifo, socket, device, symlink to a directory) */
    int err;       /* errno if it cannot even be looked at (a dangling link, no permission) */
} item;

typedef struct key_entry {
    dcmc_kdf kdf;
    dcmc_key key;
} key_entry;

typedef struct batch {
    const cli *c;
    char in_root[PATH_MAX], out_root[PATH_MAX];
    item *items;
    size_t n, cap;
    uint64_t total_bytes;
    mode_t file_mode;
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
    key_entry cache[KEY_CACHE];
    size_t ncache;
} batch;


/* Temporary files in progress, one slot per worker, for the second signal. */
static char g_tmp[MAX_JOBS][PATH_MAX];
static volatile sig_atomic_t g_tmp_live[MAX_JOBS];
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    if (g_stop) {
        for (int i = 0; i < MAX_JOBS; i++)
            if (g_tmp_live[i])
                unlink(g_tmp[i]); /* async-signal-safe */
        _exit(128 + sig);
    }
    g_stop = sig;
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

static int add_item(batch *b, const char *rel, uint64_t size, int special, int err)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        item *p = realloc(b->items, cap * sizeof *p);
        if (!p)
            return -1;
        b->items = p;
        b->cap = cap;
    }
    if (!(b->items[b->n].rel = strdup(rel)))
        return -1;
    b->items[b->n].size = size;
    b->items[b->n].special = special;
    b->items[b->n].err = err;
    b->n++;
    b->total_bytes += size;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk dir-in below `rel` (empty at the top), in name order; symbolic links to files count as
 * files, links to directories are not followed (no cycles). -1 with errno on failure. */
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
        struct stat ls, st;
        if (lstat(p, &ls) != 0) {
            rc = -1;
            break;
        }
        if (S_ISDIR(ls.st_mode)) {
            rc = walk(b, r);
        } else if (S_ISREG(ls.st_mode)) {
            rc = add_item(b, r, (uint64_t)ls.st_size, 0, 0);
        } else if (S_ISLNK(ls.st_mode)) {
            if (stat(p, &st) != 0)
                rc = add_item(b, r, 0, 1, errno ? errno : ENOENT);
            else
                rc = add_item(b, r, (uint64_t)st.st_size, !S_ISREG(st.st_mode), 0);
        } else {
            rc = add_item(b, r, 0, 1, 0);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Remove the temporary files an interrupted run of this shard left in dir-out. */
static size_t remove_stale(batch *b, const char *rel)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s%s%s", b->out_root, *rel ? "/" : "", rel) >= (int)sizeof dir)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char r[PATH_MAX], p[PATH_MAX];
        if (snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof r ||
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            continue;
        struct stat st;
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            removed += remove_stale(b, r);
            continue;
        }
        /* NAME.dcmcrypt-XXXXXX (mkstemp): only this shard's, another may be running. */
        const size_t len = strlen(r), tag = strlen(CLI_TMP_TAG);
        if (len > tag + 6 && !memcmp(r + len - 6 - tag, CLI_TMP_TAG, tag)) {
            r[len - 6 - tag] = '\0';
            if (b->c->shard_n <= 1 || batch_shard_of(r, b->c->shard_n) == b->c->shard_k - 1)
                removed += unlink(p) == 0;
        }
    }
    closedir(d);
    return removed;
}

/* ---- files ------------------------------------------------------------------------------- */

static int mkdirs_for(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return 0;
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

/* The key for a file made with `kdf` (ignored with a key file). */
static dcmc_status key_for(batch *b, const dcmc_kdf *kdf, dcmc_key *key, char *msg, size_t len)
{
    if (b->secret.have_key) {
        *key = b->secret.key;
        return DCMC_OK;
    }
    if (!kdf || kdf->id != DCMC_KDF_SCRYPT) {
        snprintf(msg, len, "encrypted with a key file, not a passphrase: use --key-file");
        return DCMC_ERR_WRONG_KEY;
    }
    pthread_mutex_lock(&b->mu);
    dcmc_status st = DCMC_OK;
    size_t i = 0;
    while (i < b->ncache && memcmp(&b->cache[i].kdf, kdf, sizeof *kdf) != 0)
        i++;
    if (i == b->ncache) {
        /* scrypt is the expensive part: one derivation per salt, under the lock so that two
         * workers never derive the same one. The oldest entry makes room. */
        if (b->ncache == KEY_CACHE) {
            dcmc_wipe(&b->cache[0], sizeof b->cache[0]);
            memmove(&b->cache[0], &b->cache[1], (KEY_CACHE - 1) * sizeof b->cache[0]);
            b->ncache--;
        }
        i = b->ncache;
        b->cache[i].kdf = *kdf;
        st = dcmc_key_from_passphrase(b->secret.pass, b->secret.pass_len, kdf, &b->cache[i].key);
        if (st == DCMC_OK)
            b->ncache++;
        else
            snprintf(msg, len, "key derivation failed: %s", dcmc_status_str(st));
    }
    if (st == DCMC_OK)
        *key = b->cache[i].key;
    pthread_mutex_unlock(&b->mu);
    return st;
}

/* The key an encrypted file needs. Only a passphrase needs the file's header (its salt), so a
 * key file's key costs no extra read of the object. */
static dcmc_status file_key(batch *b, const char *path, dcmc_key *key, char *msg, size_t len)
{
    if (b->secret.have_key)
        return key_for(b, NULL, key, msg, len);
    dcmc_header hdr;
    dcmc_status st = dcmc_dicom_peek(path, &hdr, msg, len);
    return st != DCMC_OK ? st : key_for(b, &hdr.kdf, key, msg, len);
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
        st = key_for(b, kdf, &key, msg, len);
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

/* Write `out` through a temporary file beside it, registered in the worker's signal slot, that
 * fill() fills and that is published only when complete. 0 with o->out_bytes set, or -1 with
 * o->reason set, errno kept for the caller, and nothing left behind. */
static int produce(batch *b, int slot, const char *in, const char *out, fill_fn fill, void *arg,
                   outcome *o)
{
    char tmp[PATH_MAX];
    if (mkdirs_for(out) != 0 || cli_temp_beside(out, tmp, sizeof tmp) != 0) {
        snprintf(o->reason, sizeof o->reason, "cannot create the output: %s", strerror(errno));
        return -1;
    }
    memcpy(g_tmp[slot], tmp, sizeof tmp);
    g_tmp_live[slot] = 1;
    o->reason[0] = '\0';
    int rc = fill(b, in, tmp, o, arg);
    if (rc == 0 && (rc = cli_publish(tmp, out, b->file_mode)) != 0)
        snprintf(o->reason, sizeof o->reason, "cannot write the output: %s", strerror(errno));
    const int err = errno;
    if (rc != 0)
        unlink(tmp);
    g_tmp_live[slot] = 0;
    struct stat st;
    if (rc == 0 && stat(out, &st) == 0)
        o->out_bytes = (uint64_t)st.st_size;
    errno = err;
    return rc;
}

/* After a failed write: if the output file system is full (ENOSPC, EDQUOT, or less room left
 * than the file needed), converting the rest would only fail file after file. Stop handing out
 * files and say so; the rerun after freeing space resumes. */
static void note_disk_full(batch *b, const char *out, int err, uint64_t need, outcome *o)
{
    struct statvfs v;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    const int full = err == ENOSPC || err == EDQUOT ||
                     (statvfs(dir, &v) == 0 &&
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
    char in[PATH_MAX], out[PATH_MAX];
    outcome o;
    memset(&o, 0, sizeof o);
    dcmc_dicom_probe_info pi;
    memset(&pi, 0, sizeof pi);
    int kind = K_SPECIAL, action = A_IGNORE;
    if (join(in, sizeof in, b->in_root, it->rel) != 0 ||
        join(out, sizeof out, b->out_root, it->rel) != 0) {
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
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            output_done(b, action, in, &pi, out)) {
            o.status = S_SKIPPED;
            snprintf(o.reason, sizeof o.reason, "output exists and verifies");
            o.out_bytes = (uint64_t)st.st_size;
        } else {
            char why[sizeof o.reason];
            snprintf(why, sizeof why, "%s", o.reason);
            if (produce(b, slot, in, out, action == A_COPY ? copy_into : convert, NULL, &o) != 0) {
                o.status = S_FAILED;
                note_disk_full(b, out, errno, it->size, &o);
            } else {
                o.status = action == A_COPY ? S_COPIED : S_CONVERTED;
                snprintf(o.reason, sizeof o.reason, "%s", why);
            }
        }
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
        size_t i = b->next < b->n && !g_stop && !b->disk_full ? b->next++ : (size_t)-1;
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

static void rebuild_dicomdir(batch *b, size_t idx)
{
    const item *it = &b->items[idx];
    const double t0 = now_s();
    outcome o;
    memset(&o, 0, sizeof o);
    o.status = S_FAILED;
    char in[PATH_MAX], out[PATH_MAX], root_in[PATH_MAX], root_out[PATH_MAX];
    if (join(in, sizeof in, b->in_root, it->rel) != 0 ||
        join(out, sizeof out, b->out_root, it->rel) != 0) {
        snprintf(o.reason, sizeof o.reason, "path too long");
        record(b, it, K_DICOMDIR, &o, 0);
        return;
    }
    snprintf(root_in, sizeof root_in, "%s", in);
    snprintf(root_out, sizeof root_out, "%s", out);
    *strrchr(root_in, '/') = '\0';
    *strrchr(root_out, '/') = '\0';
    char **refs = NULL;
    size_t n = 0, kept = 0, missing = 0;
    const char *bad = NULL;
    dcmc_status st = dcmc_dicomdir_refs(in, &refs, &n, o.reason, sizeof o.reason);
    if (st == DCMC_OK) {
        /* References to files the input never had are dropped (and said); one to a file that
         * failed stops the rebuild: a DICOMDIR silently missing images would mislead. */
        for (size_t i = 0; i < n; i++) {
            char pi[PATH_MAX], po[PATH_MAX];
            struct stat s;
            if (join(pi, sizeof pi, root_in, refs[i]) != 0 ||
                join(po, sizeof po, root_out, refs[i]) != 0 || stat(pi, &s) != 0) {
                missing++;
                free(refs[i]);
                continue;
            }
            if (stat(po, &s) != 0) {
                bad = refs[i];
                refs[kept++] = refs[i];
                continue;
            }
            refs[kept++] = refs[i];
        }
        if (bad) {
            snprintf(o.reason, sizeof o.reason,
                     "not rebuilt: it references %.300s, which has no output", bad);
        } else {
            dicomdir_arg da = {root_out, (const char *const *)refs, kept};
            if (produce(b, 0, in, out, write_dicomdir, &da, &o) == 0) {
                o.status = S_DICOMDIR;
                snprintf(o.reason, sizeof o.reason, "rebuilt: %zu references", kept);
                if (missing)
                    snprintf(o.reason + strlen(o.reason), sizeof o.reason - strlen(o.reason),
                             ", %zu to files missing from the input dropped", missing);
            }
        }
        dcmc_dicomdir_refs_free(refs, kept);
    }
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
                st = key_for(b, &b->enc_kdf, &k, msg, sizeof msg);
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
    if (mkdir(c->out, 0777) != 0 && errno != EEXIST) {
        cli_error(c, "cannot create %s: %s", c->out, strerror(errno));
        return EXIT_OUTPUT;
    }
    if (!realpath(c->out, b->out_root) || stat(b->out_root, &st) != 0 || !S_ISDIR(st.st_mode)) {
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
    pthread_mutex_init(&b->mu, NULL);
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
        mode_t um = umask(0);
        umask(um);
        b->file_mode = 0666 & ~um;
        b->tty = c->verbosity >= 0 && isatty(STDERR_FILENO);
        const size_t stale = remove_stale(b, "");
        if (stale)
            cli_info(c, 0, "%s: removed %zu temporary file(s) an interrupted run left", c->prog,
                     stale);
        cli_info(c, 1, "%s: %zu files, %.1f MB; %d jobs x %d threads", c->prog, b->n,
                 b->total_bytes / 1e6, b->jobs, b->threads_per_job);

        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);

        const double t0 = now_s();
        pthread_t th[MAX_JOBS];
        worker_arg wa[MAX_JOBS];
        int started = 0;
        b->active = b->jobs;
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
        if (!g_stop && !b->disk_full && c->shard_n <= 1)
            for (size_t i = 0; i < b->ndirs; i++)
                rebuild_dicomdir(b, b->dirs[i]);
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
                    g_stop        ? "; interrupted: run the same command again to finish"
                    : b->disk_full ? "; stopped: the output file system is full; free space "
                                     "and run the same command again"
                                   : "");
        }
        rc = g_stop                    ? 128 + g_stop
             : b->disk_full            ? EXIT_OUTPUT
             : b->counts[S_FAILED] > 0 ? EXIT_SOME_FAILED
                                       : EXIT_OK;
    }
    if (b->report && fclose(b->report) != 0 && rc == EXIT_OK) {
        cli_error(c, "cannot write the report %s: %s", c->report, strerror(errno));
        rc = EXIT_OUTPUT;
    }
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].rel);
    free(b->items);
    free(b->dirs);
    cli_secret_free(&b->secret);
    dcmc_wipe(b->uid_key, sizeof b->uid_key);
    dcmc_wipe(b->cache, sizeof b->cache);
    pthread_mutex_destroy(&b->mu);
    free(b);
    return rc;
}
