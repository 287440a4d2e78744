/*
 * batch_int.h - what the files of a batch run share (batch.c orchestrates; batch_walk.c lists the
 * tree, batch_keys.c derives and caches keys, batch_output.c makes output directories and
 * temporaries and handles the stop signals, batch_worker.c converts files on -j threads,
 * batch_dicomdir.c rebuilds DICOMDIRs, batch_report.c writes the JSON lines report and the
 * summary, batch_progress.c draws the progress). Not an interface outside apps/.
 */
#ifndef DCMC_APPS_BATCH_INT_H
#define DCMC_APPS_BATCH_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "batch.h"

#define MAX_JOBS 256
#define KEY_CACHE 64

/* What a file is and what the batch does with it. */
enum kind {
    K_OTHER, K_BROKEN, K_IMAGE, K_ENCRYPTED, K_NO_PIXELS, K_PROTECTED, K_DICOMDIR, K_SPECIAL
};
enum action { A_CONVERT, A_COPY, A_DEFER, A_FAIL, A_IGNORE };
/* What happened to a file; S_CONVERTED is "encrypted" or "decrypted" in the report, S_HEADER
 * (an object without pixels) "protected" or "restored". */
enum status { S_CONVERTED, S_COPIED, S_SKIPPED, S_FAILED, S_DEFERRED, S_DICOMDIR, S_HEADER, NSTATUS };

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

/* What happened to one file, for the report. */
typedef struct outcome {
    int status; /* S_* */
    char reason[DCMC_DICOM_MSG];
    uint64_t out_bytes;
} outcome;

/* Fills a temporary output: 0, or -1 with o->reason set (and errno, where it is the cause). */
typedef int (*fill_fn)(batch *b, const char *in, const char *tmp, outcome *o, void *arg);

/* An output to write: `name` in directory dirfd (dirpath: a path to it for writers), with
 * permission bits `mode`. need_name: the writer renames its own file into place (DICOMDIR).
 * check_full: a failure checks whether the file system is full (need: the bytes it needed). */
typedef struct target {
    int dirfd;
    const char *dirpath, *name;
    unsigned mode;
    int need_name, check_full;
    uint64_t need;
} target;

/* ---- batch_walk.c: the file list */
/* Walk dir-in below `rel` ("" at the top) into b->items. -1 with errno on failure. */
int batch_walk(batch *b, const char *rel);
/* Remember a directory about to be walked: 1, or 0 when it was walked already (*first: where),
 * -1 out of memory. */
int batch_seen_add(batch *b, const struct stat *st, const char *rel, const char **first);
/* Keep this shard's items only, in order. */
void batch_keep_shard(batch *b);
/* Remove the stale temporaries of this shard below dir-out: the count removed. */
size_t batch_sweep(const batch *b);
void batch_items_free(batch *b);

/* ---- batch_keys.c: keys */
/* The secret, the UID key and (encrypting with a passphrase) the run's one salt: -1 to go on,
 * or an exit code. */
int batch_keys_setup(batch *b);
/* The key for an encrypted file (its header's salt), or for the run's own encryption. */
dcmc_status batch_file_key(batch *b, const char *path, dcmc_dicom_object *obj, dcmc_key *key,
                           char *msg, size_t len);
dcmc_status batch_own_key(batch *b, dcmc_key *key, char *msg, size_t len);
void batch_keys_free(batch *b);

/* ---- batch_output.c: output directories, temporaries, signals */
double batch_now(void);
/* root/rel into buf; -1 (ENAMETOOLONG) rather than a truncated path that names another file. */
int batch_join(char *buf, size_t len, const char *root, const char *rel);
const char *batch_base_name(const char *rel);
/* Open the directory holding `rel` below base, component by component, never through a link;
 * create: make the missing ones. The fd, or -1 with errno and the reason in msg. */
int batch_open_chain(const batch *b, int base, const char *rel, int create, char *msg, size_t len);
/* A path writers can use for dirfd, the directory of `rel` below dir-out. */
int batch_dir_path(const batch *b, int dirfd, const char *rel, char *buf, size_t len);
/* Write an output through a temporary that fill() fills (worker `slot`'s signal slot holds a
 * named one): 0 with o->out_bytes set, or -1 with o->reason set. */
int batch_produce(batch *b, int slot, const target *to, const char *in, fill_fn fill, void *arg,
                  outcome *o);
/* After a failed write (err: its errno, or 0): stop handing out files when the output file
 * system is full. */
void batch_note_disk_full(batch *b, int dirfd, int err, uint64_t need, outcome *o);
int batch_copy_file(const char *in, const char *out, char *msg, size_t msg_len);
int batch_same_bytes(const char *a, const char *b);
/* SIGINT, SIGTERM and SIGHUP to the batch's handler; set gets them, for the workers' mask. */
void batch_signals(sigset_t *set);
/* The signal that asked the run to stop, or 0. */
int batch_stop_signal(void);

/* ---- batch_worker.c: the workers */
/* Run b->jobs workers over the items, drawing progress meanwhile (t0: the start). */
void batch_work(batch *b, double t0);

/* ---- batch_dicomdir.c */
void batch_rebuild_dicomdirs(batch *b);

/* ---- batch_report.c */
/* One file done: counters, the report line, the message. */
void batch_record(batch *b, const item *it, int kind, outcome *o, double ms);
/* The closing line: counts, sizes, time, and why the run stopped. */
void batch_summary(const batch *b, double seconds, int stopped);

/* ---- batch_progress.c */
/* The progress bar (a terminal) or line (otherwise); final: the last one. */
void batch_progress(batch *b, double t0, int final);

#endif
