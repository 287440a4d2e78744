/*
 * wait_policy.c - every executable of the project (tools, benchmark, tests) calls
 * app_wait_policy() first thing in main(), so that threads waiting at an OpenMP barrier sleep
 * instead of spinning.
 *
 * Why: GNU OpenMP lets an idle worker spin for about 300,000 iterations (milliseconds) before it
 * sleeps. On a machine that also runs other work (a radiology workstation, a shared node, two of
 * our own processes side by side) the spinning worker holds a core that the thread it waits for
 * needs: a 512x512 frame took 299 ms at 2 threads against 70 ms at 1 thread on a loaded 2-core
 * machine, and 32 ms with passive waiting (docs/scaling.md, "Busy machines").
 *
 * How: libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, in its constructor, before main()
 * runs, from the environment the process was started with, and has no call to change them later
 * (a setenv() in .preinit_array is too early: libc's own initialisation resets the environment
 * after it). So a process started without either variable sets OMP_WAIT_POLICY=PASSIVE and
 * executes itself again, once; the second start sees the variable and goes on. A value the user
 * set is left alone. If the re-execution fails the process simply goes on with libgomp's default.
 * A program that links libdcmcrypt must set the variable in its own environment if it wants the
 * same (docs/scaling.md).
 */
#define _POSIX_C_SOURCE 200809L
#include "wait_policy.h"

#include <stdlib.h>
#include <unistd.h>

void app_wait_policy(char **argv)
{
    if (argv == NULL || argv[0] == NULL || getenv("OMP_WAIT_POLICY") != NULL ||
        getenv("GOMP_SPINCOUNT") != NULL)
        return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0)
        return;
    /* Nothing has been read or written yet: the new image starts from the same arguments and
     * descriptors. /proc/self/exe, not argv[0]: the program may have been found through PATH. */
    execv("/proc/self/exe", argv);
}
