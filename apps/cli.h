/*
 * cli.h - what dcmencrypt and dcmdecrypt share: the options (cli_options.c), key sources (key
 * file, passphrase file or environment variable, no-echo prompt: cli_secret.c), the mapping of
 * statuses to exit codes, writing through a temporary file published in one step (cli_output.c),
 * and the single-file main flow (cli_main.c).
 */
#ifndef DCMC_APPS_CLI_H
#define DCMC_APPS_CLI_H

#include <limits.h>
#include <signal.h>
#include <sysexits.h>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/dicom.h"

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_INPUT = 2, EXIT_KEY = 3, EXIT_OUTPUT = 4 };
/* DCMC_ERR_INTERNAL: a bug in dcmcrypt itself. */
enum { EXIT_SOFTWARE = EX_SOFTWARE };

enum { CLI_MAX_RECIPIENTS = 16 };

typedef struct cli {
    const char *prog;
    int encrypt;                /* dcmencrypt (1) or dcmdecrypt (0) */
    int verbosity;              /* -q: -1, default 0, -v: 1, -d: 2 */
    const char *key_file, *new_key, *pass_file, *pass_env;
    uint64_t scrypt_max_mib;    /* --scrypt-max-mib: cost limit of a header's scrypt parameters */
    unsigned max_expansion;     /* --max-expansion: decoded/file size limit (0: the default) */
    dcmc_options opt;
    dcmc_dicom_options dopt;    /* --deidentify, --deid-options (recipients filled in by main) */
    const char *recipients[CLI_MAX_RECIPIENTS]; /* --recipient */
    int n_recipients;
    int password_recipient;     /* --password-recipient */
    const char *in, *out;
    /* --recurse dir-in dir-out (batch.c) */
    int recurse, jobs;          /* jobs 0: one per core */
    const char *report;         /* JSON lines, or NULL */
    unsigned shard_k, shard_n;  /* --shard K/N, 1 <= K <= N; N 0: no sharding */
} cli;

/* Core dumps off and the process not dumpable (a dump would hold the key). cli_parse calls it
 * first thing. */
void cli_harden(void);

/* Parse argv; returns -1 to go on, or an exit code (help, version, usage error). */
int cli_parse(cli *c, int argc, char **argv);

/* The key material: a key, or a passphrase (caller wipes and frees with cli_pass_free). */
typedef struct cli_secret {
    int have_key;
    dcmc_key key;
    char *pass;
    size_t pass_len;
} cli_secret;
int cli_secret_get(const cli *c, cli_secret *s, int confirm);
/* 1 (and why, in msg, naming --scrypt-max-mib) when deriving a key with kdf costs more than
 * max_mib. */
int cli_kdf_too_costly(const dcmc_kdf *kdf, uint64_t max_mib, char *msg, size_t len);
void cli_secret_free(cli_secret *s);

/* The DICOM options of the command line, with the recipients and (--password-recipient) the
 * passphrase of `s`; valid while c and s are. */
dcmc_dicom_options cli_dicom_options(const cli *c, const cli_secret *s);

int cli_exit_code(dcmc_status st);
/* A failure's message: msg as the library wrote it, the status's text when it wrote nothing, and
 * for DCMC_ERR_INTERNAL the request to report it. */
void cli_status_msg(char *msg, size_t len, dcmc_status st);
void cli_error(const cli *c, const char *fmt, ...);
void cli_info(const cli *c, int level, const char *fmt, ...);

/* Temporary outputs. Where the file system allows (O_TMPFILE, and /proc for writers that need a
 * path), a temporary has no name until it is complete, so a killed process leaves nothing behind.
 * Otherwise it is named NAME CLI_TMP_TAG PID-XXXXXX beside NAME, and a later run removes those
 * whose PID no longer runs (cli_tmp_stale). DCMTK's DICOMDIR writer adds its own ".tmp". */
#define CLI_TMP_TAG ".dcmcrypt-"
typedef struct cli_tmp {
    int fd;                      /* the temporary, read-write; -1 when there is none */
    int dirfd;                   /* the directory it is published in (the caller's) */
    int named;                   /* 1: the fallback, tmpname in dirfd; 0: no name yet */
    char tmpname[NAME_MAX + 1];
    char path[PATH_MAX];         /* what a writer that takes a path opens */
} cli_tmp;
/* Create an empty temporary in dirfd for the output `name`. dirpath names dirfd for writers when
 * /proc is missing. need_name: the writer replaces the file by rename (DCMTK's DICOMDIR), so it
 * must have a name. -1 with errno. */
int cli_tmp_create(cli_tmp *t, int dirfd, const char *dirpath, const char *name, int need_name);
/* fsync, give it `mode`, make it `name` in dirfd in one step (rename replaces a file or symbolic
 * link of that name, never a link's target): after a crash the name holds the old file or the
 * new one. The fd stays open for fstat. -1 with errno. */
int cli_tmp_publish(cli_tmp *t, const char *name, unsigned mode);
/* Close; a named temporary that was not published is removed. Safe to call twice. */
void cli_tmp_close(cli_tmp *t);
/* Is `entry` (a directory entry) a temporary of a run that no longer exists? *name_len gets the
 * length of the output name it was for. A live PID's (another run's) is never stale. */
int cli_tmp_stale(const char *entry, size_t *name_len);
/* Remove the stale temporaries in dirfd that want() accepts (given the output name's length);
 * a subdirectory (never a link) goes to subdir() when that is not NULL. The count removed. */
size_t cli_tmp_sweep(int dirfd, int (*want)(void *arg, const char *entry, size_t name_len),
                     size_t (*subdir)(void *arg, int dirfd, const char *entry), void *arg);
/* "/proc/self/fd/N" into buf: 0 when that path reaches fd's file (/proc is there), else -1. */
int cli_fd_path(char *buf, size_t len, int fd);
/* SIGINT, SIGTERM and SIGHUP, the signals that stop a run, to `handler` (sigaction with
 * `flags`); set (may be NULL) gets them, for pthread_sigmask. */
void cli_stop_signals(void (*handler)(int), int flags, sigset_t *set);

/* Output handling of the single-file tools: refuse to overwrite the input, remove stale
 * temporaries of the output, create its temporary (tmp: the path to write). The output gets the
 * input's permission bits less the umask. */
int cli_prepare_output(const cli *c, char *tmp, size_t tmp_len);
int cli_commit_output(const cli *c, const char *tmp);
void cli_discard_output(const char *tmp);
/* In an adapter message, the temporary's path `from` becomes `to` (the output's name). */
void cli_msg_rename(char *msg, size_t len, const char *from, const char *to);

/* ---- the single-file flow of both tools (cli_main.c) */
/* What one run of a tool learns, for its closing lines. */
typedef struct cli_run {
    dcmc_header hdr;        /* dcmdecrypt: the input's header, read first */
    dcmc_dicom_object *obj; /* dcmdecrypt: the input's one parse (closed by cli_main) */
    int header_only;        /* an object without pixels: its header protected or restored */
    dcmc_dicom_info info;
    char msg[DCMC_DICOM_MSG];
    double ms;              /* the whole conversion */
} cli_run;

typedef struct cli_tool {
    const char *name;
    int encrypt;
    /* Before the output is made and before any passphrase is asked: -1, or an exit code. NULL:
     * nothing to check. */
    int (*check)(const cli *c, cli_run *r);
    /* Convert c->in into tmp with the secret s (a passphrase: derive the key first). */
    dcmc_status (*convert)(const cli *c, cli_secret *s, const char *tmp, cli_run *r);
    /* -v and -d lines after success. */
    void (*report)(const cli *c, const cli_run *r);
} cli_tool;

/* main() of dcmencrypt and dcmdecrypt: options, --recurse to batch_run, else one object. */
int cli_main(const cli_tool *t, int argc, char **argv);

#endif
