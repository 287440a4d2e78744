/*
 * batch_worker.c - the workers of a batch: each takes the next file, classifies it by content,
 * and encrypts, decrypts or copies it (or skips it when its output exists and verifies). The
 * workers block the stop signals; the main thread draws the progress meanwhile.
 */
#define _GNU_SOURCE
#include "batch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* What the worker knows of one input: what it is, and its parse, which converts it without
 * reading it again (one parse per file). */
typedef struct input {
    dcmc_dicom_probe_info pi;
    dcmc_dicom_object *obj; /* NULL unless DCMTK parsed the file */
} input;

static int classify(const char *path, input *ip, char *msg, size_t len)
{
    if (!looks_like_dicom(path))
        return K_OTHER;
    if (dcmc_dicom_open(path, &ip->obj, &ip->pi, msg, len) != DCMC_OK)
        return K_BROKEN;
    switch (ip->pi.kind) {
    case DCMC_DICOM_IMAGE:
        return K_IMAGE;
    case DCMC_DICOM_ENCRYPTED:
        return K_ENCRYPTED;
    case DCMC_DICOM_DIRECTORY:
        return K_DICOMDIR;
    case DCMC_DICOM_PROTECTED:
        return K_PROTECTED;
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
        return batch_same_bytes(in, out);
    dcmc_dicom_probe_info po;
    char uid[65], want[65];
    if (!b->c->encrypt) /* a decrypted object: complete, and no longer ours */
        return dcmc_dicom_probe(out, 1, &po, msg, sizeof msg) == DCMC_OK &&
               po.kind == (pin->kind == DCMC_DICOM_PROTECTED ? DCMC_DICOM_NO_PIXELS
                                                              : DCMC_DICOM_IMAGE);
    if (pin->kind == DCMC_DICOM_NO_PIXELS) /* protected, and the protection of this input */
        return dcmc_dicom_probe(out, 1, &po, msg, sizeof msg) == DCMC_OK &&
               po.kind == DCMC_DICOM_PROTECTED &&
               (!pin->sop_instance_uid[0] ||
                (dcmc_uid_map(b->uid_key, pin->sop_instance_uid, want) == DCMC_OK &&
                 !strcmp(po.sop_instance_uid, want)));
    dcmc_key key;
    if (batch_file_key(b, out, NULL, &key, msg, sizeof msg) != DCMC_OK)
        return 0;
    int ok = dcmc_dicom_verify(out, &key, uid, msg, sizeof msg) == DCMC_OK;
    dcmc_wipe(&key, sizeof key);
    /* ... and is the encryption of this input: its new UID is the input's, mapped. */
    if (ok && pin->sop_instance_uid[0])
        ok = dcmc_uid_map(b->uid_key, pin->sop_instance_uid, want) == DCMC_OK &&
             !strcmp(uid, want);
    return ok;
}

/* arg: the input (what it is decides how it is converted; its parse is used up). */
static int convert(batch *b, const char *in, const char *tmp, outcome *o, void *arg)
{
    input *ip = arg;
    const int kind = ip->pi.kind;
    char *msg = o->reason;
    const size_t len = sizeof o->reason;
    dcmc_dicom_info info;
    memset(&info, 0, sizeof info);
    dcmc_options opt = b->c->opt;
    opt.threads = b->threads_per_job;
    dcmc_status st;
    if (kind == DCMC_DICOM_NO_PIXELS || kind == DCMC_DICOM_PROTECTED) {
        const dcmc_dicom_options dopt = cli_dicom_options(b->c, &b->secret);
        st = kind == DCMC_DICOM_NO_PIXELS
                 ? dcmc_dicom_protect_header(in, tmp, b->uid_key, &dopt, msg, len)
                 : dcmc_dicom_restore_header(in, tmp, b->uid_key, msg, len);
    } else if (b->c->encrypt) {
        dcmc_key key;
        const dcmc_kdf *kdf = b->secret.have_key ? NULL : &b->enc_kdf;
        st = batch_own_key(b, &key, msg, len);
        const dcmc_dicom_options dopt = cli_dicom_options(b->c, &b->secret);
        if (st == DCMC_OK)
            st = dcmc_dicom_object_encrypt(ip->obj, tmp, &key, kdf, b->uid_key, &opt, &dopt,
                                           &info, msg, len);
        dcmc_wipe(&key, sizeof key);
    } else {
        dcmc_key key;
        st = batch_file_key(b, in, ip->obj, &key, msg, len);
        if (st == DCMC_OK)
            st = dcmc_dicom_object_decrypt(ip->obj, tmp, &key, opt.threads, &info, msg, len);
        dcmc_wipe(&key, sizeof key);
    }
    if (st != DCMC_OK) { /* DCMC_ERR_INTERNAL too: the file fails, the run goes on */
        cli_status_msg(msg, len, st);
        errno = 0; /* the library promises nothing about errno: the disk-full check measures */
    }
    return st == DCMC_OK ? 0 : -1;
}

static int copy_into(batch *b, const char *in, const char *tmp, outcome *o, void *unused)
{
    (void)b;
    (void)unused;
    return batch_copy_file(in, tmp, o->reason, sizeof o->reason);
}


/* What to do with item `it` (kind *kind): the action, with the reason the report gives. */
static int decide(const item *it, int encrypt, const char *in, input *ip, int *kind, outcome *o)
{
    *kind = K_SPECIAL;
    if (it->err) {
        snprintf(o->reason, sizeof o->reason, "cannot read: %s", strerror(it->err));
        return A_FAIL;
    }
    if (it->special) {
        snprintf(o->reason, sizeof o->reason, "%s",
                 it->note ? it->note : "not a regular file: left out");
        return A_IGNORE;
    }
    *kind = classify(in, ip, o->reason, sizeof o->reason);
    const char *why = "";
    int action = A_COPY;
    switch (*kind) {
    case K_BROKEN:
        return A_FAIL;
    case K_DICOMDIR:
        return A_DEFER;
    case K_IMAGE:
        action = encrypt ? A_CONVERT : A_COPY;
        why = encrypt ? "" : "not encrypted";
        break;
    case K_ENCRYPTED:
        action = encrypt ? A_COPY : A_CONVERT;
        why = encrypt ? "already encrypted" : "";
        break;
    case K_NO_PIXELS: /* its header gets the images' UID map, so its references resolve */
        action = encrypt ? A_CONVERT : A_COPY;
        why = encrypt ? "no pixel data: header protected" : "no pixel data";
        break;
    case K_PROTECTED:
        action = encrypt ? A_COPY : A_CONVERT;
        why = encrypt ? "header already protected" : "no pixel data: header restored";
        break;
    default:
        why = "not DICOM";
    }
    snprintf(o->reason, sizeof o->reason, "%s", why);
    return action;
}

/* Convert or copy `in` (item it) into its output, unless the output exists and verifies. */
static void write_one(batch *b, int slot, const item *it, int action, const char *in, input *ip,
                      outcome *o)
{
    char why[sizeof o->reason], dir[PATH_MAX], out[PATH_MAX];
    snprintf(why, sizeof why, "%s", o->reason);
    const char *name = batch_base_name(it->rel);
    const int dirfd = batch_open_chain(b, b->out_fd, it->rel, 1, o->reason, sizeof o->reason);
    struct stat st;
    if (dirfd < 0) {
        o->status = S_FAILED;
        batch_note_disk_full(b, b->out_fd, errno, it->size, o);
    } else if (batch_dir_path(b, dirfd, it->rel, dir, sizeof dir) != 0 ||
               batch_join(out, sizeof out, dir, name) != 0) {
        o->status = S_FAILED;
        snprintf(o->reason, sizeof o->reason, "path too long");
    } else if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
               output_done(b, action, in, &ip->pi, out)) {
        /* Not through a link: one at the output's name is replaced below, never read. */
        o->status = S_SKIPPED;
        snprintf(o->reason, sizeof o->reason, "output exists and verifies");
        o->out_bytes = (uint64_t)st.st_size;
    } else {
        const target to = {dirfd, dir, name, it->mode & ~b->umask, 0, 1, it->size};
        if (batch_produce(b, slot, &to, in, action == A_COPY ? copy_into : convert, ip, o) != 0) {
            o->status = S_FAILED;
        } else {
            const int header =
                ip->pi.kind == DCMC_DICOM_NO_PIXELS || ip->pi.kind == DCMC_DICOM_PROTECTED;
            o->status = action == A_COPY ? S_COPIED : header ? S_HEADER : S_CONVERTED;
            snprintf(o->reason, sizeof o->reason, "%s", why);
        }
    }
    if (dirfd >= 0)
        close(dirfd);
}

static void process(batch *b, int slot, size_t idx)
{
    const item *it = &b->items[idx];
    const double t0 = batch_now();
    char in[PATH_MAX];
    outcome o;
    memset(&o, 0, sizeof o);
    input ip;
    memset(&ip, 0, sizeof ip);
    if (batch_join(in, sizeof in, b->in_root, it->rel) != 0) {
        o.status = S_FAILED;
        snprintf(o.reason, sizeof o.reason, "path too long");
        batch_record(b, it, K_SPECIAL, &o, 0);
        return;
    }
    int kind;
    const int action = decide(it, b->c->encrypt, in, &ip, &kind, &o);
    if (action != A_CONVERT || (kind != K_IMAGE && kind != K_ENCRYPTED)) {
        dcmc_dicom_close(ip.obj); /* only an image's conversion uses the parse */
        ip.obj = NULL;
    }
    o.status = action == A_FAIL ? S_FAILED : action == A_IGNORE ? S_SKIPPED : S_DEFERRED;
    if (action == A_DEFER) {
        pthread_mutex_lock(&b->mu);
        b->dirs[b->ndirs++] = idx;
        pthread_mutex_unlock(&b->mu);
        if (b->c->shard_n > 1) {
            snprintf(o.reason, sizeof o.reason,
                     "DICOMDIRs are rebuilt by a run without --shard, once every shard is done");
            batch_record(b, it, kind, &o, (batch_now() - t0) * 1e3);
        }
        return;
    }
    if (action == A_CONVERT || action == A_COPY)
        write_one(b, slot, it, action, in, &ip, &o);
    dcmc_dicom_close(ip.obj);
    batch_record(b, it, kind, &o, (batch_now() - t0) * 1e3);
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
        size_t i = b->next < b->n && !batch_stop_signal() && !b->disk_full ? b->next++
                                                                            : (size_t)-1;
        if (i == (size_t)-1)
            b->active--;
        pthread_mutex_unlock(&b->mu);
        if (i == (size_t)-1)
            return NULL;
        process(b, w->slot, i);
    }
}

/* Start the workers with the stop signals blocked (they, and their OpenMP threads, inherit the
 * mask): the handler runs on the main thread only, never on one holding a lock. The count
 * started; *th gets them. */
static int start_workers(batch *b, pthread_t *th, worker_arg *wa)
{
    sigset_t stop_sigs, old_mask;
    batch_signals(&stop_sigs);
    int started = 0;
    b->active = b->jobs;
    pthread_sigmask(SIG_BLOCK, &stop_sigs, &old_mask);
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
    return started;
}

void batch_work(batch *b, double t0)
{
    pthread_t th[MAX_JOBS];
    worker_arg wa[MAX_JOBS] = {{b, 0}}; /* [0]: the main thread's, when no thread starts */
    const int started = start_workers(b, th, wa);
    if (started == 0) /* no threads at all: do the work here */
        worker(&wa[0]);
    /* Progress while the workers run: redrawn on a terminal, a line every 10 s otherwise. */
    double last = batch_now();
    for (;;) {
        pthread_mutex_lock(&b->mu);
        const int busy = b->active > 0;
        pthread_mutex_unlock(&b->mu);
        if (!busy || started == 0)
            break;
        struct timespec ts = {0, 200000000L};
        nanosleep(&ts, NULL); /* EINTR (a stop signal) only draws the progress sooner */
        if (b->c->verbosity >= 0 && (b->tty || batch_now() - last >= 10)) {
            batch_progress(b, t0, 0);
            last = batch_now();
        }
    }
    for (int j = 0; j < started; j++)
        pthread_join(th[j], NULL);
}
