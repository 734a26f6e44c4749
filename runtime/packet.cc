#include "runtime/packet.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/clib.h"
#include "runtime/error.h"

namespace snabb::runtime {
namespace {

static_assert(PACKET_SLOT_SIZE % 64 == 0);
// The header moves at most PACKET_HEADROOM forward, and the payload never reaches the timestamp
// or the wire length before it, nor the latency stamp before them.
static_assert(PACKET_LATENCY_OFFSET >= 2 * PACKET_HEADROOM + sizeof(packet));
static_assert(PACKET_LATENCY_OFFSET + 16 <= PACKET_WIRE_LENGTH_OFFSET);
// The flags are above every headroom the header can have.
static_assert(2 * PACKET_HEADROOM <= PACKET_HEADROOM_MASK);
static_assert(offsetof(packet, data) == 4);

constexpr size_t kHugePage = 2 << 20;
constexpr size_t kChunkBytes = 16 * kHugePage;  // about 3100 packets per mapping
constexpr int32_t kGrowStep = 256;              // packets a grow adds (2.7 MiB of a chunk)
constexpr int32_t kDefaultMaxPackets = 1'000'000;
constexpr int32_t kMaxMaxPackets = 1 << 24;  // 180 GB of packets
constexpr uint64_t kMiB = 1 << 20;

// The default capacity follows the memory the process may use, so that an app that leaks packets
// meets a message naming the cap rather than the OOM killer (which says nothing): half the smaller
// of the memory available (/proc/meminfo's MemAvailable, plus free provisioned hugepages) and the
// memory limit of the process's cgroup or of any cgroup above it (v2 memory.max, v1
// memory.limit_in_bytes), and at most kDefaultMaxPackets. The other half is for everything else
// (snabb itself takes about 10 MiB; DPDK's mbufs are not pool memory, see adopt).
struct Capacity {
  int32_t packets;
  std::string reason;  // where it comes from, for the exhaustion message
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, separator);) parts.push_back(part);
  return parts;
}

// The number on /proc/meminfo's line "name:   N" (in bytes for "N kB"); 0 when there is none.
uint64_t meminfo_value(const std::string& meminfo, const std::string& name) {
  for (const std::string& line : split(meminfo, '\n')) {
    if (line.rfind(name + ":", 0) != 0) continue;
    char* end = nullptr;
    const uint64_t value = std::strtoull(line.c_str() + name.size() + 1, &end, 10);
    return std::string(end).find("kB") != std::string::npos ? value * 1024 : value;
  }
  return 0;
}

// Lowers *bytes to the smallest value in `file_name` of directory dir and its parents up to mount
// ("max", or v1's 2^63 rounded to a page, means none); *file says where it is.
void cgroup_limit(const std::string& mount, std::string dir, const std::string& file_name,
                  uint64_t* bytes, std::string* file) {
  for (;;) {
    const std::string path = dir + "/" + file_name;
    const std::string text = read_text(path);
    if (!text.empty() && text.rfind("max", 0) != 0) {
      const uint64_t limit = std::strtoull(text.c_str(), nullptr, 10);
      if (limit > 0 && limit < (uint64_t{1} << 62) && (*bytes == 0 || limit < *bytes)) {
        *bytes = limit;
        *file = path;
      }
    }
    if (dir.size() <= mount.size()) return;
    dir.resize(dir.rfind('/'));
  }
}

}  // namespace

uint64_t cgroup_memory_limit(const std::string& proc_cgroup, const std::string& mountinfo,
                             std::string* file) {
  std::string v2_path, v1_path;  // from /proc/self/cgroup: "ID:controllers:path"
  for (const std::string& line : split(proc_cgroup, '\n')) {
    const size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (controllers.empty()) v2_path = path;
    for (const std::string& c : split(controllers, ',')) {
      if (c == "memory") v1_path = path;
    }
  }
  uint64_t bytes = 0;
  // /proc/self/mountinfo: "ID PARENT DEV ROOT MOUNTPOINT OPTIONS [TAGS] - TYPE SOURCE
  // SUPEROPTIONS".
  for (const std::string& line : split(mountinfo, '\n')) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const std::vector<std::string> mount = split(line.substr(0, dash), ' ');
    const std::vector<std::string> fs = split(line.substr(dash + 3), ' ');
    if (mount.size() < 5 || fs.size() < 3) continue;
    const std::string &root = mount[3], &point = mount[4];
    auto dir_of = [&](const std::string& path) {
      const std::string relative =
          root != "/" && path.rfind(root, 0) == 0 ? path.substr(root.size()) : path;
      return relative == "/" ? point : point + relative;
    };
    if (fs[0] == "cgroup2" && !v2_path.empty()) {
      cgroup_limit(point, dir_of(v2_path), "memory.max", &bytes, file);
    }
    if (fs[0] == "cgroup" && !v1_path.empty()) {
      for (const std::string& option : split(fs[2], ',')) {
        if (option == "memory") {
          cgroup_limit(point, dir_of(v1_path), "memory.limit_in_bytes", &bytes, file);
        }
      }
    }
  }
  return bytes;
}

namespace {

Capacity default_capacity() {
  const std::string meminfo = read_text("/proc/meminfo");
  const uint64_t available =
      meminfo_value(meminfo, "MemAvailable") +
      meminfo_value(meminfo, "HugePages_Free") * meminfo_value(meminfo, "Hugepagesize");
  uint64_t budget = UINT64_MAX;
  std::string what;
  if (available > 0) {
    budget = available;
    what = "the memory available when it started (" + std::to_string(available / kMiB) +
           " MiB: MemAvailable and free hugepages in /proc/meminfo)";
  }
  std::string file;
  const uint64_t cgroup =
      cgroup_memory_limit(read_text("/proc/self/cgroup"), read_text("/proc/self/mountinfo"), &file);
  if (cgroup > 0 && cgroup < budget) {
    budget = cgroup;
    what = "the memory limit of its cgroup (" + std::to_string(budget / kMiB) + " MiB in " + file +
           ")";
  }
  const uint64_t packets = budget == UINT64_MAX ? UINT64_MAX : budget / 2 / PACKET_SLOT_SIZE;
  const std::string change = "; packet.set_max_packets(N) in the config sets another";
  if (packets >= kDefaultMaxPackets) {
    return {kDefaultMaxPackets, "the cap is the default maximum" + change};
  }
  return {static_cast<int32_t>(std::max<uint64_t>(packets, 1)), "the cap is half " + what + change};
}

// One mapping of packet slots; unmapped when the pool goes away.
class Chunk {
  static void* map_aligned() {
    const size_t span = kChunkBytes + kHugePage;
    void* mem = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::runtime_error("packet pool: out of memory (mmap failed)");
    const auto start = reinterpret_cast<uintptr_t>(mem);
    const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
    if (aligned > start) munmap(mem, aligned - start);
    munmap(reinterpret_cast<void*>(aligned + kChunkBytes), start + span - aligned - kChunkBytes);
    madvise(reinterpret_cast<void*>(aligned), kChunkBytes, MADV_HUGEPAGE);
    return reinterpret_cast<void*>(aligned);
  }

 public:
  Chunk() {
    // Provisioned hugepages first; otherwise ordinary memory aligned to 2 MiB and advised for
    // transparent hugepages. Unaligned, THP covers a chunk only in part, and a breath that frees
    // packets 10 KiB apart then misses the TLB on most of them (basic1 ran at half speed).
    void* mem = mmap(nullptr, kChunkBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (mem == MAP_FAILED) mem = map_aligned();
    base_ = static_cast<uint8_t*>(mem);
    if (reinterpret_cast<uintptr_t>(base_) + kChunkBytes > kPacketAddressLimit) {
      munmap(std::exchange(base_, nullptr), kChunkBytes);
      throw std::runtime_error(
          "packet pool: memory mapped above 2^48, where link entries cannot "
          "address it");
    }
  }
  Chunk(Chunk&& other) noexcept : base_(std::exchange(other.base_, nullptr)) {}
  Chunk(const Chunk&) = delete;
  ~Chunk() {
    if (base_) munmap(base_, kChunkBytes);
  }
  uint8_t* slot(size_t i) const { return base_ + i * PACKET_SLOT_SIZE; }
  static constexpr size_t kSlots = kChunkBytes / PACKET_SLOT_SIZE;

 private:
  uint8_t* base_;
};

class PacketPool {
 public:
  packet_freelist* freelist() { return freelist_; }

  // Adds packets to the free list (in a group: a batch from the group); 0 at the cap.
  int32_t grow() {
    if (source_ != nullptr) {
      const int32_t taken = source_->take(freelist_, kGroupBatch);
      if (taken == 0) exhaustions_++;
      owned_ += taken;
      return taken;
    }
    if (cap_.packets == owned_) {
      exhaustions_++;
      return 0;
    }
    if (chunks_.empty() || carved_ == static_cast<int32_t>(Chunk::kSlots)) {
      chunks_.emplace_back();
      carved_ = 0;
    }
    // A step of the chunk at a time, in reverse so packets leave the stack in address order. Each
    // slot gets a fresh header (packet.h: it tells allocation where the slot starts), which faults
    // its page in: a step is about as many pages as its packets' first allocations would fault
    // anyway, not the whole chunk's 32 MiB at once (a stall long enough for a NIC ring to
    // overflow).
    const int32_t n = std::min<int32_t>(
        {kGrowStep, static_cast<int32_t>(Chunk::kSlots) - carved_, cap_.packets - owned_});
    for (int32_t i = carved_ + n - 1; i >= carved_; --i) {
      freelist_push_slot(freelist_, chunks_.back().slot(i));
    }
    carved_ += n;
    owned_ += n;
    return n;
  }

  void set_max(int32_t max_packets) {
    if (max_packets < 1 || max_packets > kMaxMaxPackets) {
      throw std::invalid_argument(std::to_string(max_packets) + " is not a capacity from 1 to " +
                                  std::to_string(kMaxMaxPackets));
    }
    if (allocated() > 0) {
      throw std::logic_error("packets are already allocated");
    }
    if (source_ != nullptr) throw std::logic_error("the pool's cap is its group's");
    cap_ = {max_packets, "the cap was set by packet.set_max_packets"};
    freelist_->max_packets = max_packets;
  }

  // Adopted slots are memory someone else has (DPDK's mbufs, set by its own options): they do not
  // count against the cap, only against the free list's room. max_packets, the most packets the
  // free list can hold (Lua's free checks it), counts both.
  void adopt(uint8_t* slot) {
    if (freelist_->max_packets >= kMaxMaxPackets) {
      throw std::runtime_error("packet pool: no room for more packets (" +
                               std::to_string(kMaxMaxPackets) + " in all)");
    }
    adopted_++;
    freelist_->max_packets++;
    freelist_push_slot(freelist_, slot);
  }

  // The pool takes its packets from source from now on (see PacketSource in packet.h).
  void join(PacketSource* source) {
    if (allocated() > 0 || freelist_->nfree > 0) {
      throw std::logic_error(
          "packets are already allocated from the process's own pool (a worker joins its group "
          "before it allocates any)");
    }
    source_ = source;
    group_freelist = freelist_;
  }

  // Down to the low water, of the group's packets only: adopted ones (DPDK's mbufs) stay. The
  // list holds at most adopted_ of them, so a DPDK worker's (mostly mbufs) is looked at only when
  // it holds more of the group's than the low water.
  void give_back() {
    const int64_t n = freelist_->nfree - adopted_ - kGroupLowWater;
    if (n > 0) {
      owned_ -= source_->give(freelist_, static_cast<int32_t>(n), adopted_ > 0);
    }
  }

  // In a group: the packets taken from the group less those given back.
  int32_t allocated() const { return owned_ + adopted_; }
  int64_t exhaustions() const { return exhaustions_; }
  int32_t cap() const { return source_ != nullptr ? source_->cap() : cap_.packets; }

  // Why allocation failed at the cap: the numbers, the likely cause, where the cap comes from.
  std::string exhaustion_message() const {
    if (source_ != nullptr) {
      return "packet pool exhausted: all packets of " + source_->describe() +
             " are in use, so an app is probably leaking packets (keeping them without freeing "
             "them)";
    }
    return "packet pool exhausted: all " + std::to_string(cap_.packets) + " packets (" +
           std::to_string(uint64_t{PACKET_SLOT_SIZE} * cap_.packets / kMiB) +
           " MiB) are in use, so an app is probably leaking packets (keeping them without freeing "
           "them); " +
           cap_.reason;
  }

 private:
  Capacity cap_ = default_capacity();
  int32_t owned_ = 0;    // packets in the pool's own chunks
  int32_t adopted_ = 0;  // see adopt
  int64_t exhaustions_ = 0;
  PacketSource* source_ = nullptr;  // the group's, once joined
  packet_freelist* freelist_ = map_freelist(cap_.packets);
  std::vector<Chunk> chunks_;
  int32_t carved_ = 0;  // slots of the last chunk handed out

  // Room for the largest capacity, reserved once so the list never moves (Lua keeps its address);
  // pages are touched only as far as the list is used. Lives as long as the process.
  static packet_freelist* map_freelist(int32_t max_packets) {
    const size_t bytes = sizeof(packet_freelist) + kMaxMaxPackets * sizeof(packet*);
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) throw std::runtime_error("packet pool: no memory for the free list");
    auto* fl = static_cast<packet_freelist*>(mem);
    fl->max_packets = max_packets;
    return fl;
  }
};

PacketPool& pool() {
  static PacketPool instance;
  return instance;
}

}  // namespace

void set_packet_pool_max(int32_t max_packets) { pool().set_max(max_packets); }

packet* packet_allocate() {
  packet_freelist* fl = pool().freelist();
  if (fl->nfree == 0 && pool().grow() == 0) throw std::runtime_error(pool().exhaustion_message());
  packet* p = freelist_pop(fl);
  p->length = 0;  // the canonical place may hold any header (see packet.h)
  p->headroom = PACKET_HEADROOM;
  return p;
}

void packet_pool_adopt(uint8_t* slot) { pool().adopt(slot); }

packet_freelist* group_freelist = nullptr;
void packet_pool_join(PacketSource* source) { pool().join(source); }
void packet_pool_give_back() { pool().give_back(); }

void packet_free(packet* p) {
  packet_freelist* fl = pool().freelist();
  if (fl->nfree >= fl->max_packets)
    throw std::logic_error("more packets freed than allocated (freed twice?)");
  freelist_push(fl, p);
}

}  // namespace snabb::runtime

extern "C" {
using snabb::runtime::c_call;
using snabb::runtime::pool;
packet_freelist* snabb_packet_freelist(void) {
  return c_call<packet_freelist*>(nullptr, [] { return pool().freelist(); });
}
int32_t snabb_packet_grow(void) {
  return c_call(-1, [] {
    const int32_t added = pool().grow();
    if (added == 0) snabb::runtime::set_error(pool().exhaustion_message());
    return added;
  });
}
int32_t snabb_packet_allocated(void) { return pool().allocated(); }
int64_t snabb_packet_exhaustions(void) { return pool().exhaustions(); }
const char* snabb_packet_exhaustion(void) {
  static std::string message;
  message = pool().exhaustion_message();
  return message.c_str();
}
int32_t snabb_packet_cap(void) { return pool().cap(); }
int snabb_packet_set_max(int32_t max_packets) {
  return c_call(-1, [&] {
    snabb::runtime::set_packet_pool_max(max_packets);
    return 0;
  });
}
}
