/*
 * cli.c - the command-line conventions of dcmencrypt and dcmdecrypt (DCMTK style: [options] in
 * out, -v/-q/-d, --version, one-line errors, stable exit codes), key input that never takes a
 * secret from the command line, and output through a temporary file and an atomic rename, so an
 * interrupted or failed run leaves no half-written output.
 */
#define _GNU_SOURCE /* O_TMPFILE, MAP_ANONYMOUS, madvise */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
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
    "      --scrypt-max-mib N     refuse scrypt costs above N MiB (default 256)\n"
    "      --max-expansion N      refuse compressed pixel data that would decode to more\n"
    "                             than N times the file's size (default 64; 4 MiB always)\n"
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
    "      --scrypt-max-mib N     refuse scrypt costs above N MiB (default 256)\n"
    "      --max-expansion N      refuse compressed pixel data that would decode to more\n"
    "                             than N times the file's size (default 64; 4 MiB always)\n"
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
    cli_harden(); /* first: nothing secret exists yet */
    dcmc_options_default(&c->opt);
    c->scrypt_max_mib = DCMC_SCRYPT_MAX_MIB_DEFAULT;
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
        } else if (!strcmp(a, "--scrypt-max-mib")) {
            NEEDS_VALUE();
            char *end;
            long long m = strtoll(val, &end, 10);
            if (*end || m < 1 || m > (1ll << 20))
                return usage_error(c, "--scrypt-max-mib needs a number from 1 to 1048576, not '%s'",
                                   val);
            c->scrypt_max_mib = (uint64_t)m;
        } else if (!strcmp(a, "--max-expansion")) {
            NEEDS_VALUE();
            char *end;
            long m = strtol(val, &end, 10);
            if (*end || m < 1 || m > 1000000)
                return usage_error(c, "--max-expansion needs a number from 1 to 1000000, not '%s'",
                                   val);
            c->max_expansion = (unsigned)m;
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
    dcmc_dicom_set_max_expansion(c->max_expansion); /* 0: the default */
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

/* Passphrases live in pages of their own that core dumps leave out (MADV_DONTDUMP) and that are
 * kept out of swap where the limits allow (mlock); they are wiped before they are unmapped. */
#define SECRET_BYTES (2 * PASS_MAX)

static char *secret_alloc(void)
{
    void *p = mmap(NULL, SECRET_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, SECRET_BYTES, MADV_DONTDUMP);
    (void)mlock(p, SECRET_BYTES); /* best effort: RLIMIT_MEMLOCK may be small */
    return p;
}

static void secret_release(char *p)
{
    if (!p)
        return;
    dcmc_wipe(p, SECRET_BYTES);
    munlock(p, SECRET_BYTES);
    munmap(p, SECRET_BYTES);
}

void cli_harden(void)
{
    /* A core file of a crash would hold the key in clear: no core files, and no ptrace by other
     * processes of the same user (the process is not dumpable). */
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Up to PASS_MAX + 1 bytes from fd (stopping at a newline when `line`), with no stdio buffer
 * holding a copy. -1 on a read error. */
static ssize_t read_secret(int fd, char *buf, int line)
{
    size_t n = 0;
    while (n < PASS_MAX + 1) {
        ssize_t r = read(fd, buf + n, PASS_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
        if (line && memchr(buf, '\n', n))
            break;
    }
    return (ssize_t)n;
}

/* The passphrase is the first line: the bytes before the first LF, one trailing CR removed, at
 * most PASS_MAX bytes (a longer one is refused, never cut short: a cut passphrase would decrypt
 * nothing later). NULL with *err set: errno, or EOVERFLOW for too long. */
static char *first_line(char *buf, ssize_t n, size_t *len, int *err)
{
    if (n < 0) {
        *err = errno;
        secret_release(buf);
        return NULL;
    }
    char *nl = memchr(buf, '\n', (size_t)n);
    size_t l = nl ? (size_t)(nl - buf) : (size_t)n;
    if (l > 0 && buf[l - 1] == '\r')
        l--;
    if (l > PASS_MAX) {
        *err = EOVERFLOW;
        secret_release(buf);
        return NULL;
    }
    memset(buf + l, 0, SECRET_BYTES - l); /* nothing after the passphrase stays around */
    *len = l;
    return buf;
}

static char *read_pass_file(const char *path, size_t *len, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = fd >= 0 ? secret_alloc() : NULL;
    if (!buf) {
        *err = errno;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    ssize_t n = read_secret(fd, buf, 0);
    close(fd);
    return first_line(buf, n, len, err);
}

static char *prompt_pass(const char *prompt, size_t *len, int *err)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    char *buf = fd >= 0 ? secret_alloc() : NULL;
    if (!buf) {
        *err = errno;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct termios old, quiet;
    const int restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    /* Plain write(2) and read(2) on the terminal: no stdio stream switching between reading and
     * writing, and no stdio buffer with the passphrase in it. */
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* nothing to do: the read below still works */
    }
    ssize_t n = read_secret(fd, buf, 1);
    const int read_errno = errno;
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* the echo-less prompt just stays on its line */
    }
    close(fd);
    errno = read_errno;
    return first_line(buf, n, len, err);
}

int cli_kdf_too_costly(const dcmc_kdf *kdf, uint64_t max_mib, char *msg, size_t len)
{
    const uint64_t cost = dcmc_kdf_cost_mib(kdf);
    if (cost <= max_mib)
        return 0;
    snprintf(msg, len,
             "its scrypt parameters N=2^%u r=%u p=%u cost %llu MiB, above the limit of %llu MiB: "
             "if you trust the file, raise --scrypt-max-mib",
             kdf->log2_n, kdf->r, kdf->p, (unsigned long long)cost,
             (unsigned long long)max_mib);
    return 1;
}

/* Warn when a file holding a key or passphrase can be read by other users. */
static void check_private(const cli *c, const char *what, const char *path)
{
    struct stat st;
    if (c->verbosity >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
        cli_error(c, "warning: %s %s can be read by other users (mode %04o): chmod 600 %s", what,
                  path, (unsigned)(st.st_mode & 07777), path);
}

int cli_secret_get(const cli *c, cli_secret *s, int confirm)
{
    memset(s, 0, sizeof *s);
    dcmc_status st;
    int err = 0;
    if (c->key_file) {
        check_private(c, "key file", c->key_file);
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
        check_private(c, "passphrase file", c->pass_file);
        s->pass = read_pass_file(c->pass_file, &s->pass_len, &err);
        if (!s->pass) {
            cli_error(c, "passphrase file %s: %s", c->pass_file,
                      err == EOVERFLOW ? "the first line is longer than 4096 bytes"
                                       : strerror(err));
            return EXIT_USAGE;
        }
    } else if (c->pass_env) {
        char *v = getenv(c->pass_env);
        if (!v) {
            cli_error(c, "environment variable %s is not set", c->pass_env);
            return EXIT_USAGE;
        }
        s->pass_len = strlen(v);
        if (s->pass_len > PASS_MAX) {
            cli_error(c, "environment variable %s: the passphrase is longer than 4096 bytes",
                      c->pass_env);
            return EXIT_USAGE;
        }
        if ((s->pass = secret_alloc()) != NULL)
            memcpy(s->pass, v, s->pass_len);
        /* Child processes (and /proc/PID/environ) must not see it: wipe the value where the
         * environment keeps it, then remove the variable. */
        dcmc_wipe(v, strlen(v));
        unsetenv(c->pass_env);
    } else if (isatty(STDIN_FILENO)) {
        s->pass = prompt_pass("Passphrase: ", &s->pass_len, &err);
        if (!s->pass && err == EOVERFLOW) {
            cli_error(c, "the passphrase is longer than 4096 bytes");
            return EXIT_USAGE;
        }
        if (s->pass && confirm) {
            size_t l2 = 0;
            char *again = prompt_pass("Passphrase (again): ", &l2, &err);
            int same = again && l2 == s->pass_len && memcmp(again, s->pass, l2) == 0;
            secret_release(again);
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
    secret_release(s->pass);
    dcmc_wipe(s, sizeof *s);
}

/* ---- output ---- */

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
    if (cli_tmp_create(&g_out, g_out.dirfd, dir, g_out_name, 0) != 0 ||
        (size_t)snprintf(tmp, tmp_len, "%s", g_out.path) >= tmp_len) {
        cli_error(c, "cannot write %s: %s", c->out, strerror(errno));
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
