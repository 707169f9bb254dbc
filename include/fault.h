/*
 * fault.h: named fault points, for the tests that prove a failure path (all stages).
 *
 * A fault point stands where a call can fail for reasons a test cannot provoke from
 * outside (an allocation): `if (fault_hit("deliver.heap") || (p = malloc(n)) == NULL)`.
 * The environment variable DP_FAULTS, read once, arms points: "name%N" fails every
 * N-th hit of that point, "name@N" only the N-th; several are separated by commas. An
 * unset DP_FAULTS (production) costs one branch per hit and fails nothing.
 */
#ifndef DEALPUSH_FAULT_H
#define DEALPUSH_FAULT_H

/* 1 when the armed fault point name fails this time, else 0. */
int fault_hit(const char *name);

#endif
