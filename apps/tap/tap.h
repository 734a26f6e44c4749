// The capture tap (`snabb tap`, apps/tap/README.md): copies what an app sends on one of its output
// links into a pcap file, while the graph runs. A tap is not an app of the config: the engine
// runs it (snabb_tap_run, as a node of its own) right after each call of the link's writer, so it
// sees every packet the writer queued before the reader can take it, and reads it in place in the
// ring (no clone, no extra link). Without a tap the engine's graph is exactly the config's: a tap
// costs nothing until it is started, and nothing once it ends.
#pragma once
#include <stdint.h>

#include "runtime/link.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
struct tap;

struct tap_stats {
  uint64_t packets; /* written to the file */
  uint64_t bytes;   /* their lengths, summed */
  uint64_t missed;  /* queued and already received before the tap saw them (see tap.cc) */
  uint64_t limit;   /* packets to write, 0: no limit */
  int32_t done;     /* the limit is reached: nothing more is written */
};

/* Opens (creates, truncates) a pcap file for what is queued on link l from now on, at most
   `limit` packets (0: no limit); NULL when the file cannot be made (snabb_error() says why). */
struct tap* snabb_tap_open(const char* path, struct link* l, uint64_t limit);
/* The engine's call (an app_c_method: engine.h): writes what was queued since the last call. */
void snabb_tap_run(void* tap);
struct tap_stats* snabb_tap_stats(struct tap* t);
/* Writes out buffered records: 0, or -1 (snabb_error(): the file's problem, e.g. disk full). */
int snabb_tap_flush(struct tap* t);
/* Flushes, closes and frees the tap: 0, or -1 (the tap is freed all the same). */
int snabb_tap_close(struct tap* t);
// END FFI

#ifdef __cplusplus
}
#endif
