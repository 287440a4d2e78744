/*
 * cli.c - the command-line conventions of dcmencrypt and dcmdecrypt (DCMTK style: [options] in
 * out, -v/-q/-d, --version, one-line errors, stable exit codes), key input that never takes a
 * secret from the command line, and output through a temporary file and an atomic rename, so an
 * interrupted or failed run leaves no half-written output.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define PASS_MAX 4096

static const char *k_usage_enc =
    "usage: dcmencrypt [options] dcmfile-in dcmfile-out\n"
    "       dcmencrypt [options] --recurse dir-in dir-out\n"
    "Encrypt the pixel data of a DICOM object with the AT-ResNet-CM cipher.\n"
    "key (one of; never on the command line itself):\n"
    "      --key-file FILE        key: 64 hex characters or 32 bytes (openssl rand -hex 32)\n"
    "      --new-key FILE         make a new random key, write it to FILE (mode 0600), use it\n"
    "      --passphrase-file FILE passphrase in the first line of FILE (scrypt)\n"
    "      --passphrase-env VAR   passphrase in environment variable VAR\n"
    "                             (default: ask on the terminal, without echo)\n"
    "cipher:\n"
    "      --preset NAME          at-resnet-cm (default) or resnet-cm\n"
    "      --no-standard-layer    chaos keystream without ChaCha20 (research only)\n"
    "      --threads N            threads (default: all cores; OMP_NUM_THREADS respected)\n"
    "trees (--recurse):\n"
    "  -r, --recurse              dir-in and dir-out are directories: convert the whole tree\n"
    "  -j, --jobs N               files at once (default: one per core; the cores are shared)\n"
    "      --report FILE          one JSON line per file: path, kind, status, reason, sizes, ms\n"
    "      --shard K/N            only the K-th of N deterministic parts of the tree\n"
    "general:\n"
    "  -v, --verbose              say what was done\n"
    "  -q, --quiet                print nothing but errors\n"
    "  -d, --debug                more detail\n"
    "  -h, --help                 this text\n"
    "      --version              versions, libraries and SIMD path\n"
    "exit status: 0 done, 1 usage, 2 input unreadable/not DICOM/unsupported, 3 key or\n"
    "integrity problem, 4 output not written, 5 (--recurse) some files failed\n";

static const char *k_usage_dec =
    "usage: dcmdecrypt [options] dcmfile-in dcmfile-out\n"
    "       dcmdecrypt [options] --recurse dir-in dir-out\n"
    "Decrypt an object made by dcmencrypt and restore the original exactly.\n"
    "key (one of; never on the command line itself):\n"
    "      --key-file FILE        key: 64 hex characters or 32 bytes\n"
    "      --passphrase-file FILE passphrase in the first line of FILE\n"
    "      --passphrase-env VAR   passphrase in environment variable VAR\n"
    "                             (default: ask on the terminal, without echo)\n"
    "      --threads N            threads (default: all cores; OMP_NUM_THREADS respected)\n"
    "trees (--recurse):\n"
    "  -r, --recurse              dir-in and dir-out are directories: convert the whole tree\n"
    "  -j, --jobs N               files at once (default: one per core; the cores are shared)\n"
    "      --report FILE          one JSON line per file: path, kind, status, reason, sizes, ms\n"
    "      --shard K/N            only the K-th of N deterministic parts of the tree\n"
    "general:\n"
    "  -v, --verbose              say what was done\n"
    "  -q, --quiet                print nothing but errors\n"
    "  -d, --debug                more detail\n"
    "  -h, --help                 this text\n"
    "      --version              versions, libraries and SIMD path\n"
    "exit status: 0 done, 1 usage, 2 input unreadable/not DICOM/not encrypted, 3 wrong key or\n"
    "integrity failure (nothing written), 4 output not written, 5 (--recurse) some files\n"
    "failed\n";

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

static int usage_error(cli *c, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", c->prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s --help'.\n", c->prog);
    return EXIT_USAGE;
}

int cli_parse(cli *c, int argc, char **argv)
{
    dcmc_options_default(&c->opt);
    const char *pos[2];
    int npos = 0, nkeys = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE()                                                                       \
    do {                                                                                    \
        if (!val)                                                                           \
            return usage_error(c, "option %s needs a value", a);                            \
        i++;                                                                                \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(c->encrypt ? k_usage_enc : k_usage_dec, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("%s (%s)\n%s\n%s\nSIMD path: %s\n", c->prog, "dcmcrypt " DCMC_VERSION_STRING,
                   dcmc_build_info(), dcmc_dicom_versions(), dcmc_simd_path());
            return EXIT_OK;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            c->verbosity = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            c->verbosity = -1;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
            c->verbosity = 2;
        } else if (!strcmp(a, "--key-file")) {
            NEEDS_VALUE();
            c->key_file = val;
            nkeys++;
        } else if (!strcmp(a, "--passphrase-file")) {
            NEEDS_VALUE();
            c->pass_file = val;
            nkeys++;
        } else if (!strcmp(a, "--passphrase-env")) {
            NEEDS_VALUE();
            c->pass_env = val;
            nkeys++;
        } else if (c->encrypt && !strcmp(a, "--new-key")) {
            NEEDS_VALUE();
            c->new_key = val;
            nkeys++;
        } else if (c->encrypt && !strcmp(a, "--preset")) {
            NEEDS_VALUE();
            if (dcmc_preset_by_name(val, &c->opt.preset) != DCMC_OK)
                return usage_error(c, "unknown preset '%s' (at-resnet-cm, resnet-cm)", val);
        } else if (c->encrypt && !strcmp(a, "--no-standard-layer")) {
            c->opt.flags &= ~DCMC_FLAG_STANDARD_LAYER;
        } else if (!strcmp(a, "--threads")) {
            NEEDS_VALUE();
            char *end;
            long t = strtol(val, &end, 10);
            if (*end || t < 1 || t > 1024)
                return usage_error(c, "--threads needs a number from 1 to 1024, not '%s'", val);
            c->opt.threads = (int)t;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--recurse")) {
            c->recurse = 1;
        } else if (!strcmp(a, "-j") || !strcmp(a, "--jobs")) {
            NEEDS_VALUE();
            char *end;
            long j = strtol(val, &end, 10);
            if (*end || j < 1 || j > 256)
                return usage_error(c, "--jobs needs a number from 1 to 256, not '%s'", val);
            c->jobs = (int)j;
        } else if (!strcmp(a, "--report")) {
            NEEDS_VALUE();
            c->report = val;
        } else if (!strcmp(a, "--shard")) {
            NEEDS_VALUE();
            unsigned k = 0, n = 0;
            char tail;
            if (sscanf(val, "%u/%u%c", &k, &n, &tail) != 2 || n < 1 || k < 1 || k > n)
                return usage_error(c, "--shard needs K/N with 1 <= K <= N, not '%s'", val);
            c->shard_k = k;
            c->shard_n = n;
        } else if (!strcmp(a, "--key") || !strcmp(a, "--passphrase")) {
            return usage_error(c, "%s: keys and passphrases are never taken from the command "
                                  "line; use --key-file, --passphrase-file or --passphrase-env", a);
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error(c, "unknown option '%s'", a);
        } else {
            if (npos == 2)
                return usage_error(c, "too many arguments ('%s')", a);
            pos[npos++] = a;
        }
#undef NEEDS_VALUE
    }
    if (npos != 2)
        return usage_error(c, "%s", c->recurse ? "--recurse needs dir-in and dir-out"
                                               : "needs dcmfile-in and dcmfile-out");
    if (!c->recurse && (c->jobs || c->report || c->shard_n))
        return usage_error(c, "%s", "--jobs, --report and --shard go with --recurse");
    if (nkeys > 1)
        return usage_error(c, "%s", "give only one of --key-file, --new-key, --passphrase-file, "
                                    "--passphrase-env");
    c->in = pos[0];
    c->out = pos[1];
    return -1;
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
    default:
        return EXIT_INPUT;
    }
}

/* ---- secrets ---- */

static char *read_pass_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, PASS_MAX + 1);
    size_t n = buf ? fread(buf, 1, PASS_MAX, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    /* The first line is the passphrase; a trailing newline is not part of it. */
    char *nl = memchr(buf, '\n', n);
    if (nl)
        n = (size_t)(nl - buf);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *len = n;
    return buf;
}

static char *prompt_pass(const char *prompt, size_t *len)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return NULL;
    struct termios old, quiet;
    int fd = fileno(tty), restored = tcgetattr(fd, &old) != 0;
    if (!restored) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    fputs(prompt, tty);
    fflush(tty);
    char *buf = calloc(1, PASS_MAX + 1);
    if (buf && !fgets(buf, PASS_MAX, tty))
        buf[0] = '\0';
    if (!restored)
        tcsetattr(fd, TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    if (!buf)
        return NULL;
    size_t n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    *len = n;
    return buf;
}

int cli_secret_get(const cli *c, cli_secret *s, int confirm)
{
    memset(s, 0, sizeof *s);
    dcmc_status st;
    if (c->key_file) {
        if ((st = dcmc_key_read_file(c->key_file, &s->key)) != DCMC_OK) {
            cli_error(c, "key file %s: %s", c->key_file,
                      st == DCMC_ERR_IO ? strerror(errno) : "not 64 hex characters or 32 bytes");
            return EXIT_USAGE;
        }
        s->have_key = 1;
        return -1;
    }
    if (c->new_key) {
        if ((st = dcmc_key_generate(&s->key)) != DCMC_OK ||
            (st = dcmc_key_write_file(c->new_key, &s->key)) != DCMC_OK) {
            cli_error(c, "cannot write new key file %s (it must not exist yet): %s", c->new_key,
                      strerror(errno));
            dcmc_wipe(&s->key, sizeof s->key);
            return EXIT_OUTPUT;
        }
        cli_info(c, 0, "%s: new key written to %s (keep it: without it the pixels are lost)",
                 c->prog, c->new_key);
        s->have_key = 1;
        return -1;
    }
    if (c->pass_file) {
        s->pass = read_pass_file(c->pass_file, &s->pass_len);
        if (!s->pass) {
            cli_error(c, "passphrase file %s: %s", c->pass_file, strerror(errno));
            return EXIT_USAGE;
        }
    } else if (c->pass_env) {
        const char *v = getenv(c->pass_env);
        if (!v) {
            cli_error(c, "environment variable %s is not set", c->pass_env);
            return EXIT_USAGE;
        }
        s->pass_len = strlen(v);
        s->pass = strdup(v);
    } else if (isatty(STDIN_FILENO)) {
        s->pass = prompt_pass("Passphrase: ", &s->pass_len);
        if (s->pass && confirm) {
            size_t l2 = 0;
            char *again = prompt_pass("Passphrase (again): ", &l2);
            int same = again && l2 == s->pass_len && memcmp(again, s->pass, l2) == 0;
            if (again) {
                dcmc_wipe(again, l2);
                free(again);
            }
            if (!same) {
                cli_secret_free(s);
                cli_error(c, "the passphrases differ");
                return EXIT_USAGE;
            }
        }
    } else {
        cli_error(c, "no key: use --key-file, --passphrase-file or --passphrase-env (no terminal "
                     "to ask on)");
        return EXIT_USAGE;
    }
    if (!s->pass || s->pass_len == 0) {
        cli_secret_free(s);
        cli_error(c, "empty passphrase");
        return EXIT_USAGE;
    }
    return -1;
}

void cli_secret_free(cli_secret *s)
{
    if (s->pass) {
        dcmc_wipe(s->pass, s->pass_len);
        free(s->pass);
    }
    dcmc_wipe(s, sizeof *s);
}

/* ---- output ---- */

static volatile sig_atomic_t g_have_tmp;
static char g_tmp[PATH_MAX];

static void on_signal(int sig)
{
    if (g_have_tmp)
        unlink(g_tmp); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
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
    if (cli_temp_beside(c->out, tmp, tmp_len) != 0) {
        cli_error(c, "cannot write %s: %s", c->out, strerror(errno));
        return EXIT_OUTPUT;
    }
    snprintf(g_tmp, sizeof g_tmp, "%s", tmp);
    g_have_tmp = 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    return -1;
}

int cli_temp_beside(const char *out, char *tmp, size_t tmp_len)
{
    if ((size_t)snprintf(tmp, tmp_len, "%s" CLI_TMP_TAG "XXXXXX", out) >= tmp_len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

int cli_publish(const char *tmp, const char *out, unsigned mode)
{
    /* The data reaches the disk before the name does. */
    int fd = open(tmp, O_RDONLY);
    int ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    /* mkstemp made it 0600; give it the usual mode for a new file. */
    return ok && chmod(tmp, (mode_t)mode) == 0 && rename(tmp, out) == 0 ? 0 : -1;
}

int cli_commit_output(const cli *c, const char *tmp)
{
    mode_t um = umask(0);
    umask(um);
    if (cli_publish(tmp, c->out, 0666 & ~um) != 0) {
        cli_error(c, "cannot write %s: %s", c->out, strerror(errno));
        cli_discard_output(tmp);
        return EXIT_OUTPUT;
    }
    g_have_tmp = 0;
    return EXIT_OK;
}

void cli_discard_output(const char *tmp)
{
    unlink(tmp);
    g_have_tmp = 0;
}
