// group: core.group's shared packet memory, for worker processes whose packets cross from one to
// another as pointers (Snabb's group). A supervisor creates the group before it starts its workers;
// each worker attaches to it before it allocates a packet, and from then on its packet pool
// (packet.h: PacketSource) takes packets from the group. The memory is two memfds of the creating
// process, which the group's directory names (DIR/group/control and DIR/group/packets: symbolic
// links to /proc/PID/fd/N), so it goes away with the last process that maps it, however they end:
//   control  the header (the packet memory's address and size, the cap, a robust process-shared
//            mutex, the count of packets carved), the group free list, one free list per worker
//            slot (struct packet_freelist, mapped by the worker over its pool's own free list),
//            and each worker's marks (below)
//   packets  the packet slots, mapped at the same address (recorded in the header) in every
//            worker, carved a batch at a time as workers need them (the file is sparse until then)
// Each worker's marks say which packets are in its hands (its free list, its links, its apps), so
// that when it dies reclaim gives back all it had, also what its apps held (a Source's packet,
// what a buffering app kept), which nothing else names. A mark is a time of the worker's clock (a
// Lamport clock: a take from the group and a pull from an interlink tick it past the group's
// clock, or the transmitter's, which the transmitter writes beside its cursor), one word a worker
// and 8 KiB bucket of the packet memory (a packet's is its header's bucket: a slot's header is in
// one of two, which no other slot's ever is). A worker marks the packets it takes from the group
// and those it receives from an interlink, and a packet is in the hands of the worker whose mark
// for it is the newest, unless it is in the group's list or an interlink's ring. So only taking
// and receiving write marks: allocate, free, giving back and sending write none (clearing marks
// on give-back, which read the sender's, cost a two-worker pipeline 15%). The moves between a
// worker and the group are ordered (under the mutex) so that a worker killed in the middle of one
// leaves each packet where reclaim finds it once: marked, or in the group's list (which reclaim
// leaves out). A receiver marks a batch before its cursor passes it, so one killed in between
// leaves the batch in the ring, which the caller of reclaim names
// (apps.interlink.ring.in_flight) and reclaim leaves out. A packet handed to another worker by
// other means (its address in shared memory) keeps its sender's mark until it comes back to the
// group: if the sender dies first, its reclaim takes the packet back.
#pragma once
#include <stdint.h>

#include "runtime/error.h"
#include "runtime/packet.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
enum { GROUP_MAX_WORKERS = 64 };

struct group_stats {
  int64_t packets; /* carved from the packet memory so far */
  int64_t free;    /* in the group free list */
  int64_t cap;     /* the most packets the group may carve */
  int32_t workers; /* worker slots */
  int32_t hugetlb; /* 1: the packet memory is hugetlbfs pages */
  int64_t twice;   /* entries of the group's list and the workers' naming a packet another names
                      too: 0 unless a packet was given back twice (counted right once every worker
                      has stopped: a running one moves packets as they are counted) */
  int64_t worker_free[GROUP_MAX_WORKERS]; /* in each worker's free list */
  int64_t worker_held[GROUP_MAX_WORKERS]; /* in each worker's hands by its marks: free, in its
                                             links or in its apps (counted right once every
                                             worker has stopped) */
  int32_t worker_pid[GROUP_MAX_WORKERS];  /* the process attached to each slot, 0 for none */
};

/* What snabb_group_reclaim gave back of a dead worker's packets, by where they were. */
struct group_reclaimed {
  int64_t free;  /* in its free list */
  int64_t links; /* queued in its links */
  int64_t held;  /* the rest of its marks: in its apps' hands, or in a batch it was moving */
};

/* Failures return -1 (snabb_error() says why). */
/* Creates the group in dir/group/ with `workers` worker slots (1..GROUP_MAX_WORKERS) and a cap of
   `packets` (1..2^24). */
int snabb_group_create(const char *dir, int32_t workers, int32_t packets);
/* Joins this process's packet pool to the group in dir as worker `index`. Refused while the slot
   holds what a process that ended left there (until snabb_group_reclaim). */
int snabb_group_attach(const char *dir, int32_t index);
/* Gives every packet in the hands of worker index (whose process has ended) back to the group's
   list, with a fresh header, and empties its free list and its links: those in `links` (the
   directory of its links' stats files, RUNDIR/engine/links: runtime/stats.h; NULL for none) are
   emptied and counted. The n_in_flight link entries of in_flight are packets in interlinks, left
   out (apps.interlink.ring.in_flight). Returns how many it gave back, and *out says from where
   (out may be NULL). */
int64_t snabb_group_reclaim(const char *dir, int32_t index, const char *links,
                            const uint64_t *in_flight, int64_t n_in_flight,
                            struct group_reclaimed *out);
int snabb_group_stats(const char *dir, struct group_stats *stats);
/* A worker's marks (above), in the group's control memory: its clock, and a mark for each bucket
   of 2^GROUP_MARK_SHIFT bytes of the packet memory. */
enum { GROUP_MARK_SHIFT = 13 };
struct group_marks {
  uint64_t clock; /* its newest mark */
  uint64_t pad[7];
  uint64_t mark[];
};
/* This worker's marks (NULL outside a group); *base: the packet memory's address (a packet's bucket
   is (address - base) >> GROUP_MARK_SHIFT), *buckets: how many. */
struct group_marks *snabb_group_marks(uint64_t *base, uint64_t *buckets);
/* Marks the packets of link entries ring[(from + k) & mask], k < n, as in this worker's hands: it
   received them from an interlink whose transmitter's clock was `sent`. No-op outside a group and
   for packets that are not the group's. (An interlink receiver does this in its own loop.) */
void snabb_group_mark(struct packet *const *ring, uint32_t mask, uint32_t from, uint32_t n,
                      uint64_t sent);
/* The directory given to attach, or NULL outside a group. */
const char *snabb_group_dir(void);
// END FFI

#ifdef __cplusplus
}
#endif
