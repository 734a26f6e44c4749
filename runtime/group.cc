// group: the shared packet memory of worker processes (group.h).
#include "runtime/group.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/packet.h"
#include "runtime/stats.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

namespace snabb::runtime {
namespace {

constexpr uint64_t kMagic = 0x50524753'42414e53;  // "SNABSGRP" in the file
constexpr uint32_t kVersion = 2;                  // 2: the marks
// Where every worker maps the packet memory: far from what the kernel hands out by itself (the
// binary and its heap near 0x55..., mmap areas below the stack near 0x7f...), below 2^47.
constexpr uintptr_t kPacketBase = uintptr_t{1} << 46;
constexpr size_t kHugePage = 2 << 20;
constexpr size_t kPage = 4096;
constexpr int64_t kMaxCap = 1 << 24;
// Packets create carves: 4,096 a worker (a 64-byte Source -> interlink -> sink pipeline of two
// workers used 8,192), at most 16,384 (177 MiB).
constexpr int32_t kStockPerWorker = 4096;
constexpr int64_t kMaxStock = 16384;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string control_path(const std::string& dir) { return dir + "/group/control"; }
std::string packets_path(const std::string& dir) { return dir + "/group/packets"; }

// The start of the control memfd; the group list and the worker lists follow, each at a page.
struct Control {
  uint64_t magic;
  uint32_t version;
  int32_t workers;
  int64_t cap;
  uint64_t base;        // the packet memory's address in every worker
  uint64_t bytes;       // its size
  uint64_t list_bytes;  // the room of each free list: the group's and every worker's
  uint64_t group_list_offset;
  uint64_t worker_list_offset;  // worker i's at worker_list_offset + i * list_bytes
  uint64_t marks_bytes;         // the room of each worker's marks (struct group_marks)
  uint64_t marks_offset;        // worker i's at marks_offset + i * marks_bytes
  uint64_t buckets;             // marks a worker: the packet memory's 8 KiB buckets
  int32_t hugetlb;
  int32_t creator;
  alignas(64) pthread_mutex_t lock;
  int64_t carved;  // packets [0, carved) of the packet memory are in some list or in use
  int64_t nfree;   // in the group list
  alignas(64) int32_t pid[GROUP_MAX_WORKERS];
  // The group's clock (group.h): the newest of a worker's clock when it last took or gave back.
  uint64_t clock;
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// The mutex's holder may be killed while it holds it: the next taker gets EOWNERDEAD and goes on
// (the moves under the mutex leave the lists consistent at every step; see take and give). A taker
// tries kSpins times before it waits in the kernel: a move holds the mutex for a microsecond or
// two, and a pipeline's two workers (one taking, one giving back) had met there often enough that
// their sleeps and wakeups cost a quarter of their rate (tools/bench-interlink 97.8 -> 127.9 Mpps,
// examples/pipeline.lua's 76-81 -> 106-114; 100 to 10,000 tries did the same).
class Locked {
  static constexpr int kSpins = 1000;

 public:
  explicit Locked(pthread_mutex_t* m) : m_(m) {
    int rc = EBUSY;
    for (int i = 0; i < kSpins && (rc = pthread_mutex_trylock(m)) == EBUSY; ++i) {
      __builtin_ia32_pause();
    }
    if (rc == EBUSY) rc = pthread_mutex_lock(m);
    if (rc == EOWNERDEAD) {
      pthread_mutex_consistent(m);
    } else if (rc != 0) {
      throw std::runtime_error(std::string("group: lock: ") + std::strerror(rc));
    }
  }
  ~Locked() { pthread_mutex_unlock(m_); }
  Locked(const Locked&) = delete;

 private:
  pthread_mutex_t* m_;
};

// Stores before the barrier are made before those after it (a process killed between two moves'
// steps has made the first): x86 keeps stores in order, the compiler is told to.
inline void barrier() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// A group as this process sees it: its control memory mapped.
struct Group {
  std::string dir;
  Fd control_fd, packets_fd;  // kept open by the creator, whose /proc/PID/fd names them
  Control* control = nullptr;
  size_t control_size = 0;
  uint8_t* view = nullptr;  // the packet memory mapped at an address of its own (packets())
  size_t view_size = 0;

  Group() = default;
  Group(const Group&) = delete;
  ~Group() {
    if (view) munmap(view, view_size);
    if (control) munmap(control, control_size);
  }
  // The packet memory, for a process that writes slots' headers without being attached (the
  // creator: create's stock, reclaim), mapped here on first use.
  uint8_t* packets() {
    if (view) return view;
    Fd opened;
    int fd = packets_fd.get();
    if (fd < 0) {
      const std::string path = packets_path(dir);
      opened = Fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (opened.get() < 0) throw std::runtime_error(errno_text(path));
      fd = opened.get();
    }
    void* mem = mmap(nullptr, control->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) throw std::runtime_error(errno_text("group: mmap of the packet memory"));
    view_size = control->bytes;
    return view = static_cast<uint8_t*>(mem);
  }
  packet** group_list() const {
    return reinterpret_cast<packet**>(reinterpret_cast<uint8_t*>(control) +
                                      control->group_list_offset);
  }
  uint64_t worker_offset(int32_t i) const {
    return control->worker_list_offset + uint64_t(i) * control->list_bytes;
  }
  packet_freelist* worker_list(int32_t i) const {
    return reinterpret_cast<packet_freelist*>(reinterpret_cast<uint8_t*>(control) +
                                              worker_offset(i));
  }
  uint8_t* slot(int64_t i) const {
    return reinterpret_cast<uint8_t*>(control->base) + i * PACKET_SLOT_SIZE;
  }
  group_marks* marks(int32_t i) const {
    return reinterpret_cast<group_marks*>(reinterpret_cast<uint8_t*>(control) +
                                          control->marks_offset +
                                          uint64_t(i) * control->marks_bytes);
  }
  // The bucket of packet p (a free-list or link entry): its header's (group.h); a packet's header
  // is in the first 2 * PACKET_HEADROOM of its slot, whose two buckets at most are no other's.
  uint64_t bucket(const void* p) const {
    return bucket_at(reinterpret_cast<uintptr_t>(p) & (kPacketAddressLimit - 1), control->base);
  }
  static uint64_t bucket_at(uintptr_t address, uintptr_t base) {
    return (address - base) >> GROUP_MARK_SHIFT;
  }
  // Marks the packets of the n free-list entries e (addresses, no length) with `now` in marks:
  // eight buckets worked out before their eight stores. Against a bucket() and a store a packet,
  // in the take of examples/pipeline.lua's first worker (2,048 a time), alternating: two workers
  // 150.0-154.2 -> 152.9-156.8 Mpps (medians 150.6 -> 155.6 of 5 rounds); the same loop a packet
  // at a time, no faster (151.2-152.3 against 150.4-153.5).
  void mark(group_marks* marks, packet* const* e, int64_t n, uint64_t now) const {
    uint64_t* m = marks->mark;
    const uintptr_t base = control->base;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      uint64_t b[8];
      for (int u = 0; u < 8; ++u) b[u] = bucket_at(reinterpret_cast<uintptr_t>(e[j + u]), base);
      for (int u = 0; u < 8; ++u) m[b[u]] = now;
    }
    for (; j < n; ++j) m[bucket_at(reinterpret_cast<uintptr_t>(e[j]), base)] = now;
  }
  // Worker i's mark of slot s: the newer of its buckets'.
  uint64_t mark_of(int32_t i, int64_t s) const {
    const uint64_t* m = marks(i)->mark;
    const uint64_t first = uint64_t(s) * PACKET_SLOT_SIZE >> GROUP_MARK_SHIFT;
    const uint64_t last =
        (uint64_t(s) * PACKET_SLOT_SIZE + 2 * PACKET_HEADROOM) >> GROUP_MARK_SHIFT;
    return std::max(m[first], m[last]);
  }
  // The worker in whose hands slot s is by the marks (its mark is the newest), or -1: none
  // marked it, or two did at one time (no event orders them).
  int32_t holder(int64_t s) const {
    int32_t newest = -1;
    uint64_t time = 0;
    for (int32_t j = 0; j < control->workers; ++j) {
      if (const uint64_t m = mark_of(j, s); m > time) {
        newest = j, time = m;
      } else if (m == time && m != 0) {
        newest = -1;
      }
    }
    return newest;
  }
  // The marks of slots [0, carved): their buckets.
  uint64_t carved_buckets() const {
    return std::min<uint64_t>(
        control->buckets, (uint64_t(control->carved) * PACKET_SLOT_SIZE >> GROUP_MARK_SHIFT) + 1);
  }
  // The slot (its number) of packet p, a free-list or link entry (the length bits above
  // PACKET_ADDRESS_BITS are ignored); -1 when p is no packet of the group's (carved so far). A
  // worker's list may also hold slots of memory that is not the group's: DPDK's mbufs
  // (drivers/dpdk, adopted by its pool), which the group's list must never get (another worker may
  // not have them mapped, and a restarted DPDK group makes new ones where the old ones were). A
  // packet's header is anywhere in the first 2 * PACKET_HEADROOM of its slot (packet.h).
  int64_t slot_of(const void* p) const {
    const uintptr_t d =
        (reinterpret_cast<uintptr_t>(p) & (kPacketAddressLimit - 1)) - uintptr_t(control->base);
    if (d >= uint64_t(control->carved) * PACKET_SLOT_SIZE) return -1;
    if (d % PACKET_SLOT_SIZE > 2 * PACKET_HEADROOM) return -1;
    return int64_t(d / PACKET_SLOT_SIZE);
  }
  bool owns(packet* e) const { return slot_of(e) >= 0; }
  // Worker i's packets back to the group's list (its process has ended; under the mutex): those
  // its marks name, its free list's and its links' (packets other workers freed may be there,
  // marked as theirs), less those in the group's list (given back, or a move it was killed in) and
  // those in_flight (in interlinks). Each gets a fresh header (the dead worker's header is not
  // trusted to say where its slot starts). Empties its free list, its links and its marks.
  group_reclaimed reclaim(int32_t i, const std::vector<Link*>& links, const uint64_t* in_flight,
                          int64_t n_in_flight) {
    Locked locked(&control->lock);
    const int64_t carved = control->carved;
    enum : uint8_t { kNowhere, kGroup, kInFlight, kFree, kLinks, kHeld };
    std::vector<uint8_t> where(carved, kNowhere);
    packet** gl = group_list();
    for (int64_t k = 0; k < control->nfree; ++k) {
      if (const int64_t s = slot_of(gl[k]); s >= 0) where[s] = kGroup;
    }
    auto find = [&](const void* p, uint8_t place) {
      if (const int64_t s = slot_of(p); s >= 0 && where[s] == kNowhere) where[s] = place;
    };
    for (int64_t k = 0; k < n_in_flight; ++k)
      find(reinterpret_cast<void*>(in_flight[k]), kInFlight);
    packet_freelist* fl = worker_list(i);
    for (int64_t k = 0; k < fl->nfree; ++k) find(fl->list[k], kFree);
    for (Link* l : links) {
      for (uint32_t k = uint32_t(l->read); k != uint32_t(l->write); ++k) {
        find(l->ring[k & LINK_RING_MASK], kLinks);
      }
    }
    for (int64_t s = 0; s < carved; ++s) {
      if (where[s] == kNowhere && holder(s) == i) where[s] = kHeld;
    }
    group_reclaimed r{};
    int64_t gn = control->nfree;
    for (int64_t s = 0; s < carved; ++s) {
      if (where[s] < kFree) continue;
      freelist_fresh_entry(packets() + s * PACKET_SLOT_SIZE);
      gl[gn++] = freelist_entry(slot(s));
      ++(where[s] == kFree ? r.free : where[s] == kLinks ? r.links : r.held);
    }
    barrier();
    control->nfree = gn;
    barrier();
    fl->nfree = 0;
    for (Link* l : links) l->read = l->write;
    std::fill(marks(i)->mark, marks(i)->mark + carved_buckets(), 0);
    control->pid[i] = 0;
    return r;
  }
  // Whether worker i's slot holds anything: a free list or marks (left by a process that ended).
  bool holds(int32_t i) const {
    const uint64_t* m = marks(i)->mark;
    return worker_list(i)->nfree > 0 ||
           std::any_of(m, m + carved_buckets(), [](uint64_t t) { return t != 0; });
  }
};

// Ordinary shared memory gets 4 KiB pages, and packets 10 KiB apart then miss the TLB (the pool's
// chunks get transparent huge pages: packet.cc); MADV_COLLAPSE makes huge pages of it whatever
// /sys/kernel/mm/transparent_hugepage/shmem_enabled says, once a page of each 2 MiB is there
// (ShmemPmdMapped in every worker's smaps covers the packets then). Slots [first, first + n) of
// the packet memory mapped at base: each 2 MiB page is made by the carve that reaches it first;
// the slots carved here are all in pages at or after it, so the byte touched is in none handed out
// yet. A collapse took 0.3 to 5 ms a page here, longer when memory must be compacted: create
// carves a first stock of packets so that workers seldom do.
void prepare(uint8_t* base, uint64_t bytes, int64_t first, int64_t n, bool carving = true) {
  const uint64_t from = round_up(uint64_t(first) * PACKET_SLOT_SIZE, kHugePage);
  const uint64_t to = std::min(round_up(uint64_t(first + n) * PACKET_SLOT_SIZE, kHugePage), bytes);
  for (uint64_t at = from; at < to; at += kHugePage) {
    auto* page = reinterpret_cast<volatile uint8_t*>(base + at);
    if (carving) {
      *page = 0;
    } else {
      (void)*page;  // packets in use may lie there: read only
    }
    madvise(const_cast<uint8_t*>(base + at), kHugePage, MADV_COLLAPSE);  // fails harmlessly
  }
}

std::map<std::string, std::unique_ptr<Group>>& groups() {
  static std::map<std::string, std::unique_ptr<Group>> instance;
  return instance;
}

void* map_shared(int fd, size_t size, uint64_t offset, void* at, int flags) {
  void* mem = mmap(at, size, PROT_READ | PROT_WRITE, MAP_SHARED | flags, fd, off_t(offset));
  return mem;
}

// The group in dir, mapped here on first use.
Group& open_group(const std::string& dir) {
  auto& all = groups();
  if (auto it = all.find(dir); it != all.end()) return *it->second;
  const std::string path = control_path(dir);
  Fd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) {
    throw std::runtime_error(errno == ENOENT ? "no group in " + dir + " (" + path + ": " +
                                                   std::strerror(errno) + ")"
                                             : errno_text(path));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) throw std::runtime_error(errno_text(path));
  if (size_t(st.st_size) < sizeof(Control)) {
    throw std::runtime_error(path + ": not a group's control memory");
  }
  void* mem = map_shared(fd.get(), st.st_size, 0, nullptr, 0);
  if (mem == MAP_FAILED) throw std::runtime_error(errno_text(path + ": mmap"));
  auto g = std::make_unique<Group>();
  g->dir = dir;
  g->control = static_cast<Control*>(mem);
  g->control_size = st.st_size;
  g->control_fd = std::move(fd);
  if (g->control->magic != kMagic || g->control->version != kVersion) {
    throw std::runtime_error(path + ": not a group's control memory (its creator has ended?)");
  }
  return *all.emplace(dir, std::move(g)).first->second;
}

uint64_t meminfo(const std::string& name) {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + ":", 0) == 0) return std::strtoull(line.c_str() + name.size() + 1, 0, 10);
  }
  return 0;
}

void create(const std::string& dir, int32_t workers, int32_t cap) {
  if (workers < 1 || workers > GROUP_MAX_WORKERS) {
    throw std::invalid_argument("group.create: workers must be from 1 to " +
                                std::to_string(GROUP_MAX_WORKERS) + ", got " +
                                std::to_string(workers));
  }
  if (cap < 1 || cap > kMaxCap) {
    throw std::invalid_argument("group.create: packets must be from 1 to " +
                                std::to_string(kMaxCap) + ", got " + std::to_string(cap));
  }
  if (groups().count(dir))
    throw std::runtime_error("group.create: a group is in " + dir + " already");
  const std::string group_dir = dir + "/group";
  if (mkdir(group_dir.c_str(), 0700) != 0) throw std::runtime_error(errno_text(group_dir));
  auto g = std::make_unique<Group>();
  g->dir = dir;
  // The packet memory: hugetlbfs pages when enough are provisioned free (and not reserved by a
  // mapping of another process: HugePages_Free counts those) for the whole cap, else
  // ordinary shared memory, which take collapses into transparent huge pages as it carves.
  const uint64_t bytes = round_up(uint64_t(cap) * PACKET_SLOT_SIZE, kHugePage);
  int hugetlb = 0;
  if (meminfo("Hugepagesize") == kHugePage / 1024 &&
      (meminfo("HugePages_Free") - meminfo("HugePages_Rsvd")) * kHugePage >= bytes) {
    g->packets_fd = Fd(memfd_create("snabb-group-packets", MFD_CLOEXEC | MFD_HUGETLB));
    hugetlb = g->packets_fd.get() >= 0 && ftruncate(g->packets_fd.get(), off_t(bytes)) == 0;
    // Mapping them reserves them for the group (a failure here, not in a worker's attach).
    void* mem = hugetlb ? map_shared(g->packets_fd.get(), bytes, 0, nullptr, 0) : MAP_FAILED;
    hugetlb = mem != MAP_FAILED;
    if (hugetlb) {
      g->view = static_cast<uint8_t*>(mem);
      g->view_size = bytes;
    }
  }
  if (!hugetlb) {
    g->packets_fd = Fd(memfd_create("snabb-group-packets", MFD_CLOEXEC));
    if (g->packets_fd.get() < 0 || ftruncate(g->packets_fd.get(), off_t(bytes)) != 0) {
      throw std::runtime_error(errno_text("group.create: packet memory"));
    }
  }
  const uint64_t list_bytes =
      round_up(sizeof(packet_freelist) + uint64_t(cap) * sizeof(packet*), kPage);
  const uint64_t buckets = (uint64_t(cap) * PACKET_SLOT_SIZE >> GROUP_MARK_SHIFT) + 1;
  const uint64_t marks_bytes = round_up(sizeof(group_marks) + buckets * sizeof(uint64_t), kPage);
  const uint64_t header = round_up(sizeof(Control), kPage);
  g->control_size = header + (uint64_t(workers) + 1) * list_bytes + workers * marks_bytes;
  g->control_fd = Fd(memfd_create("snabb-group-control", MFD_CLOEXEC));
  if (g->control_fd.get() < 0 || ftruncate(g->control_fd.get(), off_t(g->control_size)) != 0) {
    throw std::runtime_error(errno_text("group.create: control memory"));
  }
  void* mem = map_shared(g->control_fd.get(), g->control_size, 0, nullptr, 0);
  if (mem == MAP_FAILED) throw std::runtime_error(errno_text("group.create: mmap"));
  Control* c = g->control = static_cast<Control*>(mem);
  c->version = kVersion;
  c->workers = workers;
  c->cap = cap;
  c->base = kPacketBase;
  c->bytes = bytes;
  c->list_bytes = list_bytes;
  c->group_list_offset = header;
  c->worker_list_offset = header + list_bytes;
  c->marks_bytes = marks_bytes;
  c->buckets = buckets;
  c->marks_offset = header + (uint64_t(workers) + 1) * list_bytes;
  c->hugetlb = hugetlb;
  c->creator = getpid();
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&c->lock, &attr);
  pthread_mutexattr_destroy(&attr);
  for (int32_t i = 0; i < workers; ++i) g->worker_list(i)->max_packets = cap;
  // The first stock, in the group list (address order from the top), each slot with a fresh
  // header (packet.h), written through a mapping of our own (the group's address is the workers').
  const int64_t stock = std::min<int64_t>({cap, int64_t{kStockPerWorker} * workers, kMaxStock});
  if (!hugetlb) prepare(g->packets(), bytes, 0, stock);
  for (int64_t i = stock - 1; i >= 0; --i) {
    freelist_fresh_entry(g->packets() + i * PACKET_SLOT_SIZE);
    g->group_list()[c->nfree++] = freelist_entry(g->slot(i));
  }
  c->carved = stock;
  barrier();
  c->magic = kMagic;
  const std::string proc = "/proc/" + std::to_string(getpid()) + "/fd/";
  for (auto [path, fd] : {std::pair{control_path(dir), g->control_fd.get()},
                          std::pair{packets_path(dir), g->packets_fd.get()}}) {
    if (symlink((proc + std::to_string(fd)).c_str(), path.c_str()) != 0) {
      throw std::runtime_error(errno_text(path));
    }
  }
  groups().emplace(dir, std::move(g));
}

// A worker's packet pool's source: its group.
class GroupSource : public PacketSource {
 public:
  GroupSource(Group* g, int32_t index) : g_(g), c_(g->control), index_(index) {}

  // From the group list first, then newly carved slots. Ordered so that a process killed at any
  // point leaves each packet where reclaim finds it once: entries are copied above the worker's
  // count and marked before the group's count drops (until then they are the group's, and
  // reclaim leaves them), new slots are marked before they count as carved, and the worker's
  // count grows last.
  int32_t take(packet_freelist* fl, int32_t n) override {
    int64_t k = 0, first = 0, carve = 0;
    {
      Locked locked(&c_->lock);
      const int64_t gn = c_->nfree;
      k = std::min<int64_t>(n, gn);
      packet** gl = g_->group_list();
      group_marks* marks = g_->marks(index_);
      const uint64_t now = std::max(marks->clock, c_->clock) + 1;
      marks->clock = c_->clock = now;
      packet** taken = fl->list + fl->nfree;
      std::copy(gl + gn - k, gl + gn, taken);
      g_->mark(marks, taken, k, now);
      barrier();
      c_->nfree = gn - k;
      if (k < n && c_->carved < c_->cap) {
        first = c_->carved;
        carve = std::min<int64_t>(n - k, c_->cap - first);
        for (int64_t s = first; s < first + carve; ++s) {
          marks->mark[g_->bucket(g_->slot(s) + PACKET_HEADROOM)] = now;
        }
        barrier();
        c_->carved = first + carve;
      }
    }
    // No prefetch of the packets taken: free no longer reads them (packet.h), so a packet comes
    // back in the cache of the worker that last wrote it, most often this one. Prefetching them
    // here (1,024 at once: their first one or two lines, for writing, reading, or into L2 only)
    // made Source -> interlink -> sink slower: 58-77 Mpps against 80-92 without, alternating
    // runs of tools/bench-interlink (medians of 3 rounds of 2 s) on the shared machine. It helped
    // only where the receiving worker reads every packet (a sink reading a byte of each: 34-35
    // Mpps with, 30 without).
    barrier();
    fl->nfree += k;
    if (carve > 0) {
      if (!c_->hugetlb) prepare(reinterpret_cast<uint8_t*>(c_->base), c_->bytes, first, carve);
      // In reverse, so that the packets leave the stack in address order.
      for (int64_t i = first + carve - 1; i >= first; --i) freelist_push_slot(fl, g_->slot(i));
    }
    return static_cast<int32_t>(k + carve);
  }

  // The group's packets among fl's top n (others, DPDK's mbufs, stay in fl, moved down); how
  // many. The worker's count drops before the group's grows (a kill in between leaves them
  // marked: reclaim finds them). Their marks stay: the next take's are newer (the group's clock
  // catches up with the worker's here).
  int32_t give(packet_freelist* fl, int32_t n, bool adopted) override {
    packet** top = fl->list + fl->nfree - n;
    // Whether all are the group's is asked before the lock is taken: only this worker writes its
    // list, and carved slots stay carved (whichever count of them owns reads). Then the lock is
    // held for one copy, where it was held for the test of each of the 2,048 while the worker
    // taking from the group waited: examples/pipeline.lua in two workers, alternating pairs,
    // 117.8 -> 118.6, 115.8 -> 127.4, 117.2 -> 127.0 Mpps. A pool that adopted none holds only
    // the group's: that test was 10% of the giving worker's time (perf).
    const bool all =
        !adopted || std::all_of(top, top + n, [this](packet* p) { return g_->owns(p); });
    Locked locked(&c_->lock);
    c_->clock = std::max(c_->clock, g_->marks(index_)->clock);
    int64_t gn = c_->nfree;
    packet** gl = g_->group_list();
    int32_t kept = 0;
    if (all) {
      std::copy(top, top + n, gl + gn);
      gn += n;
    } else {
      for (int32_t k = 0; k < n; ++k) {
        if (g_->owns(top[k])) {
          gl[gn++] = top[k];
        } else {
          top[kept++] = top[k];
        }
      }
    }
    barrier();
    fl->nfree -= n - kept;
    barrier();
    c_->nfree = gn;
    return n - kept;
  }

  int32_t cap() const override { return static_cast<int32_t>(c_->cap); }

  std::string describe() const override {
    return "the group in " + g_->dir + " (" + std::to_string(c_->cap) + " packets, " +
           std::to_string(uint64_t{PACKET_SLOT_SIZE} * c_->cap >> 20) + " MiB)";
  }

 private:
  Group* g_;
  Control* c_;
  int32_t index_;
};

std::unique_ptr<GroupSource>& attached() {
  static std::unique_ptr<GroupSource> source;
  return source;
}
std::string& attached_dir() {
  static std::string dir;
  return dir;
}

// The marks of the worker this process is (attach), for snabb_group_marks and snabb_group_mark.
struct Marks {
  group_marks* marks = nullptr;
  uint64_t base = 0;
  uint64_t buckets = 0;
};
Marks& own_marks() {
  static Marks m;
  return m;
}

bool alive(int32_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

void attach(const std::string& dir, int32_t index) {
  if (attached()) {
    throw std::runtime_error("group.attach: this process is in the group in " + attached_dir() +
                             " already");
  }
  Group& g = open_group(dir);
  Control* c = g.control;
  if (index < 0 || index >= c->workers) {
    throw std::invalid_argument("group.attach: the group in " + dir + " has worker slots 0 to " +
                                std::to_string(c->workers - 1) + ", not " + std::to_string(index));
  }
  if (c->pid[index] != 0 && c->pid[index] != getpid() && alive(c->pid[index])) {
    throw std::runtime_error("group.attach: worker slot " + std::to_string(index) + " of " + dir +
                             " is taken by process " + std::to_string(c->pid[index]));
  }
  // What a worker that ended in this slot left goes back to the group first (reclaim: only its
  // caller knows what is in flight); until then the slot's marks are not this process's.
  if (g.holds(index)) {
    throw std::runtime_error("group.attach: worker slot " + std::to_string(index) + " of " + dir +
                             " holds the packets of process " + std::to_string(c->pid[index]) +
                             ", which has ended (give them back first: group.reclaim)");
  }
  packet_freelist* fl = snabb_packet_freelist();
  if (fl == nullptr) throw std::runtime_error(snabb_error());
  if (snabb_packet_allocated() > 0 || fl->nfree > 0) {
    throw std::logic_error("group.attach: this process has allocated packets already (a worker " +
                           std::string("attaches before it allocates any)"));
  }
  const std::string path = packets_path(dir);
  Fd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) throw std::runtime_error(errno_text(path));
  void* at = reinterpret_cast<void*>(c->base);
  void* mem = map_shared(fd.get(), c->bytes, 0, at, MAP_FIXED_NOREPLACE);
  if (mem != at) {
    if (mem != MAP_FAILED) munmap(mem, c->bytes);
    throw std::runtime_error(errno_text("group.attach: the packet memory's address " +
                                        std::to_string(c->base) + " in this process"));
  }
  // Huge pages another process made are mapped here with 4 KiB entries (a fault goes by
  // shmem_enabled) unless collapsed here too, which maps each whole: a worker that allocated 6,000
  // packets of create's stock had ShmemPmdMapped 0 of 24 MB without, all 88 MB with.
  {
    Locked locked(&c->lock);
    if (!c->hugetlb) prepare(static_cast<uint8_t*>(at), c->bytes, 0, c->carved, false);
  }
  // The worker's free list over the pool's own, at the same address (packet.h).
  if (map_shared(g.control_fd.get(), c->list_bytes, g.worker_offset(index), fl, MAP_FIXED) != fl) {
    munmap(at, c->bytes);
    throw std::runtime_error(errno_text("group.attach: the worker's free list"));
  }
  c->pid[index] = getpid();
  own_marks() = {g.marks(index), c->base, c->buckets};
  attached() = std::make_unique<GroupSource>(&g, index);
  attached_dir() = dir;
  packet_pool_join(attached().get());
}

// A dead worker's link, its stats file mapped (runtime/stats.h), for reclaim.
class DeadLink {
 public:
  explicit DeadLink(const std::string& path) : what_("link " + path) {
    Fd fd(open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) throw std::runtime_error(errno_text(what_));
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) throw std::runtime_error(errno_text(what_));
    if (uint64_t(st.st_size) < sizeof(stats_link_file)) {
      throw std::runtime_error(what_ + ": not a link's stats file (runtime/stats.h)");
    }
    void* mem =
        mmap(nullptr, sizeof(stats_link_file), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (mem == MAP_FAILED) throw std::runtime_error(errno_text(what_));
    file_.reset(static_cast<stats_link_file*>(mem));
    if (file_->header.magic != STATS_MAGIC || file_->header.kind != STATS_LINK ||
        file_->header.offset != offsetof(stats_link_file, link)) {
      throw std::runtime_error(what_ + ": not a link's stats file (runtime/stats.h)");
    }
    if (alive(int32_t(file_->header.pid))) {
      throw std::runtime_error(what_ + ": its process " + std::to_string(file_->header.pid) +
                               " is still running");
    }
    const uint32_t n = uint32_t(file_->link.write) - uint32_t(file_->link.read);
    if (n > LINK_RING_SIZE) {
      throw std::runtime_error(what_ + ": its cursors are " + std::to_string(n) +
                               " apart, more than a ring");
    }
  }
  Link* link() const { return &file_->link; }

 private:
  static void unmap(stats_link_file* f) { munmap(f, sizeof(stats_link_file)); }
  std::string what_;
  std::unique_ptr<stats_link_file, decltype(&unmap)> file_{nullptr, &unmap};
};

group_reclaimed reclaim(const std::string& dir, int32_t index, const char* links,
                        const uint64_t* in_flight, int64_t n_in_flight) {
  Group& g = open_group(dir);
  if (index < 0 || index >= g.control->workers) {
    throw std::invalid_argument("group.reclaim: the group in " + dir + " has worker slots 0 to " +
                                std::to_string(g.control->workers - 1) + ", not " +
                                std::to_string(index));
  }
  const int32_t pid = g.control->pid[index];
  if (pid != 0 && alive(pid)) {
    throw std::runtime_error("group.reclaim: worker " + std::to_string(index) + " (process " +
                             std::to_string(pid) + ") is still running");
  }
  if (n_in_flight < 0 || (n_in_flight > 0 && in_flight == nullptr)) {
    throw std::invalid_argument("group.reclaim: " + std::to_string(n_in_flight) +
                                " entries in flight, and no array of them");
  }
  std::vector<std::unique_ptr<DeadLink>> dead;
  std::vector<Link*> rings;
  if (links != nullptr) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(links, error)) {
      try {
        dead.push_back(std::make_unique<DeadLink>(entry.path().string()));
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(std::string("group.reclaim: ") + e.what());
      }
      rings.push_back(dead.back()->link());
    }
    // (A worker that died before its engine made links has no directory of them.)
    if (error && error != std::errc::no_such_file_or_directory) {
      throw std::runtime_error("group.reclaim: " + std::string(links) + ": " + error.message());
    }
  }
  return g.reclaim(index, rings, in_flight, n_in_flight);
}

}  // namespace
}  // namespace snabb::runtime

extern "C" {
using snabb::runtime::c_call;

int snabb_group_create(const char* dir, int32_t workers, int32_t packets) {
  return c_call(-1, [&] {
    snabb::runtime::create(dir, workers, packets);
    return 0;
  });
}

int snabb_group_attach(const char* dir, int32_t index) {
  return c_call(-1, [&] {
    snabb::runtime::attach(dir, index);
    return 0;
  });
}

int64_t snabb_group_reclaim(const char* dir, int32_t index, const char* links,
                            const uint64_t* in_flight, int64_t n_in_flight, group_reclaimed* out) {
  return c_call<int64_t>(-1, [&] {
    const group_reclaimed r = snabb::runtime::reclaim(dir, index, links, in_flight, n_in_flight);
    if (out) *out = r;
    return r.free + r.links + r.held;
  });
}

int snabb_group_stats(const char* dir, group_stats* s) {
  return c_call(-1, [&] {
    const auto& g = snabb::runtime::open_group(dir);
    const auto* c = g.control;
    *s = {};
    s->packets = c->carved;
    s->free = c->nfree;
    s->cap = c->cap;
    s->workers = c->workers;
    s->hugetlb = c->hugetlb;
    enum : uint8_t { kGroup = 1, kWorker };
    std::vector<uint8_t> seen(c->carved);
    // Whether each entry is one of the group's packets (not an adopted mbuf), and where it was.
    auto see = [&](packet* e, uint8_t where) {
      const int64_t k = g.slot_of(e);
      if (k < 0) return false;
      if (seen[k]) ++s->twice;
      seen[k] = where;
      return true;
    };
    for (int64_t k = 0; k < c->nfree; ++k) see(g.group_list()[k], kGroup);
    for (int32_t i = 0; i < c->workers; ++i) {
      const packet_freelist* fl = g.worker_list(i);
      for (int64_t k = 0; k < fl->nfree; ++k) s->worker_free[i] += see(fl->list[k], kWorker);
      s->worker_pid[i] = c->pid[i];
    }
    for (int64_t k = 0; k < c->carved; ++k) {
      if (const int32_t i = g.holder(k); i >= 0 && seen[k] != kGroup) ++s->worker_held[i];
    }
    return 0;
  });
}

group_marks* snabb_group_marks(uint64_t* base, uint64_t* buckets) {
  const auto& own = snabb::runtime::own_marks();
  *base = own.base;
  *buckets = own.buckets;
  return own.marks;
}

// (apps/interlink/receiver.lua does the same in its loop, compiled into it.)
void snabb_group_mark(packet* const* ring, uint32_t mask, uint32_t from, uint32_t n,
                      uint64_t sent) {
  const auto& own = snabb::runtime::own_marks();
  if (own.marks == nullptr) return;
  const uint64_t now = std::max(own.marks->clock, sent) + 1;
  own.marks->clock = now;
  for (uint32_t k = 0; k < n; ++k) {
    const uint64_t b = ((reinterpret_cast<uintptr_t>(ring[(from + k) & mask]) &
                         (snabb::runtime::kPacketAddressLimit - 1)) -
                        own.base) >>
                       GROUP_MARK_SHIFT;
    if (b < own.buckets) own.marks->mark[b] = now;
  }
}

const char* snabb_group_dir(void) {
  const std::string& dir = snabb::runtime::attached_dir();
  return dir.empty() ? nullptr : dir.c_str();
}
}
