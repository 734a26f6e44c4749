#include "runtime/packet.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/link.h"

namespace snabb::runtime {
namespace {

// Small enough to exhaust quickly. The capacity can only be set before the first allocation, so a
// global environment sets it before any test runs (this binary is its own process).
constexpr int32_t kPoolMax = 64;

class SmallPoolEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { set_packet_pool_max(kPoolMax); }
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new SmallPoolEnvironment);

int64_t nfree() { return snabb_packet_freelist()->nfree; }

uint8_t* slot_start(packet* p) { return reinterpret_cast<uint8_t*>(p) - p->headroom; }

TEST(PacketTest, FreshPacketIsEmptyWithFullHeadroom) {
  packet* p = packet_allocate();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->length, 0);
  EXPECT_EQ(p->headroom, PACKET_HEADROOM);
  // Slots are cache-line aligned; the header sits PACKET_HEADROOM bytes into its slot.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(slot_start(p)) % 64, 0u);
  // The whole payload is writable.
  p->data[0] = 0xab;
  p->data[PACKET_PAYLOAD_SIZE - 1] = 0xcd;
  EXPECT_EQ(p->data[0], 0xab);
  EXPECT_EQ(p->data[PACKET_PAYLOAD_SIZE - 1], 0xcd);
  packet_free(p);
}

TEST(PacketTest, FreeResetsLengthAndHeadroom) {
  packet* p = packet_allocate();
  p->length = 1500;
  packet_free(p);
  packet* q = packet_allocate();
  EXPECT_EQ(q, p);
  EXPECT_EQ(q->length, 0);
  EXPECT_EQ(q->headroom, PACKET_HEADROOM);
  packet_free(q);
}

TEST(PacketTest, CapacityCannotChangeAfterAllocation) {
  packet_free(packet_allocate());
  EXPECT_THROW(set_packet_pool_max(kPoolMax * 2), std::logic_error);
  EXPECT_EQ(snabb_packet_set_max(kPoolMax * 2), -1);
  EXPECT_STREQ(snabb_error(), "packets are already allocated");
  EXPECT_EQ(snabb_packet_freelist()->max_packets, kPoolMax);
}

TEST(PacketTest, CapacityOutOfRangeIsRefused) {
  EXPECT_THROW(set_packet_pool_max(0), std::invalid_argument);
  EXPECT_THROW(set_packet_pool_max((1 << 24) + 1), std::invalid_argument);
  EXPECT_EQ(snabb_packet_set_max(-5), -1);
  EXPECT_STREQ(snabb_error(), "-5 is not a capacity from 1 to 16777216");
  EXPECT_EQ(snabb_packet_freelist()->max_packets, kPoolMax);
}

TEST(PacketTest, PacketsDoNotShareSlots) {
  std::vector<packet*> packets;
  for (int i = 0; i < 8; ++i) packets.push_back(packet_allocate());
  for (size_t i = 0; i < packets.size(); ++i) {
    for (size_t j = i + 1; j < packets.size(); ++j) {
      const intptr_t distance = slot_start(packets[i]) - slot_start(packets[j]);
      EXPECT_GE(std::abs(distance), PACKET_SLOT_SIZE) << "packets " << i << " and " << j;
    }
  }
  for (packet* p : packets) packet_free(p);
}

TEST(PacketTest, ReuseIsLifo) {
  packet* a = packet_allocate();
  packet* b = packet_allocate();
  packet* c = packet_allocate();
  const int64_t before = nfree();
  packet_free(a);
  packet_free(b);
  packet_free(c);
  EXPECT_EQ(nfree(), before + 3);
  EXPECT_EQ(packet_allocate(), c);
  EXPECT_EQ(packet_allocate(), b);
  EXPECT_EQ(packet_allocate(), a);
  EXPECT_EQ(nfree(), before);
  packet_free(a);
  packet_free(b);
  packet_free(c);
}

// The header of a 300-byte packet p moved by `shift` bytes, as prepend (shift < 0) or shiftleft
// (shift > 0) move it.
packet* moved_header(packet* p, int shift) {
  p->length = 300;
  auto* moved = reinterpret_cast<packet*>(reinterpret_cast<uint8_t*>(p) + shift);
  moved->headroom = static_cast<uint16_t>(PACKET_HEADROOM + shift);
  moved->length = static_cast<uint16_t>(300 - shift);
  return moved;
}

// A moved header goes on the free list as it is, the packet untouched (free writes only the list),
// and comes back at its canonical place, fresh, when allocated again.
void ExpectFreeOfMovedHeaderRestoresCanonical(int shift) {
  SCOPED_TRACE("header moved by " + std::to_string(shift) + " bytes");
  packet* p = packet_allocate();
  packet* moved = moved_header(p, shift);
  uint8_t* slot = packet_slot(moved);
  const std::vector<uint8_t> before_free(slot, slot + 2 * PACKET_HEADROOM + 64);
  const int64_t before = nfree();
  packet_free(moved);
  packet_freelist* fl = snabb_packet_freelist();
  ASSERT_EQ(fl->nfree, before + 1);
  EXPECT_EQ(fl->list[fl->nfree - 1], moved);
  EXPECT_EQ(std::vector<uint8_t>(slot, slot + before_free.size()), before_free);
  packet* again = packet_allocate();
  EXPECT_EQ(again, p);
  EXPECT_EQ(again->length, 0);
  EXPECT_EQ(again->headroom, PACKET_HEADROOM);
  packet_free(again);
}

TEST(PacketTest, FreeAfterPrependRestoresCanonicalPointer) {
  for (int k : {1, 14, 64, int{PACKET_HEADROOM}}) ExpectFreeOfMovedHeaderRestoresCanonical(-k);
}

TEST(PacketTest, FreeAfterShiftleftRestoresCanonicalPointer) {
  for (int k : {1, 14, 64, int{PACKET_HEADROOM}}) ExpectFreeOfMovedHeaderRestoresCanonical(k);
}

// Lua's shiftleft/shiftright/prepend move the header by any number of bytes, odd ones too; every
// C++ reader of a header (timestamps, the slot, link entries, free) must then work at the odd
// address. Under UBSan (make check-sanitize) this failed with "member access within misaligned
// address ... for type 'struct packet'" until the struct was packed.
TEST(PacketTest, HeaderShiftedByOddBytesIsReadableFromCxx) {
  Link* l = snabb_link_new();
  for (int shift : {1, 3, 7, 13, -1, -3, -255, int{PACKET_HEADROOM} - 1}) {
    SCOPED_TRACE("header moved by " + std::to_string(shift) + " bytes");
    packet* p = packet_allocate();
    packet* moved = moved_header(p, shift);
    packet_set_timestamp(moved, 1234567890123456789ull);
    uint64_t ns = 0;
    EXPECT_TRUE(packet_timestamp(moved, &ns));
    EXPECT_EQ(ns, 1234567890123456789ull);
    EXPECT_EQ(packet_slot(moved), reinterpret_cast<uint8_t*>(p) - PACKET_HEADROOM);
    link_transmit(l, moved);
    packet* received = link_receive(l);
    EXPECT_EQ(received, moved);
    EXPECT_EQ(received->length, 300 - shift);
    packet_free(received);
    EXPECT_EQ(packet_allocate(), p);  // back at its canonical place
    packet_free(p);
  }
  snabb_link_delete(l);
}

// Lua allocates by popping the extern "C" free list directly; both sides must agree on it.
TEST(PacketTest, CFreeListIsSharedWithCpp) {
  packet_freelist* fl = snabb_packet_freelist();
  EXPECT_EQ(fl, snabb_packet_freelist());
  EXPECT_EQ(fl->max_packets, kPoolMax);
  packet* p = packet_allocate();
  const int64_t n = fl->nfree;
  ASSERT_GT(n, 0) << "pool should have grown past one packet";
  packet* popped = fl->list[--fl->nfree];  // what core.packet's allocate does
  EXPECT_NE(popped, p);
  packet_free(popped);
  EXPECT_EQ(fl->nfree, n);
  EXPECT_EQ(packet_allocate(), popped);
  packet_free(popped);
  packet_free(p);
  EXPECT_LE(snabb_packet_allocated(), kPoolMax);
  EXPECT_EQ(fl->nfree, snabb_packet_allocated());
}

TEST(PacketTest, ExhaustionThrowsAndRecovers) {
  std::vector<packet*> packets;
  for (int i = 0; i < kPoolMax; ++i) packets.push_back(packet_allocate());
  EXPECT_EQ(snabb_packet_allocated(), kPoolMax);
  EXPECT_EQ(nfree(), 0);
  EXPECT_EQ(snabb_packet_grow(), 0);
  try {
    packet_allocate();
    ADD_FAILURE() << "allocating from an exhausted pool did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("exhausted"), std::string::npos) << e.what();
    // It says where the cap comes from, and counts the exhaustion.
    EXPECT_NE(std::string(e.what()).find("the cap was set by packet.set_max_packets"),
              std::string::npos)
        << e.what();
  }
  EXPECT_GE(snabb_packet_exhaustions(), 2);
  EXPECT_EQ(snabb_packet_cap(), kPoolMax);
  // A freed packet is available again.
  packet* last = packets.back();
  packets.pop_back();
  packet_free(last);
  EXPECT_EQ(packet_allocate(), last);
  packets.push_back(last);

  for (packet* p : packets) packet_free(p);
  EXPECT_EQ(nfree(), kPoolMax);
  // Every packet is free: one more free is a double free.
  EXPECT_THROW(packet_free(last), std::logic_error);
  EXPECT_EQ(nfree(), kPoolMax);
}

// A cgroup tree as the kernel shows it, under a temporary directory: a v2 hierarchy where the
// process's cgroup has no limit but its parent has 256 MiB, and a v1 memory hierarchy where a
// cgroup has 64 MiB and its parent none (v1's "none" is 2^63 rounded down to a page).
TEST(PacketTest, CgroupMemoryLimitIsTheSmallestOnThePath) {
  const std::filesystem::path t =
      std::filesystem::temp_directory_path() / ("packet_test." + std::to_string(getpid()));
  auto write = [](const std::filesystem::path& file, const std::string& text) {
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
  };
  write(t / "v2/user/job/memory.max", "max\n");
  write(t / "v2/user/memory.max", "268435456\n");
  write(t / "v1/box/memory.limit_in_bytes", "67108864\n");
  write(t / "v1/memory.limit_in_bytes", "9223372036854771712\n");
  const std::string v2_mount = "30 22 0:27 / " + (t / "v2").string() +
                               " rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
  const std::string v1_mount =
      "34 30 0:31 / " + (t / "v1").string() + " rw,relatime - cgroup cgroup rw,memory\n";
  const std::string other = "25 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
  std::string file;
  EXPECT_EQ(cgroup_memory_limit("0::/user/job\n", other + v2_mount, &file), 268435456u);
  EXPECT_EQ(file, (t / "v2/user/memory.max").string());
  EXPECT_EQ(cgroup_memory_limit("4:memory:/box\n0::/user/job\n", v1_mount + v2_mount, &file),
            67108864u);
  EXPECT_EQ(file, (t / "v1/box/memory.limit_in_bytes").string());
  // In a cgroup namespace the mount's root is the process's cgroup: its path reads "/".
  const std::string namespaced =
      "30 22 0:27 /user " + (t / "v2/user").string() + " rw - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(cgroup_memory_limit("0::/\n", namespaced, &file), 268435456u);
  // No limit anywhere, or no cgroup file system.
  EXPECT_EQ(cgroup_memory_limit("4:memory:/\n", v1_mount, &file), 0u);
  EXPECT_EQ(cgroup_memory_limit("0::/user/job\n", other, &file), 0u);
  std::filesystem::remove_all(t);
}

}  // namespace
}  // namespace snabb::runtime
