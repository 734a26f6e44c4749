#include "runtime/packet.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/link.h"

namespace snabb::runtime {
namespace {

static_assert(PACKET_SLOT_SIZE % 64 == 0);
// The header moves at most PACKET_HEADROOM forward, and the payload never reaches the timestamp.
static_assert(PACKET_TIMESTAMP_OFFSET >= 2 * PACKET_HEADROOM + sizeof(packet));
static_assert(offsetof(packet, data) == 4);

constexpr size_t kHugePage = 2 << 20;
constexpr size_t kChunkBytes = 16 * kHugePage;  // about 3100 packets per growth step
constexpr int32_t kDefaultMaxPackets = 1'000'000;
constexpr int32_t kMaxMaxPackets = 1 << 24;  // 180 GB of packets

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
  explicit Chunk(bool* hugetlb) {
    // Provisioned hugepages first; otherwise ordinary memory aligned to 2 MiB and advised for
    // transparent hugepages. Unaligned, THP covers a chunk only in part, and a breath that frees
    // packets 10 KiB apart then misses the TLB on most of them (basic1 ran at half speed).
    void* mem = mmap(nullptr, kChunkBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    *hugetlb = mem != MAP_FAILED;
    if (mem == MAP_FAILED) mem = map_aligned();
    base_ = static_cast<uint8_t*>(mem);
    if (reinterpret_cast<uintptr_t>(base_) + kChunkBytes > kLinkAddressLimit) {
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

  int32_t grow() {
    const int32_t n = static_cast<int32_t>(
        std::min<size_t>(Chunk::kSlots, static_cast<size_t>(freelist_->max_packets - allocated_)));
    if (n == 0) return 0;
    bool hugetlb = false;
    chunks_.emplace_back(&hugetlb);
    hugepages_ = chunks_.size() == 1 ? hugetlb : hugepages_ && hugetlb;
    // Push in reverse so packets leave the stack in address order. Nothing is written into the
    // slots: allocation writes the header, so the chunk's pages are faulted in as packets are first
    // used, not all 32 MiB at once (a stall long enough for a NIC ring to overflow).
    for (int32_t i = n - 1; i >= 0; --i) {
      freelist_->list[freelist_->nfree++] =
          reinterpret_cast<packet*>(chunks_.back().slot(i) + PACKET_HEADROOM);
    }
    allocated_ += n;
    return n;
  }

  void set_max(int32_t max_packets) {
    if (max_packets < 1 || max_packets > kMaxMaxPackets) {
      throw std::invalid_argument("packet pool: capacity must be 1.." +
                                  std::to_string(kMaxMaxPackets));
    }
    if (allocated_ > 0) throw std::logic_error("packet pool: capacity set after first allocation");
    freelist_->max_packets = max_packets;
  }

  void adopt(uint8_t* slot) {
    if (allocated_ >= freelist_->max_packets) {
      throw std::runtime_error("packet pool: no room for more packets (capacity " +
                               std::to_string(freelist_->max_packets) + ")");
    }
    allocated_++;
    push(slot);
  }
  void push(uint8_t* slot) {
    freelist_->list[freelist_->nfree++] = reinterpret_cast<packet*>(slot + PACKET_HEADROOM);
  }

  int32_t allocated() const { return allocated_; }
  bool hugepages() const { return hugepages_; }

 private:
  int32_t allocated_ = 0;
  bool hugepages_ = false;
  packet_freelist* freelist_ = map_freelist();
  std::vector<Chunk> chunks_;

  // Room for the largest capacity, reserved once so the list never moves (Lua keeps its address);
  // pages are touched only as far as the list is used. Lives as long as the process.
  static packet_freelist* map_freelist() {
    const size_t bytes = sizeof(packet_freelist) + kMaxMaxPackets * sizeof(packet*);
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) throw std::runtime_error("packet pool: no memory for the free list");
    auto* fl = static_cast<packet_freelist*>(mem);
    fl->max_packets = kDefaultMaxPackets;
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
  if (fl->nfree == 0 && pool().grow() == 0) {
    throw std::runtime_error("packet pool exhausted: all " + std::to_string(fl->max_packets) +
                             " packets are in use");
  }
  packet* p = fl->list[--fl->nfree];
  p->length = 0;  // free-list entries may hold any header (see packet.h)
  p->headroom = PACKET_HEADROOM;
  return p;
}

void packet_pool_adopt(uint8_t* slot) { pool().adopt(slot); }
void packet_pool_push(uint8_t* slot) { pool().push(slot); }

void packet_free(packet* p) {
  packet_freelist* fl = pool().freelist();
  if (fl->nfree >= fl->max_packets) throw std::logic_error("packet_free: more frees than packets");
  fl->list[fl->nfree++] = reinterpret_cast<packet*>(packet_slot(p) + PACKET_HEADROOM);
}

}  // namespace snabb::runtime

extern "C" {
// The pool's errors are returned, not thrown through LuaJIT's frames (which would lose the
// message).
namespace {
std::string pool_error;
}
packet_freelist* snabb_packet_freelist(void) {
  try {
    return snabb::runtime::pool().freelist();
  } catch (const std::exception& e) {
    pool_error = e.what();
    return nullptr;
  }
}
int32_t snabb_packet_grow(void) {
  try {
    return snabb::runtime::pool().grow();
  } catch (const std::exception& e) {
    pool_error = e.what();
    return -1;
  }
}
const char* snabb_packet_pool_error(void) { return pool_error.c_str(); }
int32_t snabb_packet_allocated(void) { return snabb::runtime::pool().allocated(); }
int snabb_packet_hugepages(void) { return snabb::runtime::pool().hugepages(); }
int snabb_packet_set_max(int32_t max_packets) {
  try {
    snabb::runtime::set_packet_pool_max(max_packets);
    return 0;
  } catch (const std::invalid_argument&) {
    return -2;
  } catch (const std::logic_error&) {
    return -1;
  }
}
}
