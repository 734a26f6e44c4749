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
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "runtime/packet.h"
#include "runtime/stats.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

namespace snabb::runtime {
namespace {

constexpr uint64_t kMagic = 0x50524753'42414e53;  // "SNABSGRP" in the file
constexpr uint32_t kVersion = 1;
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
  int32_t hugetlb;
  int32_t creator;
  alignas(64) pthread_mutex_t lock;
  int64_t carved;  // packets [0, carved) of the packet memory are in some list or in use
  int64_t nfree;   // in the group list
  alignas(64) int32_t pid[GROUP_MAX_WORKERS];
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
// (the moves under the mutex leave the lists consistent at every step; see take and give).
class Locked {
 public:
  explicit Locked(pthread_mutex_t* m) : m_(m) {
    const int rc = pthread_mutex_lock(m);
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
  // creator: create's stock, reclaim_link), mapped here on first use.
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
  // Whether free-list entry e is a slot of the group's (carved so far). A worker's list may also
  // hold slots of memory that is not the group's: DPDK's mbufs (drivers/dpdk, adopted by its pool),
  // which the group's list must never get (another worker may not have them mapped, and a
  // restarted DPDK group makes new ones where the old ones were). An entry is the packet as it
  // was freed (packet.h): its header anywhere in the first 2 * PACKET_HEADROOM of its slot.
  bool owns(packet* e) const {
    const uintptr_t p = reinterpret_cast<uintptr_t>(e), base = control->base;
    return p >= base && p < base + uint64_t(control->carved) * PACKET_SLOT_SIZE &&
           (p - base) % PACKET_SLOT_SIZE <= 2 * PACKET_HEADROOM;
  }
  // Moves the group's packets in worker i's free list to the group's (under the mutex), empties
  // the list (what else it held was the dead worker's: DPDK's mbufs); how many it moved.
  int64_t reclaim(int32_t i) {
    Locked locked(&control->lock);
    packet_freelist* fl = worker_list(i);
    const int64_t n = fl->nfree;
    int64_t gn = control->nfree;
    packet** gl = group_list();
    for (int64_t k = 0; k < n; ++k) {
      if (owns(fl->list[k])) gl[gn++] = fl->list[k];
    }
    barrier();
    fl->nfree = 0;
    barrier();
    const int64_t moved = gn - control->nfree;
    control->nfree = gn;
    control->pid[i] = 0;
    return moved;
  }
  // Moves the packets in ring l (between its cursors) to the group's list and empties it; how
  // many. An entry is taken for its slot when it points into a slot carved so far, at most 2 *
  // PACKET_HEADROOM in (where prepend and shiftleft may leave a header); others are left out. The
  // slot goes back with a fresh header (the dead worker's header is not trusted to say where its
  // slot starts).
  int64_t reclaim_link(Link* l) {
    const uint32_t n = uint32_t(l->write) - uint32_t(l->read);
    if (n > LINK_RING_SIZE) {
      throw std::runtime_error("its cursors are " + std::to_string(n) + " apart, more than a ring");
    }
    Locked locked(&control->lock);
    const uintptr_t base = control->base;
    const uintptr_t end = base + uint64_t(control->carved) * PACKET_SLOT_SIZE;
    int64_t gn = control->nfree;
    for (uint32_t k = 0; k < n; ++k) {
      const uintptr_t p =
          reinterpret_cast<uintptr_t>(l->ring[(uint32_t(l->read) + k) & LINK_RING_MASK]) &
          (kPacketAddressLimit - 1);
      const uintptr_t into = (p - base) % PACKET_SLOT_SIZE;
      if (p < base || p >= end || into > 2 * PACKET_HEADROOM) continue;
      freelist_fresh_entry(packets() + (p - into - base));
      group_list()[gn++] = freelist_entry(reinterpret_cast<uint8_t*>(p - into));
    }
    barrier();
    const int64_t taken = gn - control->nfree;
    control->nfree = gn;
    barrier();
    l->read = l->write;
    return taken;
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
  const uint64_t header = round_up(sizeof(Control), kPage);
  g->control_size = header + (uint64_t(workers) + 1) * list_bytes;
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
  // point loses at most this batch: entries are copied above the worker's count before the group's
  // count drops, and the worker's count grows last.
  int32_t take(packet_freelist* fl, int32_t n) override {
    int64_t k = 0, first = 0, carve = 0;
    {
      Locked locked(&c_->lock);
      const int64_t gn = c_->nfree;
      k = std::min<int64_t>(n, gn);
      packet** gl = g_->group_list();
      std::copy(gl + gn - k, gl + gn, fl->list + fl->nfree);
      barrier();
      c_->nfree = gn - k;
      if (k < n && c_->carved < c_->cap) {
        first = c_->carved;
        carve = std::min<int64_t>(n - k, c_->cap - first);
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
  // many. The worker's count drops before the group's grows (a kill in between loses the batch).
  int32_t give(packet_freelist* fl, int32_t n) override {
    Locked locked(&c_->lock);
    int64_t gn = c_->nfree;
    packet** gl = g_->group_list();
    packet** top = fl->list + fl->nfree - n;
    int32_t kept = 0;
    for (int32_t k = 0; k < n; ++k) {
      if (g_->owns(top[k])) {
        gl[gn++] = top[k];
      } else {
        top[kept++] = top[k];
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
  // What a worker that died in this slot left, when nobody reclaimed it.
  if (fl->nfree > 0) g.reclaim(index);
  c->pid[index] = getpid();
  attached() = std::make_unique<GroupSource>(&g, index);
  attached_dir() = dir;
  packet_pool_join(attached().get());
}

int64_t reclaim(const std::string& dir, int32_t index) {
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
  return g.reclaim(index);
}

int64_t reclaim_link(const std::string& dir, const std::string& path) {
  Group& g = open_group(dir);
  const std::string what = "group.reclaim_link: " + path;
  Fd fd(open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) throw std::runtime_error(errno_text(what));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) throw std::runtime_error(errno_text(what));
  if (uint64_t(st.st_size) < sizeof(stats_link_file)) {
    throw std::runtime_error(what + ": not a link's stats file (runtime/stats.h)");
  }
  void* mem =
      mmap(nullptr, sizeof(stats_link_file), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (mem == MAP_FAILED) throw std::runtime_error(errno_text(what));
  std::unique_ptr<void, void (*)(void*)> unmap(mem,
                                               [](void* m) { munmap(m, sizeof(stats_link_file)); });
  auto* f = static_cast<stats_link_file*>(mem);
  if (f->header.magic != STATS_MAGIC || f->header.kind != STATS_LINK ||
      f->header.offset != offsetof(stats_link_file, link)) {
    throw std::runtime_error(what + ": not a link's stats file (runtime/stats.h)");
  }
  if (alive(int32_t(f->header.pid))) {
    throw std::runtime_error(what + ": its process " + std::to_string(f->header.pid) +
                             " is still running");
  }
  try {
    return g.reclaim_link(&f->link);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(what + ": " + e.what());
  }
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

int64_t snabb_group_reclaim(const char* dir, int32_t index) {
  return c_call<int64_t>(-1, [&] { return snabb::runtime::reclaim(dir, index); });
}

int64_t snabb_group_reclaim_link(const char* dir, const char* path) {
  return c_call<int64_t>(-1, [&] { return snabb::runtime::reclaim_link(dir, path); });
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
    for (int32_t i = 0; i < c->workers; ++i) {
      const packet_freelist* fl = g.worker_list(i);
      s->worker_free[i] =
          std::count_if(fl->list, fl->list + fl->nfree, [&](packet* e) { return g.owns(e); });
      s->worker_pid[i] = c->pid[i];
    }
    return 0;
  });
}

const char* snabb_group_dir(void) {
  const std::string& dir = snabb::runtime::attached_dir();
  return dir.empty() ? nullptr : dir.c_str();
}
}
