// group_test: the free list's contract across worker processes from C++ (packet.h): a packet whose
// header prepend or shiftleft moved, freed by another worker with packet_free, comes back from
// packet_allocate at its slot's canonical place with a fresh header, its slot otherwise as it was;
// and free touches no packet (the freeing worker has the pages of the headers unreadable then);
// a worker gives back what it frees beyond the high water, the group's packets only (adopted ones,
// DPDK's mbufs, stay); and all a worker killed with -9 had goes back to the group once, by its
// marks (group.h). The Lua side is core.group's selftest.
#include "runtime/group.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "runtime/packet.h"

namespace snabb::runtime {
namespace {

constexpr int kPackets = 64;  // the group's cap: create carves them all

// Packet i's header move: prepend (< 0) or shiftleft (> 0) of 1 to 200 bytes, or none.
int shift_of(int i) {
  const int k = i * 37 % 200 + 1;
  return i % 3 == 0 ? -k : i % 3 == 1 ? k : 0;
}

// What worker 0 writes into packet i (8 bytes after the header's canonical place, where the fresh
// header of its next allocation does not reach) and worker 1 checks before freeing it.
uint64_t tag_of(int i) { return 0x5441470000000000ull + uint64_t(i); }
uint8_t* tag_place(packet* p, int i) { return p->data + (shift_of(i) < 0 ? -shift_of(i) : 0); }

struct Box {
  packet* p[kPackets];  // worker 0's packets, as it left them
  std::atomic<int> stage;
};

// A child's check: on failure, says which and ends the child with a status the parent reports.
#define CHILD_CHECK(cond)                                                                   \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: %s failed (%s; errno: %s)\n", __FILE__, __LINE__, #cond, \
                   snabb_error(), std::strerror(errno));                                    \
      _exit(1);                                                                             \
    }                                                                                       \
  } while (0)

void wait_stage(Box* box, int stage) {
  while (box->stage.load() < stage) usleep(1000);
}

// Worker 0: allocates every packet, moves its header, tags it; once worker 1 has freed them all and
// the group has them back, allocates them all again.
[[noreturn]] void worker0(const std::string& dir, Box* box) {
  CHILD_CHECK(snabb_group_attach(dir.c_str(), 0) == 0);
  for (int i = 0; i < kPackets; ++i) {
    packet* p = packet_allocate();
    const int s = shift_of(i);
    auto* moved = reinterpret_cast<packet*>(reinterpret_cast<uint8_t*>(p) + s);
    moved->headroom = static_cast<uint16_t>(PACKET_HEADROOM + s);
    moved->length = static_cast<uint16_t>(tag_place(moved, i) - moved->data + 8);
    const uint64_t tag = tag_of(i);
    std::memcpy(tag_place(moved, i), &tag, sizeof tag);
    box->p[i] = moved;
  }
  box->stage = 1;
  wait_stage(box, 2);
  std::set<packet*> canonical, seen;
  for (int i = 0; i < kPackets; ++i) {
    canonical.insert(
        reinterpret_cast<packet*>(reinterpret_cast<uint8_t*>(box->p[i]) - shift_of(i)));
  }
  for (int n = 0; n < kPackets; ++n) {
    packet* p = packet_allocate();
    CHILD_CHECK(canonical.count(p) == 1 && seen.insert(p).second);
    CHILD_CHECK(p->length == 0 && p->headroom == PACKET_HEADROOM);
  }
  for (int i = 0; i < kPackets; ++i) {
    uint64_t tag = 0;
    std::memcpy(&tag, tag_place(box->p[i], i), sizeof tag);
    CHILD_CHECK(tag == tag_of(i));
  }
  _exit(0);
}

// Worker 1: checks and frees worker 0's packets, each with its header's pages unreadable (pages of
// page_size bytes: the group's hugetlbfs pages are protected whole).
[[noreturn]] void worker1(const std::string& dir, Box* box, uintptr_t page_size) {
  CHILD_CHECK(snabb_group_attach(dir.c_str(), 1) == 0);
  wait_stage(box, 1);
  for (int i = 0; i < kPackets; ++i) {
    packet* p = box->p[i];
    uint64_t tag = 0;
    std::memcpy(&tag, tag_place(p, i), sizeof tag);
    CHILD_CHECK(p->length == tag_place(p, i) - p->data + 8 && tag == tag_of(i));
    const auto at = reinterpret_cast<uintptr_t>(p);
    const uintptr_t from = at & ~(page_size - 1);
    const uintptr_t to =
        (at + sizeof(packet::length) + sizeof(packet::headroom) + page_size - 1) & ~(page_size - 1);
    CHILD_CHECK(mprotect(reinterpret_cast<void*>(from), to - from, PROT_NONE) == 0);
    packet_free(p);
    CHILD_CHECK(mprotect(reinterpret_cast<void*>(from), to - from, PROT_READ | PROT_WRITE) == 0);
  }
  CHILD_CHECK(snabb_packet_freelist()->nfree == kPackets);
  _exit(0);
}

// The exit status of child pid: 0 when it ended well.
int wait_child(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(GroupTest, MovedPacketsFreedInAnotherWorkerComeBackCanonicalAndIntact) {
  char dir_template[] = "/tmp/snabb-group-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  ASSERT_EQ(snabb_group_create(dir.c_str(), 2, kPackets), 0) << snabb_error();
  void* mem = mmap(nullptr, sizeof(Box), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* box = new (mem) Box{};
  const pid_t first = fork();
  if (first == 0) worker0(dir, box);
  group_stats stats{};
  ASSERT_EQ(snabb_group_stats(dir.c_str(), &stats), 0);
  const uintptr_t page_size = stats.hugetlb ? 2 << 20 : sysconf(_SC_PAGESIZE);
  const pid_t second = fork();
  if (second == 0) worker1(dir, box, page_size);
  EXPECT_EQ(wait_child(second), 0) << "worker 1 (128 + 11: free read a packet)";
  // Worker 1's free list back to the group, where worker 0 takes it.
  EXPECT_EQ(snabb_group_reclaim(dir.c_str(), 1, nullptr, nullptr, 0, nullptr), kPackets);
  box->stage = 2;
  if (testing::Test::HasFailure()) kill(first, SIGKILL);
  EXPECT_EQ(wait_child(first), 0) << "worker 0";
  munmap(mem, sizeof(Box));
  std::filesystem::remove_all(dir);
}

// A worker that frees more than it takes (the end of a pipeline) gives packets back after a breath,
// down to the low water; the group's count of free packets adds up at each step.
[[noreturn]] void giver(const std::string& dir, int packets) {
  CHILD_CHECK(snabb_group_attach(dir.c_str(), 0) == 0);
  std::vector<packet*> held;
  for (int i = 0; i < packets; ++i) held.push_back(packet_allocate());
  for (packet* p : held) packet_free(p);
  packet_pool_rebalance();  // (the engine's call after a breath)
  CHILD_CHECK(snabb_packet_freelist()->nfree == kGroupLowWater);
  group_stats stats{};
  CHILD_CHECK(snabb_group_stats(dir.c_str(), &stats) == 0);
  CHILD_CHECK(stats.free + stats.worker_free[0] == stats.packets);
  CHILD_CHECK(stats.worker_held[0] == kGroupLowWater);  // what it gave back is no longer its own
  _exit(0);
}

// Runs a giver of kGroupHighWater + 1,000 packets in a child, in a group of one worker.
void run_giver(void (*giver_fn)(const std::string&, int)) {
  char dir_template[] = "/tmp/snabb-group-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  constexpr int kMany = kGroupHighWater + 1000;
  ASSERT_EQ(snabb_group_create(dir.c_str(), 1, 2 * kMany), 0) << snabb_error();
  const pid_t child = fork();
  if (child == 0) giver_fn(dir, kMany);
  EXPECT_EQ(wait_child(child), 0);
  std::filesystem::remove_all(dir);
}

TEST(GroupTest, AWorkerThatFreesMoreThanItTakesGivesBackAfterABreath) { run_giver(giver); }

// A worker with adopted slots (DPDK's mbufs) among the packets it gives back: only the group's go
// back; the adopted ones stay in its list, moved down below what it keeps of the group's.
[[noreturn]] void giver_with_adopted(const std::string& dir, int packets) {
  CHILD_CHECK(snabb_group_attach(dir.c_str(), 0) == 0);
  constexpr int kAdopted = 16;
  std::set<packet*> adopted;
  std::vector<packet*> held;
  for (int i = 0; i < packets; ++i) held.push_back(packet_allocate());
  const int after = 500;  // freed after the adopted ones, fewer than a give-back's batch
  for (int i = 0; i < packets - after; ++i) packet_free(held[i]);
  std::vector<uint8_t> memory(kAdopted * PACKET_SLOT_SIZE);  // (not the group's)
  for (int i = 0; i < kAdopted; ++i) {  // near the top: inside the batch given back
    packet_pool_adopt(memory.data() + i * PACKET_SLOT_SIZE);
    packet_freelist* fl = snabb_packet_freelist();
    adopted.insert(fl->list[fl->nfree - 1]);
  }
  for (int i = packets - after; i < packets; ++i) packet_free(held[i]);
  packet_pool_rebalance();
  packet_freelist* fl = snabb_packet_freelist();
  int found = 0;
  for (int64_t k = 0; k < fl->nfree; ++k) found += int(adopted.count(fl->list[k]));
  CHILD_CHECK(found == kAdopted);
  group_stats stats{};
  CHILD_CHECK(snabb_group_stats(dir.c_str(), &stats) == 0);
  CHILD_CHECK(stats.free + stats.worker_free[0] == stats.packets && stats.twice == 0);
  // The batch was the top nfree - adopted - low water, the adopted among them: they stay, and as
  // many of the group's below the batch as well.
  CHILD_CHECK(stats.worker_free[0] == kGroupLowWater + kAdopted);
  CHILD_CHECK(fl->nfree == stats.worker_free[0] + kAdopted && stats.free > 0);
  _exit(0);
}

TEST(GroupTest, AWorkerGivesBackOnlyTheGroupsPacketsKeepingItsAdoptedOnes) {
  run_giver(giver_with_adopted);
}

// A worker that takes from the group marks every packet it takes as its own (runtime/group.h):
// in a group of 2 * kGroupBatch packets (all carved at its creation), worker 0 takes them all and
// gives back a count that is no multiple of the eight a take marks at a time (it keeps kKept in
// hand); worker 1 takes those. By the marks, each holds what it has.
constexpr int kKept = 3;
constexpr int kGivenBack = 2 * kGroupBatch - kKept - kGroupLowWater;
static_assert(kGivenBack % 8 != 0 && kGivenBack < kGroupBatch &&
              2 * kGroupBatch - kKept > kGroupHighWater);

[[noreturn]] void give_back(const std::string& dir) {
  CHILD_CHECK(snabb_group_attach(dir.c_str(), 0) == 0);
  std::vector<packet*> held;
  for (int i = 0; i < 2 * kGroupBatch; ++i) held.push_back(packet_allocate());
  for (int i = kKept; i < 2 * kGroupBatch; ++i) packet_free(held[i]);
  packet_pool_rebalance();
  CHILD_CHECK(snabb_packet_freelist()->nfree == kGroupLowWater);
  _exit(0);
}

[[noreturn]] void take_all(const std::string& dir) {
  CHILD_CHECK(snabb_group_attach(dir.c_str(), 1) == 0);
  packet* p = packet_allocate();  // (a take: all the group has)
  CHILD_CHECK(p != nullptr && snabb_packet_freelist()->nfree == kGivenBack - 1);
  _exit(0);
}

TEST(GroupTest, ATakerMarksEveryPacketItTakes) {
  char dir_template[] = "/tmp/snabb-group-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  ASSERT_EQ(snabb_group_create(dir.c_str(), 2, 2 * kGroupBatch), 0) << snabb_error();
  for (auto* worker : {give_back, take_all}) {
    const pid_t child = fork();
    if (child == 0) worker(dir);
    ASSERT_EQ(wait_child(child), 0);
  }
  group_stats stats{};
  ASSERT_EQ(snabb_group_stats(dir.c_str(), &stats), 0) << snabb_error();
  EXPECT_EQ(stats.packets, 2 * kGroupBatch);
  EXPECT_EQ(stats.free, 0);
  EXPECT_EQ(stats.worker_held[0], kGroupLowWater + kKept);
  EXPECT_EQ(stats.worker_held[1], kGivenBack);
  std::filesystem::remove_all(dir);
}

// What a worker killed with -9 had goes back to the group, wherever it was: worker 0 takes the
// group's packets, frees some, holds some (as an app would) and sends 10 into a ring (a shared
// array, as an interlink's); worker 1 receives 5 of them (snabb_group_mark, as the receiver does)
// and holds them. Each is killed. Reclaim gives back what each had, by its marks (a receiver's are
// newer than the sender's), less what is in the ring; the slot takes no new worker until then.
struct Ring {
  packet* entries[16];
  uint64_t sent;  // the sender's clock, as a transmitter publishes it beside its cursor
  std::atomic<int> stage;
};

[[noreturn]] void sender(const std::string& dir, Ring* ring) {
  CHILD_CHECK(snabb_group_attach(dir.c_str(), 0) == 0);
  std::vector<packet*> held;
  for (int i = 0; i < 100; ++i) held.push_back(packet_allocate());
  for (int i = 0; i < 50; ++i) packet_free(held[i]);
  for (int i = 0; i < 10; ++i) ring->entries[i] = held[50 + i];  // sent: out of its hands
  uint64_t base = 0, buckets = 0;
  ring->sent = snabb_group_marks(&base, &buckets)->clock;
  CHILD_CHECK(ring->sent > 0 && base != 0 && buckets > 0);
  ring->stage = 1;
  pause();
  _exit(1);
}

[[noreturn]] void receiver(const std::string& dir, Ring* ring) {
  CHILD_CHECK(snabb_group_attach(dir.c_str(), 1) == 0);
  snabb_group_mark(ring->entries, 15, 0, 5, ring->sent);
  ring->stage = 2;
  pause();
  _exit(1);
}

// A process that attaches to slot index and exits: 0 when it could.
int attach_status(const std::string& dir, int index) {
  const pid_t pid = fork();
  if (pid == 0) _exit(snabb_group_attach(dir.c_str(), index) == 0 ? 0 : 3);
  return wait_child(pid);
}

TEST(GroupTest, AKilledWorkersPacketsGoBackFromItsListItsHandsAndNotTheRing) {
  char dir_template[] = "/tmp/snabb-group-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  constexpr int kCap = 256;
  ASSERT_EQ(snabb_group_create(dir.c_str(), 2, kCap), 0) << snabb_error();
  void* mem =
      mmap(nullptr, sizeof(Ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* ring = new (mem) Ring{};
  const pid_t first = fork();
  if (first == 0) sender(dir, ring);
  while (ring->stage.load() < 1) usleep(1000);
  const pid_t second = fork();
  if (second == 0) receiver(dir, ring);
  while (ring->stage.load() < 2) usleep(1000);
  group_stats stats{};
  ASSERT_EQ(snabb_group_stats(dir.c_str(), &stats), 0);
  EXPECT_EQ(stats.packets, kCap);
  EXPECT_EQ(stats.worker_free[0], kCap - 50);  // it took all, allocated 100 and freed 50
  EXPECT_EQ(stats.worker_held[0], kCap - 5);   // all but the 5 received (stats sees no ring)
  EXPECT_EQ(stats.worker_held[1], 5);
  kill(first, SIGKILL);
  EXPECT_EQ(wait_child(first), 128 + SIGKILL);
  EXPECT_EQ(attach_status(dir, 0), 3) << "a slot holding a dead worker's packets takes no worker";
  uint64_t in_flight[5];
  for (int i = 0; i < 5; ++i) in_flight[i] = reinterpret_cast<uint64_t>(ring->entries[5 + i]);
  group_reclaimed from{};
  EXPECT_EQ(snabb_group_reclaim(dir.c_str(), 0, nullptr, in_flight, 5, &from), kCap - 10);
  EXPECT_EQ(from.free, kCap - 50);
  EXPECT_EQ(from.held, 40);
  EXPECT_EQ(from.links, 0);
  kill(second, SIGKILL);
  EXPECT_EQ(wait_child(second), 128 + SIGKILL);
  EXPECT_EQ(snabb_group_reclaim(dir.c_str(), 1, nullptr, in_flight, 5, &from), 5);
  EXPECT_EQ(from.held, 5);
  // Once each packet was given back once, all but the ring's 5 are in the group's list; and the
  // slot takes a worker again.
  ASSERT_EQ(snabb_group_stats(dir.c_str(), &stats), 0);
  EXPECT_EQ(stats.free, kCap - 5);
  EXPECT_EQ(stats.twice, 0);
  EXPECT_EQ(stats.worker_held[0] + stats.worker_held[1], 0);
  EXPECT_EQ(attach_status(dir, 0), 0);
  munmap(mem, sizeof(Ring));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace snabb::runtime
