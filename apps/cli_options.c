/*
 * cli_options.c - the options of dcmencrypt and dcmdecrypt: one table that both the parser and
 * `--help` read (DCMTK style: [options] in out, -v/-q/-d, --version), the one-line messages, and
 * the mapping of library statuses to exit codes.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which tool accepts an option. */
enum { FOR_ENC = 1, FOR_DEC = 2, FOR_BOTH = FOR_ENC | FOR_DEC };
/* The sections of --help, in order. */
enum { SEC_KEY, SEC_CIPHER, SEC_DEID, SEC_TREE, SEC_GENERAL, NSECTIONS };
static const char *const k_sections[NSECTIONS] = {
    "key (one of; never on the command line itself):", "cipher:",
    "de-identification (PS3.15 Annex E, reversible; docs/deidentification.md):",
    "trees (--recurse):", "general:"};

/* A handler: -1 to go on, or the exit code to return now (EXIT_OK after --help). */
typedef int (*opt_fn)(cli *c, const char *val);

/* An option. A handler parses and checks its value; without one, the option stores its value
 * (a string option) or `flag` (an option without a value, into an int) in the field of struct
 * cli at offset `field`. */
typedef struct cli_option {
    const char *name;  /* "--key-file" */
    char letter;       /* 'j' for -j, or 0 */
    const char *arg;   /* "FILE", or NULL: takes no value */
    unsigned tools;    /* FOR_*; 0: refused with a message, not in --help */
    unsigned section;  /* SEC_* */
    const char *help;  /* '\n' starts a continuation line */
    opt_fn set;        /* or NULL: */
    size_t field;      /* offsetof(cli, ...) */
    int flag;
    int is_key;        /* one of the key sources: at most one may be given */
} cli_option;

static int usage_error(const cli *c, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", c->prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s --help'.\n", c->prog);
    return EXIT_USAGE;
}

/* A whole decimal number from lo to hi, or a usage error naming the option. */
static int number(const cli *c, const char *opt, const char *val, long long lo, long long hi,
                  long long *out)
{
    char *end;
    const long long v = strtoll(val, &end, 10);
    if (end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s needs a number from %lld to %lld, not '%s'\nTry '%s --help'.\n",
                c->prog, opt, lo, hi, val, c->prog);
        return EXIT_USAGE;
    }
    *out = v;
    return -1;
}

static int opt_help(cli *c, const char *val);

static int opt_version(cli *c, const char *val)
{
    (void)val;
    printf("%s (%s)\n%s\n%s\nSIMD path: %s\n", c->prog, "dcmcrypt " DCMC_VERSION_STRING,
           dcmc_build_info(), dcmc_dicom_versions(), dcmc_simd_path());
    return EXIT_OK;
}

static int opt_preset(cli *c, const char *val)
{
    /* dcmcryptstat's paper-* schemes (the paper's trained system) cannot decrypt exactly. */
    if (!strncmp(val, "paper-", 6))
        return usage_error(c, "'%s' is a research scheme of dcmcryptstat and dcmcrypt-demo: a "
                              "lossy research scheme never produces a DICOM object", val);
    if (dcmc_preset_by_name(val, &c->opt.preset) != DCMC_OK)
        return usage_error(c, "unknown preset '%s' (at-resnet-cm, resnet-cm)", val);
    return -1;
}

static int opt_no_standard(cli *c, const char *val)
{
    (void)val;
    c->opt.flags &= ~DCMC_FLAG_STANDARD_LAYER;
    return -1;
}

static int opt_threads(cli *c, const char *val)
{
    long long v = 0;
    const int rc = number(c, "--threads", val, 1, 1024, &v);
    c->opt.threads = (int)v;
    return rc;
}

static int opt_scrypt_max(cli *c, const char *val)
{
    long long v = 0;
    const int rc = number(c, "--scrypt-max-mib", val, 1, 1LL << 20, &v);
    c->scrypt_max_mib = (uint64_t)v;
    return rc;
}

static int opt_max_expansion(cli *c, const char *val)
{
    long long v = 0;
    const int rc = number(c, "--max-expansion", val, 1, 1000000, &v);
    c->max_expansion = (unsigned)v;
    return rc;
}

static int opt_jobs(cli *c, const char *val)
{
    long long v = 0;
    const int rc = number(c, "--jobs", val, 1, 256, &v);
    c->jobs = (int)v;
    return rc;
}

/* K/N: two decimal numbers, 1 <= K <= N. */
static int opt_shard(cli *c, const char *val)
{
    const char *slash = strchr(val, '/');
    char *end_k = NULL, *end_n = NULL;
    unsigned long k = 0, n = 0;
    if (slash && isdigit((unsigned char)val[0]) && isdigit((unsigned char)slash[1])) {
        k = strtoul(val, &end_k, 10);
        n = strtoul(slash + 1, &end_n, 10);
    }
    if (!end_k || end_k != slash || *end_n || n < 1 || k < 1 || k > n || n > UINT_MAX)
        return usage_error(c, "--shard needs K/N with 1 <= K <= N, not '%s'", val);
    c->shard_k = (unsigned)k;
    c->shard_n = (unsigned)n;
    return -1;
}

/* The names of --deid-options, in the order of the DCMC_DEID_* bits' documentation. */
static const struct {
    const char *name;
    unsigned bit;
} k_deid_names[] = {
    {"modified-dates", DCMC_DEID_MODIFIED_DATES},
    {"full-dates", DCMC_DEID_FULL_DATES},
    {"patient-characteristics", DCMC_DEID_PATIENT_CHARS},
    {"device-identity", DCMC_DEID_DEVICE},
    {"institution-identity", DCMC_DEID_INSTITUTION},
    {"safe-private", DCMC_DEID_SAFE_PRIVATE},
    {"clean-descriptors", DCMC_DEID_CLEAN_DESCRIPTORS},
    {"clean-structured-content", DCMC_DEID_CLEAN_STRUCTURED},
    {"clean-graphics", DCMC_DEID_CLEAN_GRAPHICS},
};

static int opt_deidentify(cli *c, const char *val)
{
    (void)val;
    if (!c->dopt.deidentify)
        c->dopt.deid_options = DCMC_DEID_DEFAULTS;
    c->dopt.deidentify = 1;
    return -1;
}

/* NAME[,NAME...] from the defaults; "no-NAME" takes an option away. Implies --deidentify. */
static int opt_deid_options(cli *c, const char *val)
{
    opt_deidentify(c, NULL);
    const char *p = val;
    while (*p) {
        const size_t n = strcspn(p, ",");
        const int off = n > 3 && strncmp(p, "no-", 3) == 0;
        const char *name = p + (off ? 3 : 0);
        const size_t len = n - (off ? 3 : 0);
        size_t i = 0;
        while (i < sizeof k_deid_names / sizeof k_deid_names[0] &&
               !(strlen(k_deid_names[i].name) == len && strncmp(name, k_deid_names[i].name, len) == 0))
            i++;
        if (i == sizeof k_deid_names / sizeof k_deid_names[0]) {
            char bad[64];
            snprintf(bad, sizeof bad, "%.*s", (int)(n < 63 ? n : 63), p);
            return usage_error(c, "--deid-options: unknown option '%s'", bad);
        }
        if (off)
            c->dopt.deid_options &= ~k_deid_names[i].bit;
        else
            c->dopt.deid_options |= k_deid_names[i].bit;
        p += n + (p[n] == ',');
    }
    if ((c->dopt.deid_options & DCMC_DEID_FULL_DATES) &&
        (c->dopt.deid_options & DCMC_DEID_MODIFIED_DATES))
        return usage_error(c, "%s", "--deid-options: full-dates and modified-dates exclude each "
                                    "other (add no-modified-dates)");
    return -1;
}

static int opt_recipient(cli *c, const char *val)
{
    if (c->n_recipients >= CLI_MAX_RECIPIENTS)
        return usage_error(c, "%s", "at most 16 --recipient certificates");
    c->recipients[c->n_recipients++] = val;
    return -1;
}

/* DCMTK's tools name syntaxes by option (+te, +td, +tr...); one option with names here. */
static int opt_transfer_syntax(cli *c, const char *val)
{
    static const char *const names[][2] = {
        {"explicit", NULL},
        {"keep", "keep"},
        {"1.2.840.10008.1.2.1", NULL},
        {"deflated", "1.2.840.10008.1.2.1.99"},
        {"rle", "1.2.840.10008.1.2.5"},
        {"jpeg-lossless", "1.2.840.10008.1.2.4.70"},
        {"jpeg-ls", "1.2.840.10008.1.2.4.80"},
        {"j2k", "1.2.840.10008.1.2.4.90"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(val, names[i][0]) == 0 || (names[i][1] && strcmp(val, names[i][1]) == 0 &&
                                               isdigit((unsigned char)val[0]))) {
            c->dopt.transfer_syntax = names[i][1];
            return -1;
        }
    return usage_error(c, "--transfer-syntax: '%s' is not one of explicit, keep, deflated, rle, "
                          "jpeg-lossless, jpeg-ls, j2k (or their UIDs)",
                       val);
}

static int opt_secret_argument(cli *c, const char *val)
{
    return usage_error(c, "%s: keys and passphrases are never taken from the command line; use "
                          "--key-file, --passphrase-file or --passphrase-env",
                       val);
}

#define STR(f) NULL, offsetof(cli, f), 0
#define FLAG(f, v) NULL, offsetof(cli, f), v
#define FN(fn) fn, 0, 0
static const cli_option k_options[] = {
    {"--key-file", 0, "FILE", FOR_BOTH, SEC_KEY,
     "key: 64 hex characters or 32 bytes (openssl rand -hex 32)", STR(key_file), 1},
    {"--new-key", 0, "FILE", FOR_ENC, SEC_KEY,
     "make a new random key, write it to FILE (mode 0600), use it", STR(new_key), 1},
    {"--passphrase-file", 0, "FILE", FOR_BOTH, SEC_KEY,
     "passphrase in the first line of FILE (scrypt)", STR(pass_file), 1},
    {"--passphrase-env", 0, "VAR", FOR_BOTH, SEC_KEY,
     "passphrase in environment variable VAR\n(default: ask on the terminal, without echo)",
     STR(pass_env), 1},
    {"--scrypt-max-mib", 0, "N", FOR_BOTH, SEC_KEY,
     "refuse scrypt costs above N MiB (default 256)", FN(opt_scrypt_max), 0},
    {"--max-expansion", 0, "N", FOR_BOTH, SEC_KEY,
     "refuse compressed pixel data or a deflated dataset that\nwould decode to more than N "
     "times the file's size (default\n64; 4 MiB always)",
     FN(opt_max_expansion), 0},
    {"--preset", 0, "NAME", FOR_ENC, SEC_CIPHER, "at-resnet-cm (default) or resnet-cm",
     FN(opt_preset), 0},
    {"--no-standard-layer", 0, NULL, FOR_ENC, SEC_CIPHER,
     "chaos keystream without ChaCha20 (research only)", FN(opt_no_standard), 0},
    {"--transfer-syntax", 0, "NAME", FOR_ENC, SEC_CIPHER,
     "how the encrypted object is written: explicit (default),\nkeep (the original's lossless "
     "syntax where smaller\nthan native), deflated, rle, jpeg-lossless, jpeg-ls, j2k,\nor a UID",
     FN(opt_transfer_syntax), 0},
    {"--threads", 0, "N", FOR_BOTH, SEC_CIPHER,
     "threads (default: all cores; OMP_NUM_THREADS respected)", FN(opt_threads), 0},
    {"--deidentify", 0, NULL, FOR_ENC, SEC_DEID,
     "also de-identify the header (Basic Profile; originals kept\nencrypted, restored by "
     "dcmdecrypt); default options:\nmodified-dates, patient-characteristics, safe-private,\n"
     "clean-descriptors",
     FN(opt_deidentify), 0},
    {"--deid-options", 0, "LIST", FOR_ENC, SEC_DEID,
     "profile options, comma-separated, from the defaults: modified-\ndates full-dates "
     "patient-characteristics device-identity\ninstitution-identity safe-private "
     "clean-descriptors\nclean-structured-content clean-graphics; no-NAME drops one",
     FN(opt_deid_options), 0},
    {"--recipient", 0, "CERT", FOR_ENC, SEC_DEID,
     "X.509 certificate (PEM) that can also open the Encrypted\nAttributes Sequence "
     "(gdcmanon -d); repeatable",
     FN(opt_recipient), 0},
    {"--password-recipient", 0, NULL, FOR_ENC, SEC_DEID,
     "with a passphrase: let the passphrase open that sequence with\nstandard tools too "
     "(PBKDF2: weaker than scrypt, see the man page)",
     FLAG(password_recipient, 1), 0},
    {"--recurse", 'r', NULL, FOR_BOTH, SEC_TREE,
     "dir-in and dir-out are directories: convert the whole tree", FLAG(recurse, 1), 0},
    {"--jobs", 'j', "N", FOR_BOTH, SEC_TREE,
     "files at once (default: one per core; the cores are shared)", FN(opt_jobs), 0},
    {"--report", 0, "FILE", FOR_BOTH, SEC_TREE,
     "one JSON line per file: path, kind, status, reason, sizes, ms", STR(report), 0},
    {"--shard", 0, "K/N", FOR_BOTH, SEC_TREE,
     "only the K-th of N deterministic parts of the tree", FN(opt_shard), 0},
    {"--verbose", 'v', NULL, FOR_BOTH, SEC_GENERAL, "say what was done", FLAG(verbosity, 1), 0},
    {"--quiet", 'q', NULL, FOR_BOTH, SEC_GENERAL, "print nothing but errors",
     FLAG(verbosity, -1), 0},
    {"--debug", 'd', NULL, FOR_BOTH, SEC_GENERAL, "more detail", FLAG(verbosity, 2), 0},
    {"--help", 'h', NULL, FOR_BOTH, SEC_GENERAL, "this text", FN(opt_help), 0},
    {"--version", 0, NULL, FOR_BOTH, SEC_GENERAL, "versions, libraries and SIMD path",
     FN(opt_version), 0},
    /* Refused with the reason, whichever the tool. */
    {"--key", 0, NULL, 0, SEC_KEY, NULL, FN(opt_secret_argument), 0},
    {"--passphrase", 0, NULL, 0, SEC_KEY, NULL, FN(opt_secret_argument), 0},
};
#undef STR
#undef FLAG
#undef FN
#define NOPTIONS (sizeof k_options / sizeof k_options[0])

/* What --help says around the table. */
static const char *const k_about[2] = {
    "Decrypt an object made by dcmencrypt and restore the original exactly.\n",
    "Encrypt the pixel data of a DICOM object with the AT-ResNet-CM cipher.\n"};
static const char *const k_exit[2] = {
    "exit status: 0 done, 1 usage, 2 input unreadable/not DICOM/not encrypted, 3 wrong key or\n"
    "integrity failure (nothing written), 4 output not written, 5 (--recurse) some files\n"
    "failed, 70 internal error (a bug: please report it)\n",
    "exit status: 0 done, 1 usage, 2 input unreadable/not DICOM/unsupported, 3 key or\n"
    "integrity problem, 4 output not written, 5 (--recurse) some files failed, 70 internal\n"
    "error (a bug: please report it)\n"};

static unsigned tool_bit(const cli *c)
{
    return c->encrypt ? FOR_ENC : FOR_DEC;
}

/* "  -j, --jobs N               files at once ...": the help text from column 29. */
static void print_option(const cli_option *o)
{
    char head[64];
    snprintf(head, sizeof head, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    if (o->letter)
        printf("  -%c, %-22s ", o->letter, head);
    else
        printf("      %-22s ", head);
    for (const char *p = o->help, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        const int len = nl ? (int)(nl - p) : (int)strlen(p);
        printf("%.*s\n", len, p);
        if (!nl)
            break;
        printf("%29s", "");
    }
}

static int opt_help(cli *c, const char *val)
{
    (void)val;
    printf("usage: %s [options] dcmfile-in dcmfile-out\n"
           "       %s [options] --recurse dir-in dir-out\n%s",
           c->prog, c->prog, k_about[c->encrypt != 0]);
    for (unsigned s = 0; s < NSECTIONS; s++) {
        int shown = 0;
        for (size_t i = 0; i < NOPTIONS; i++) {
            const cli_option *o = &k_options[i];
            if (o->section != s || !(o->tools & tool_bit(c)))
                continue;
            if (!shown++)
                printf("%s\n", k_sections[s]);
            print_option(o);
        }
    }
    fputs(k_exit[c->encrypt != 0], stdout);
    return EXIT_OK;
}

/* The option `a` names for this tool (its long name or its letter), or NULL. */
static const cli_option *find_option(const cli *c, const char *a)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const cli_option *o = &k_options[i];
        const int hit = !strcmp(a, o->name) || (o->letter && a[0] == '-' && a[1] == o->letter &&
                                                a[2] == '\0');
        if (hit && (o->tools == 0 || (o->tools & tool_bit(c))))
            return o;
    }
    return NULL;
}

/* Take option o (val: its value, or its name when it has none): -1, or an exit code. */
static int apply(cli *c, const cli_option *o, const char *val)
{
    if (o->set)
        return o->set(c, val);
    char *field = (char *)c + o->field;
    if (o->arg)
        memcpy(field, &val, sizeof val); /* a const char * member */
    else
        memcpy(field, &o->flag, sizeof o->flag); /* an int member */
    return -1;
}

/* The checks that need all the options: -1, or a usage error. */
static int check_options(cli *c, int npos, int nkeys)
{
    if (npos != 2)
        return usage_error(c, "%s", c->recurse ? "--recurse needs dir-in and dir-out"
                                               : "needs dcmfile-in and dcmfile-out");
    if (!c->recurse && (c->jobs || c->report || c->shard_n))
        return usage_error(c, "%s", "--jobs, --report and --shard go with --recurse");
    if (nkeys > 1)
        return usage_error(c, "%s", "give only one of --key-file, --new-key, --passphrase-file, "
                                    "--passphrase-env");
    if (c->password_recipient && (c->key_file || c->new_key))
        return usage_error(c, "%s", "--password-recipient needs a passphrase, not a key file");
    return -1;
}

dcmc_dicom_options cli_dicom_options(const cli *c, const cli_secret *s)
{
    dcmc_dicom_options d = c->dopt;
    d.recipients = c->n_recipients ? c->recipients : NULL;
    d.n_recipients = (size_t)c->n_recipients;
    if (c->password_recipient && !s->have_key) {
        d.password = s->pass;
        d.password_len = s->pass_len;
    }
    return d;
}

int cli_parse(cli *c, int argc, char **argv)
{
    cli_harden(); /* first: nothing secret exists yet */
    dcmc_options_default(&c->opt);
    c->scrypt_max_mib = DCMC_SCRYPT_MAX_MIB_DEFAULT;
    const char *pos[2] = {NULL, NULL};
    int npos = 0, nkeys = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const cli_option *o = find_option(c, a);
        int rc;
        if (o && o->arg && i + 1 >= argc)
            return usage_error(c, "option %s needs a value", a);
        if (o) {
            nkeys += o->is_key;
            rc = apply(c, o, o->arg ? argv[++i] : a);
        } else if (a[0] == '-' && a[1] != '\0') {
            rc = usage_error(c, "unknown option '%s'", a);
        } else if (npos == 2) {
            rc = usage_error(c, "too many arguments ('%s')", a);
        } else {
            pos[npos++] = a;
            rc = -1;
        }
        if (rc >= 0)
            return rc;
    }
    const int rc = check_options(c, npos, nkeys);
    if (rc >= 0)
        return rc;
    c->in = pos[0];
    c->out = pos[1];
    dcmc_dicom_set_max_expansion(c->max_expansion); /* 0: the default */
    return -1;
}

void cli_error(const cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_info(const cli *c, int level, const char *fmt, ...)
{
    if (c->verbosity < level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_exit_code(dcmc_status st)
{
    switch (st) {
    case DCMC_OK:
        return EXIT_OK;
    case DCMC_ERR_WRONG_KEY:
    case DCMC_ERR_INTEGRITY:
        return EXIT_KEY;
    case DCMC_ERR_WRITE:
        return EXIT_OUTPUT;
    case DCMC_ERR_ARG:
    case DCMC_ERR_KEY:
        return EXIT_USAGE;
    case DCMC_ERR_INTERNAL:
        return EXIT_SOFTWARE;
    default:
        return EXIT_INPUT;
    }
}

void cli_status_msg(char *msg, size_t len, dcmc_status st)
{
    const size_t l = strlen(msg);
    if (!l)
        snprintf(msg, len, "%s", dcmc_status_str(st));
    else if (st == DCMC_ERR_INTERNAL && !strstr(msg, dcmc_status_str(st)))
        snprintf(msg + l, len - l, "; %s", dcmc_status_str(st)); /* "...please report it" */
}
