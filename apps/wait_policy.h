/*
 * wait_policy.h - make OpenMP workers sleep, not spin, at barriers (wait_policy.c says why and how).
 */
#ifndef DCMC_APP_WAIT_POLICY_H
#define DCMC_APP_WAIT_POLICY_H

/* Call first in main(), before any thread, file or OpenMP use: if neither OMP_WAIT_POLICY nor
 * GOMP_SPINCOUNT is set, sets OMP_WAIT_POLICY=PASSIVE and re-executes the program with the same
 * arguments (returns only when that is not needed or not possible). */
void app_wait_policy(char **argv);

#endif
