// group: core.group's shared packet memory, for worker processes whose packets cross from one to
// another as pointers (Snabb's group). A supervisor creates the group before it starts its workers;
// each worker attaches to it before it allocates a packet, and from then on its packet pool
// (packet.h: PacketSource) takes packets from the group. The memory is two memfds of the creating
// process, which the group's directory names (DIR/group/control and DIR/group/packets: symbolic
// links to /proc/PID/fd/N), so it goes away with the last process that maps it, however they end:
//   control  the header (the packet memory's address and size, the cap, a robust process-shared
//            mutex, the count of packets carved), the group free list, and one free list per worker
//            slot (struct packet_freelist, mapped by the worker over its pool's own free list)
//   packets  the packet slots, mapped at the same address (recorded in the header) in every
//            worker, carved a batch at a time as workers need them (the file is sparse until then)
// A worker's free list moves batches to and from the group's under the mutex; the moves are ordered
// so that a worker killed in the middle of one loses at most that batch, never hands out a packet
// twice, and leaves the mutex to the next taker (EOWNERDEAD). reclaim moves a dead worker's free
// list back to the group's, reclaim_link the packets its links held.
#pragma once
#include <stdint.h>

#include "runtime/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
enum { GROUP_MAX_WORKERS = 64 };

struct group_stats {
  int64_t packets;                        /* carved from the packet memory so far */
  int64_t free;                           /* in the group free list */
  int64_t cap;                            /* the most packets the group may carve */
  int32_t workers;                        /* worker slots */
  int32_t hugetlb;                        /* 1: the packet memory is hugetlbfs pages */
  int64_t worker_free[GROUP_MAX_WORKERS]; /* in each worker's free list */
  int32_t worker_pid[GROUP_MAX_WORKERS];  /* the process attached to each slot, 0 for none */
};

/* Failures return -1 (snabb_error() says why). */
/* Creates the group in dir/group/ with `workers` worker slots (1..GROUP_MAX_WORKERS) and a cap of
   `packets` (1..2^24). */
int snabb_group_create(const char *dir, int32_t workers, int32_t packets);
/* Joins this process's packet pool to the group in dir as worker `index`. */
int snabb_group_attach(const char *dir, int32_t index);
/* Moves worker index's free list to the group's; returns how many packets it held. */
int64_t snabb_group_reclaim(const char *dir, int32_t index);
/* Moves the packets queued in a dead worker's link (its stats file, `path`: runtime/stats.h) to the
   group's list, leaving the link empty; returns how many (entries that are no packet of the group
   are left out, and not counted). */
int64_t snabb_group_reclaim_link(const char *dir, const char *path);
int snabb_group_stats(const char *dir, struct group_stats *stats);
/* The directory given to attach, or NULL outside a group. */
const char *snabb_group_dir(void);
// END FFI

#ifdef __cplusplus
}
#endif
