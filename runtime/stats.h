// stats: the engine's, apps' and links' counters in shared memory, for other processes (snabb top,
// snabb ps, the control server) to read live without disturbing the dataplane. They are the
// engine's own structs (engine_stats, app_stats, struct link), placed in memory-mapped files of the
// run directory, so publishing them costs nothing per packet: the engine updates them where it
// always did. One file each, a 64-byte header first, all under RUNDIR/engine/ (what the engine
// owns; an app's own counters are Snabb's RUNDIR/apps/NAME/X.counter files, app-defined and
// drivers'):
//   RUNDIR/engine/stats       struct stats_engine_file (header, engine_info, engine_stats)
//   RUNDIR/engine/config      the config file's path, text (absent: none, as for basic1)
//   RUNDIR/engine/apps/NAME   struct stats_app_file (header, app_stats)
//   RUNDIR/engine/links/NAME  struct stats_link_file (header, the link itself: its stats, its
//                             cursors and its ring), NAME as Snabb spells a link: "a.out -> b.in"
// The files of apps and links that leave are renamed into RUNDIR/engine/.free/ and reused by the
// next ones. On this machine's disk-backed /run (ext4, discard), making a file and mapping it took
// 0.1-0.4 ms, a directory 0.5 ms more (so there is none per object), its munmap 72 us and an
// rmdir 4.5 ms, a rename 50 us.
// NAME is escaped for a file name: '%', '/', control characters and a leading '.' become %XX (hex).
// Every field is a naturally aligned 64-bit integer, which x86 reads untorn; fields are not read
// together atomically (a reader may see txpackets of one sync and rxpackets of the next: queued is
// clamped at 0). A reader checks magic, version and kind, and finds the counters at `offset`.
// The writer is core.stats (runtime/stats.lua), turned on by observe.observe for snabb run, bench
// and basic1; files are made as apps and links appear and removed as they leave the graph.
#pragma once
#include <stdint.h>

#include "runtime/engine.h"
#include "runtime/link.h"

#ifdef __cplusplus
#include <map>
#include <string>
#include <vector>
extern "C" {
#endif

// BEGIN FFI
enum {
  STATS_MAGIC = 0x54534e53, /* "SNST" in the file (little-endian) */
  STATS_VERSION = 1,
  STATS_ENGINE = 1,
  STATS_APP = 2,
  STATS_LINK = 3
};

/* The first 64 bytes of every stats file. */
struct stats_header {
  uint32_t magic;      /* STATS_MAGIC */
  uint32_t version;    /* STATS_VERSION */
  uint32_t kind;       /* STATS_ENGINE, STATS_APP or STATS_LINK */
  uint32_t offset;     /* where the counters start: engine_stats, app_stats or struct link */
  uint64_t size;       /* the counters' size in bytes */
  int64_t pid;         /* the process that writes them */
  uint64_t created_ns; /* when the file was made (CLOCK_REALTIME) */
  uint64_t reserved[3];
};

/* The run as a whole, written once when the file is made. */
struct engine_info {
  uint64_t tsc_hz;         /* TSC ticks a second (rounded): cycles to seconds */
  uint64_t started_ns;     /* when the run started (CLOCK_REALTIME) */
  uint64_t breath_buckets; /* ENGINE_BREATH_BUCKETS; snabb_engine_breath_bucket_limit gives their
                              limits: bucket i < 8 holds i cycles; above, 8 buckets per power of
                              two, bucket 8 + 8 (e - 3) + m holding [(8 + m) << (e - 3), (9 + m)
                              << (e - 3)) */
  uint64_t reserved[5];
};

struct stats_engine_file {
  struct stats_header header;
  struct engine_info info;
  struct engine_stats stats;
};

struct stats_app_file {
  struct stats_header header;
  struct app_stats stats;
};

/* The link lives in the file, 32 bytes into a cache line as links do (runtime/link.cc). */
struct stats_link_file {
  struct stats_header header;
  uint8_t pad[32];
  struct link link;
};

/* The writer's file operations (core.stats), relative to dirfd, the run directory: made and moved
   there, never following a link, with the run directory's modes (dir_mode, file_mode) and group
   (gid >= 0). Failures return NULL or -1, and snabb_error() says why. */
/* A new file `path` ("engine/links/NAME") of size bytes, zeroed and mapped read-write; its
   directory made when missing; a file there already is replaced. */
void* snabb_stats_create(int dirfd, const char* path, size_t size, int dir_mode, int file_mode,
                         int gid);
/* Renames file `from` to `to` (a freed object's file kept for the next one: one rename instead of
   an unlink, a create and a new mapping), making to's directory when missing. 0 or -1. */
int snabb_stats_move(int dirfd, const char* from, const char* to, int dir_mode, int gid);
/* The engine's counters live at `s` from now on (its current values copied there); NULL: back in
   the process's own memory (copied back). */
void snabb_engine_set_stats(struct engine_stats* s);
// END FFI

#ifdef __cplusplus
}

namespace snabb::stats {

struct Engine {
  uint64_t breaths = 0;
  uint64_t cycles = 0;   // inside app calls and link syncs
  uint64_t packets = 0;  // received by apps
  // How long breaths that moved packets took: count of bucket i, and the first cycle count above
  // bucket i (engine_stats.breath_cycles).
  std::vector<uint64_t> breath_buckets;
  std::vector<uint64_t> bucket_limits;
  double tsc_hz = 0;
  uint64_t started_ns = 0;    // CLOCK_REALTIME
  uint64_t heartbeat_ns = 0;  // CLOCK_MONOTONIC of the engine's last clock read (0: never ran)
};

struct App {
  std::string name;
  std::string worker;  // in a supervisor's snapshot: the worker's name ("": the process's own)
  uint64_t calls = 0, cycles = 0, idle_cycles = 0, packets_in = 0, packets_out = 0, errors = 0;
  int64_t freed = 0;
  std::map<std::string, uint64_t> counters;  // apps/NAME/X.counter, by X
};

struct Link {
  std::string name, from, to;  // "a.out -> b.in", "a.out", "b.in"
  std::string worker;          // as App::worker
  uint64_t txpackets = 0, txbytes = 0, rxpackets = 0, rxbytes = 0, txdrop = 0, queued = 0;
};

struct Snapshot {
  int64_t pid = 0;
  std::string rundir;
  std::string config;  // the config file's path, "" when none
  Engine engine;
  std::vector<App> apps;    // by name (a supervisor's: by worker, then name)
  std::vector<Link> links;  // by name (likewise)
  // A supervisor's (programs/run/supervisor.lua: RUNDIR/workers/NAME, each a worker's run
  // directory): its workers, whose apps and links are in apps and links, their engines' counters
  // added to engine (heartbeat: the oldest).
  struct Worker {
    std::string name;
    int64_t pid = 0;
  };
  std::vector<Worker> workers;
};

// Reads a run directory's counters. Throws std::runtime_error with a message in the user's terms
// ("/var/run/snabb/123/engine/stats: No such file or directory (not a running snabb, or one
// started without observation)"), which c_call turns into snabb_error text at a C boundary.
Snapshot read(const std::string& rundir);

// The snapshot as JSON: {"pid", "rundir", "config", "engine": {...}, "apps": [...], "links":
// [...]}, fields named as above; a supervisor's with "workers": [{"name", "pid"}...] and each
// app and link of a worker with "worker": NAME.
std::string to_json(const Snapshot& s);

// A name as its file name: '%', '/', control characters and a leading '.' as %XX.
std::string escape_name(const std::string& name);
std::string unescape_name(const std::string& file);

}  // namespace snabb::stats
#endif
