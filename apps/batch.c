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
 *
 * This file is the orchestration; batch_int.h says which file holds what.
 */
#define _GNU_SOURCE
#include "batch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cores(void)
{
    cpu_set_t set;
    /* The CPUs this process may use: a Slurm allocation or taskset, not the whole machine. */
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
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
    if (batch_seen_add(b, &st, "", &first) < 0) {
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

/* The file list (this shard's), the DICOMDIR list, the report file, the keys: -1 to go on, or an
 * exit code. */
static int prepare(batch *b)
{
    const cli *c = b->c;
    int rc = check_roots(b);
    if (rc >= 0)
        return rc;
    if (batch_walk(b, "") != 0) {
        cli_error(c, "cannot read the tree %s: %s", c->in, strerror(errno));
        return EXIT_INPUT;
    }
    if (c->shard_n > 1)
        batch_keep_shard(b);
    if (!(b->dirs = calloc(b->n + 1, sizeof *b->dirs))) {
        cli_error(c, "out of memory");
        return EXIT_OUTPUT;
    }
    if (c->report && !(b->report = fopen(c->report, "w"))) {
        cli_error(c, "cannot write the report %s: %s", c->report, strerror(errno));
        return EXIT_OUTPUT;
    }
    return batch_keys_setup(b);
}

/* -j workers, each with cores / jobs OpenMP threads, so -j never oversubscribes. */
static void plan_jobs(batch *b)
{
    const cli *c = b->c;
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
}

/* The work itself, once everything is ready: the exit status of the run. */
static int convert_tree(batch *b)
{
    const cli *c = b->c;
    plan_jobs(b);
    const size_t stale = batch_sweep(b);
    if (stale)
        cli_info(c, 0, "%s: removed %zu temporary file(s) an interrupted run left", c->prog, stale);
    cli_info(c, 1, "%s: %zu files, %.1f MB; %d jobs x %d threads", c->prog, b->n,
             b->total_bytes / 1e6, b->jobs, b->threads_per_job);
    const double t0 = batch_now();
    batch_work(b, t0);
    const int stopped = batch_stop_signal();
    if (!stopped && !b->disk_full && c->shard_n <= 1)
        batch_rebuild_dicomdirs(b);
    if (c->verbosity >= 0 && b->tty)
        batch_progress(b, t0, 1);
    if (c->verbosity >= 0)
        batch_summary(b, batch_now() - t0, stopped);
    if (!b->secret.have_key)
        cli_info(c, 1, "%s: %u key derivation(s), at most %d at once", c->prog, b->derivations,
                 b->max_deriving);
    return stopped                   ? 128 + stopped
           : b->disk_full            ? EXIT_OUTPUT
           : b->counts[S_FAILED] > 0 ? EXIT_SOME_FAILED
                                     : EXIT_OK;
}

static void batch_free(batch *b)
{
    batch_items_free(b);
    free(b->dirs);
    if (b->out_fd >= 0)
        close(b->out_fd);
    batch_keys_free(b);
    pthread_cond_destroy(&b->kcv);
    pthread_mutex_destroy(&b->kmu);
    pthread_mutex_destroy(&b->mu);
    free(b);
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
    int rc = prepare(b);
    if (rc < 0)
        rc = convert_tree(b);
    if (b->report && fclose(b->report) != 0 && rc == EXIT_OK) {
        cli_error(c, "cannot write the report %s: %s", c->report, strerror(errno));
        rc = EXIT_OUTPUT;
    }
    batch_free(b);
    return rc;
}
