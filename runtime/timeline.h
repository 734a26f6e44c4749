// timeline: core.timeline's event log (Snabb's timeline: a ring of 64-byte entries and a string
// table in one shared-memory object, which another process can read): the state a log is written
// through, and the call that writes one event.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
/* The state of a core.timeline log (its ring of 64-byte entries and its string table), and the
   call that logs one event when rate is at least the log's: the TSC (rdtscp) and its core/NUMA
   word, message id, six arguments. */
struct snabb_timeline_entry {
  double tsc;
  uint16_t msgid;
  uint16_t core_numa;
  uint32_t reserved;
  double arg0, arg1, arg2, arg3, arg4, arg5;
};
struct snabb_timeline_state {
  struct snabb_timeline_entry *entries;
  uint32_t rate;
  uint32_t next_entry;
  uint32_t num_entries;
  char *stringtable;
  int stringtable_size;
  int next_string;
};
void snabb_timeline_log(struct snabb_timeline_state *log, int rate, int msgid, double a0, double a1,
                        double a2, double a3, double a4, double a5);
// END FFI

#ifdef __cplusplus
}
#endif
