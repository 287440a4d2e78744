/*
 * runtime.c - every executable of the project (tools, benchmark, tests) calls app_runtime_init()
 * first thing in main().
 *
 * 1. OpenMP workers sleep at barriers instead of spinning. GNU OpenMP lets an idle worker spin
 *    for about 300,000 iterations (milliseconds) before it sleeps. On a machine that also runs
 *    other work (a radiology workstation, a shared node, two of our own processes side by side)
 *    the spinning worker holds a core that the thread it waits for needs: a 512x512 frame took
 *    299 ms at 2 threads against 70 ms at 1 thread on a loaded 2-core machine, and 32 ms with
 *    passive waiting (docs/scaling.md, "Busy machines"). libgomp reads OMP_WAIT_POLICY and
 *    GOMP_SPINCOUNT once, in its constructor, before main() runs, from the environment the
 *    process was started with, and has no call to change them later (a setenv() from
 *    .preinit_array is too early: libc's initialisation resets the environment after it). So a
 *    process started without either variable sets OMP_WAIT_POLICY=PASSIVE and executes itself
 *    again, once; the second start sees the variable and goes on. If that fails the process
 *    goes on with libgomp's default.
 *
 * 2. Freed memory stays with the process. Every file needs the same few buffers of a few MB
 *    (frames, network activations, DCMTK's element values); with glibc's defaults each is mapped
 *    fresh and given back on free, so every file pays page faults and zeroing again: on a
 *    100-slice CT series that was half of all CPU time (6.8 s against 3.5 s). Raising the mmap
 *    threshold to 256 MiB and the trim threshold to 512 MiB keeps them in the heap for the next
 *    file. MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ in the environment win.
 *
 * A value the user set is always left alone. A program that links libdcmcrypt itself decides
 * these for its own process (docs/scaling.md says what to set).
 */
#define _GNU_SOURCE
#include "runtime.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* One thread can never wait at a barrier: no second start (it costs a process start, 20-60 ms
 * in Release and a quarter of a second under AddressSanitizer) when the process may run on one
 * CPU only or was told `--threads 1` or OMP_NUM_THREADS=1. */
static int single_threaded(char **argv)
{
    cpu_set_t set;
    const char *n = getenv("OMP_NUM_THREADS");
    if ((sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) <= 1) ||
        (n != NULL && strcmp(n, "1") == 0))
        return 1;
    for (int i = 1; argv[i] != NULL; i++)
        if ((strcmp(argv[i], "--threads") == 0 && argv[i + 1] != NULL && strcmp(argv[i + 1], "1") == 0) ||
            strcmp(argv[i], "--threads=1") == 0)
            return 1;
    return 0;
}

static void passive_wait(char **argv)
{
    if (argv == NULL || argv[0] == NULL || getenv("OMP_WAIT_POLICY") != NULL ||
        getenv("GOMP_SPINCOUNT") != NULL || single_threaded(argv))
        return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0)
        return;
    /* Nothing has been read or written yet: the new image starts from the same arguments and
     * descriptors. /proc/self/exe, not argv[0]: the program may have been found through PATH. */
    execv("/proc/self/exe", argv);
}

static void keep_memory(void)
{
#ifdef __GLIBC__
    if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL && getenv("MALLOC_TRIM_THRESHOLD_") == NULL) {
        (void)mallopt(M_MMAP_THRESHOLD, 256 << 20);
        (void)mallopt(M_TRIM_THRESHOLD, 512 << 20);
    }
#endif
}

void app_runtime_init(char **argv)
{
    passive_wait(argv);
    keep_memory();
}
