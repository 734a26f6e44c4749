// worker: core.worker's processes (Snabb's multiprocess operation): a worker is this binary run
// afresh (fork, then exec of /proc/self/exe) with the Lua code it is to run in the environment
// (SNABB_PROGRAM_LUACODE, which programs/main.lua runs instead of a command line), ended by the
// kernel when the process that started it dies (PR_SET_PDEATHSIG).
#pragma once

#include "runtime/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
/* Starts a worker running luacode, with argv[0] title. Returns its PID, or -1 (snabb_error). */
int snabb_worker_start(const char *title, const char *luacode);
/* Whether worker pid runs: 1; 0 when it has ended (*status: its exit status, or 128 + the signal
   that ended it; *signo: that signal, 0 when it exited), reaped; -1 when it is no child of ours
   (snabb_error). */
int snabb_worker_status(int pid, int *status, int *signo);
/* Pins the calling process to CPU cpu (sched_setaffinity). 0, or -1 (snabb_error). */
int snabb_worker_set_cpu(int cpu);
/* Whether the calling process may run on CPU cpu (its affinity mask): 1 or 0. */
int snabb_worker_cpu_allowed(int cpu);
/* A signal's name ("SIGKILL"), or "signal N". */
const char *snabb_worker_signal_name(int signo);
// END FFI

#ifdef __cplusplus
}
#endif
