/*
 * runtime.h - what every executable of the project sets up before it does anything else: OpenMP
 * workers that sleep at barriers, and a heap that keeps the memory it has (runtime.c says why).
 */
#ifndef DCMC_APP_RUNTIME_H
#define DCMC_APP_RUNTIME_H

/* Call first in main(), before any thread, file or OpenMP use. If neither OMP_WAIT_POLICY nor
 * GOMP_SPINCOUNT is set, sets OMP_WAIT_POLICY=PASSIVE and re-executes the program with the same
 * arguments (returns only when that is not needed or not possible); then, unless the user set
 * them, raises glibc's mmap and trim thresholds. */
void app_runtime_init(char **argv);

#endif
