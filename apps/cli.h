/*
 * cli.h - what dcmencrypt and dcmdecrypt share: options, key sources (key file, passphrase file
 * or environment variable, no-echo prompt), the mapping of statuses to exit codes, and writing
 * through a temporary file and an atomic rename.
 */
#ifndef DCMC_APPS_CLI_H
#define DCMC_APPS_CLI_H

#include "dcmcrypt.h"
#include "dcmcrypt_dicom.h"

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_INPUT = 2, EXIT_KEY = 3, EXIT_OUTPUT = 4 };

typedef struct cli {
    const char *prog;
    int encrypt;                /* dcmencrypt (1) or dcmdecrypt (0) */
    int verbosity;              /* -q: -1, default 0, -v: 1, -d: 2 */
    const char *key_file, *new_key, *pass_file, *pass_env;
    dcmc_options opt;
    const char *in, *out;
    /* --recurse dir-in dir-out (batch.c) */
    int recurse, jobs;          /* jobs 0: one per core */
    const char *report;         /* JSON lines, or NULL */
    unsigned shard_k, shard_n;  /* --shard K/N, 1 <= K <= N; N 0: no sharding */
} cli;

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
void cli_secret_free(cli_secret *s);

int cli_exit_code(dcmc_status st);
void cli_error(const cli *c, const char *fmt, ...);
void cli_info(const cli *c, int level, const char *fmt, ...);

/* Temporary outputs are named OUT CLI_TMP_TAG XXXXXX, beside OUT. */
#define CLI_TMP_TAG ".dcmcrypt-"
/* Create an empty temporary file beside `out` (name in tmp); -1 with errno. */
int cli_temp_beside(const char *out, char *tmp, size_t tmp_len);
/* fsync tmp, give it `mode`, rename it to out: after a crash the name holds the old state or
 * the new, never a part. -1 with errno. */
int cli_publish(const char *tmp, const char *out, unsigned mode);

/* Output handling: refuse to overwrite the input; create a temporary file beside the output. */
int cli_prepare_output(const cli *c, char *tmp, size_t tmp_len);
int cli_commit_output(const cli *c, const char *tmp);
void cli_discard_output(const char *tmp);

#endif
