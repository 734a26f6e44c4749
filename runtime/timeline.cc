// timeline: core.timeline's logging call (timeline.h).
#include "runtime/timeline.h"

#include <x86intrin.h>

extern "C" void snabb_timeline_log(snabb_timeline_state* log, int rate, int msgid, double a0,
                                   double a1, double a2, double a3, double a4, double a5) {
  if (rate < static_cast<int>(log->rate)) return;
  const uint32_t i = log->next_entry;
  log->next_entry = i + 1 == log->num_entries ? 0 : i + 1;
  snabb_timeline_entry& e = log->entries[i];
  e.msgid = static_cast<uint16_t>(msgid);
  e.arg0 = a0;
  e.arg1 = a1;
  e.arg2 = a2;
  e.arg3 = a3;
  e.arg4 = a4;
  e.arg5 = a5;
  unsigned int aux;
  e.tsc = static_cast<double>(__rdtscp(&aux));
  e.core_numa = static_cast<uint16_t>(aux);
}
