/*
 * cli_secret.c - the key material of dcmencrypt and dcmdecrypt, never taken from the command
 * line: a key file, a new key, a passphrase from a file, an environment variable or a no-echo
 * prompt on /dev/tty. Passphrases live in pages of their own, out of core dumps and swap.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, madvise */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define PASS_MAX ((size_t)4096)

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

/* A signal that stops the process while the prompt has echo off must not leave the terminal
 * so: the handler puts the terminal back (tcsetattr and sigaction are async-signal-safe), gives
 * the signal its previous action again and raises it, to be taken when the handler returns. */
static const int k_prompt_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NPROMPT_SIGS (sizeof k_prompt_sigs / sizeof k_prompt_sigs[0])
static int g_tty = -1;
static struct termios g_tty_saved;
static struct sigaction g_prev[NPROMPT_SIGS];

static void on_prompt_signal(int sig)
{
    const int saved = errno;
    tcsetattr(g_tty, TCSAFLUSH, &g_tty_saved);
    for (size_t i = 0; i < NPROMPT_SIGS; i++)
        if (k_prompt_sigs[i] == sig)
            sigaction(sig, &g_prev[i], NULL);
    raise(sig);
    errno = saved;
}

/* Echo off on fd (saved: what to put back), with the handlers above. 0, or -1: not a terminal
 * we can set. */
static int echo_off(int fd, struct termios *saved)
{
    if (tcgetattr(fd, saved) != 0)
        return -1;
    g_tty = fd;
    g_tty_saved = *saved;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prompt_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NPROMPT_SIGS; i++)
        sigaction(k_prompt_sigs[i], &sa, &g_prev[i]);
    struct termios quiet = *saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fd, TCSAFLUSH, &quiet);
    return 0;
}

static void echo_back(int fd, const struct termios *saved)
{
    tcsetattr(fd, TCSAFLUSH, saved);
    for (size_t i = 0; i < NPROMPT_SIGS; i++)
        sigaction(k_prompt_sigs[i], &g_prev[i], NULL);
    g_tty = -1;
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
    struct termios old;
    const int restore = echo_off(fd, &old) == 0;
    /* Plain write(2) and read(2) on one descriptor of the terminal: no stdio stream switching
     * between reading and writing (C11 7.21.5.3), and no stdio buffer with the passphrase. */
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* nothing to do: the read below still works */
    }
    ssize_t n = read_secret(fd, buf, 1);
    const int read_errno = errno;
    if (restore)
        echo_back(fd, &old);
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

/* Why a key file could not be used. The library's status says nothing of errno: open the file
 * here, and name the system's reason only when that open fails. */
static const char *key_file_problem(const char *path, dcmc_status st)
{
    if (st != DCMC_ERR_IO)
        return "not 64 hex characters or 32 bytes";
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return strerror(errno);
    close(fd);
    return dcmc_status_str(st);
}

/* Why a new key file could not be written: it exists, or its directory refuses (asked here,
 * with the system's reason), or the library's status. */
static const char *new_key_problem(const char *path, dcmc_status st)
{
    struct stat there;
    if (lstat(path, &there) == 0)
        return strerror(EEXIST);
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    if (access(dir, W_OK | X_OK) != 0)
        return strerror(errno);
    return dcmc_status_str(st);
}

/* --key-file or --new-key: -1 with s->key set, or an exit code. */
static int get_key(const cli *c, cli_secret *s)
{
    dcmc_status st;
    if (c->key_file) {
        check_private(c, "key file", c->key_file);
        if ((st = dcmc_key_read_file(c->key_file, &s->key)) != DCMC_OK) {
            cli_error(c, "key file %s: %s", c->key_file, key_file_problem(c->key_file, st));
            return EXIT_USAGE;
        }
    } else {
        if ((st = dcmc_key_generate(&s->key)) == DCMC_OK)
            st = dcmc_key_write_file(c->new_key, &s->key);
        if (st != DCMC_OK) {
            cli_error(c, "cannot write new key file %s (it must not exist yet): %s", c->new_key,
                      new_key_problem(c->new_key, st));
            dcmc_wipe(&s->key, sizeof s->key);
            return cli_exit_code(st) == EXIT_SOFTWARE ? EXIT_SOFTWARE : EXIT_OUTPUT;
        }
        cli_info(c, 0, "%s: new key written to %s (keep it: without it the pixels are lost)",
                 c->prog, c->new_key);
    }
    s->have_key = 1;
    return -1;
}

/* --passphrase-env: a copy in secret memory, the variable wiped and removed. */
static int get_pass_env(const cli *c, cli_secret *s)
{
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
    return -1;
}

/* The terminal prompt (twice when confirm): -1, or an exit code. */
static int get_pass_prompt(const cli *c, cli_secret *s, int confirm)
{
    int err = 0;
    s->pass = prompt_pass("Passphrase: ", &s->pass_len, &err);
    if (!s->pass && err == EOVERFLOW) {
        cli_error(c, "the passphrase is longer than 4096 bytes");
        return EXIT_USAGE;
    }
    if (s->pass && confirm) {
        size_t l2 = 0;
        char *again = prompt_pass("Passphrase (again): ", &l2, &err);
        const int same = again && l2 == s->pass_len && memcmp(again, s->pass, l2) == 0;
        secret_release(again);
        if (!same) {
            cli_secret_free(s);
            cli_error(c, "the passphrases differ");
            return EXIT_USAGE;
        }
    }
    return -1;
}

int cli_secret_get(const cli *c, cli_secret *s, int confirm)
{
    memset(s, 0, sizeof *s);
    int rc = -1, err = 0;
    if (c->key_file || c->new_key)
        return get_key(c, s);
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
        rc = get_pass_env(c, s);
    } else if (isatty(STDIN_FILENO)) {
        rc = get_pass_prompt(c, s, confirm);
    } else {
        cli_error(c, "no key: use --key-file, --passphrase-file or --passphrase-env (no terminal "
                     "to ask on)");
        return EXIT_USAGE;
    }
    if (rc >= 0)
        return rc;
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
