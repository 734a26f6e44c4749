#include "runtime/link.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "runtime/packet.h"

namespace snabb::runtime {
namespace {

int64_t nfree() { return snabb_packet_freelist()->nfree; }

packet* make_packet(uint16_t length) {
  packet* p = packet_allocate();
  p->length = length;
  return p;
}

// Owns a link; deletes it (and the packets still queued) at the end of the test.
class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    l_ = snabb_link_new();
    ASSERT_NE(l_, nullptr);
  }
  void TearDown() override { snabb_link_delete(l_); }

  // What link_sync folds into the stats must add up at all times.
  void ExpectStatsConsistent() {
    const link_stats& s = l_->stats;
    EXPECT_EQ(s.txpackets, s.rxpackets + link_nreadable(l_) + s.txdrop);
  }

  Link* l_ = nullptr;
};

TEST_F(LinkTest, NewLinkIsEmptyAndZeroed) {
  EXPECT_TRUE(link_empty(l_));
  EXPECT_EQ(link_nreadable(l_), 0u);
  EXPECT_EQ(l_->stats.txpackets, 0u);
  EXPECT_EQ(l_->stats.rxpackets, 0u);
  EXPECT_EQ(l_->stats.txdrop, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(l_) % alignof(Link), 0u);
}

TEST_F(LinkTest, TransmitUntilFullThenDrops) {
  constexpr int kExtra = 10;
  std::vector<packet*> packets;
  for (int i = 0; i < LINK_RING_SIZE + kExtra; ++i) packets.push_back(make_packet(100));
  const int64_t free_before = nfree();
  for (int i = 0; i < LINK_RING_SIZE; ++i) link_transmit(l_, packets[i]);
  EXPECT_EQ(link_nreadable(l_), static_cast<uint32_t>(LINK_RING_SIZE));
  EXPECT_EQ(l_->stats.txdrop, 0u);
  EXPECT_EQ(nfree(), free_before);

  for (int i = LINK_RING_SIZE; i < LINK_RING_SIZE + kExtra; ++i) {
    link_transmit(l_, packets[i]);
    // The dropped packet is back on top of the free list.
    packet_freelist* fl = snabb_packet_freelist();
    EXPECT_EQ(fl->list[fl->nfree - 1], packets[i]);
  }
  EXPECT_EQ(link_nreadable(l_), static_cast<uint32_t>(LINK_RING_SIZE));
  EXPECT_EQ(l_->stats.txdrop, static_cast<uint64_t>(kExtra));
  EXPECT_EQ(nfree(), free_before + kExtra);

  const LinkDelta d = link_sync(l_);
  EXPECT_EQ(d.written, static_cast<uint32_t>(LINK_RING_SIZE));
  EXPECT_EQ(d.read, 0u);
  EXPECT_EQ(l_->stats.txpackets, static_cast<uint64_t>(LINK_RING_SIZE + kExtra));
  EXPECT_EQ(l_->stats.txbytes, 100u * (LINK_RING_SIZE + kExtra));
  ExpectStatsConsistent();

  // The queued packets are still the first ones transmitted, in order.
  for (int i = 0; i < LINK_RING_SIZE; ++i) ASSERT_EQ(link_receive(l_), packets[i]) << i;
  EXPECT_TRUE(link_empty(l_));
  for (int i = 0; i < LINK_RING_SIZE; ++i) packet_free(packets[i]);
}

TEST_F(LinkTest, ReceiveIsFifoAcrossRingWrap) {
  // Interleave so the ring index wraps several times with packets queued across the wrap.
  std::vector<packet*> sent, received;
  for (int round = 0; round < 7; ++round) {
    for (int i = 0; i < 700; ++i) {
      packet* p = make_packet(static_cast<uint16_t>(sent.size() % 1500));
      sent.push_back(p);
      link_transmit(l_, p);
    }
    while (link_nreadable(l_) > 300) received.push_back(link_receive(l_));
    link_sync(l_);
  }
  while (!link_empty(l_)) received.push_back(link_receive(l_));
  ASSERT_EQ(received.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) ASSERT_EQ(received[i], sent[i]) << "packet " << i;
  EXPECT_EQ(l_->stats.txdrop, 0u);
  for (packet* p : received) packet_free(p);
}

TEST_F(LinkTest, SyncFoldsCountsAndBytes) {
  uint64_t tx_bytes = 0, rx_bytes = 0, tx_packets = 0, rx_packets = 0;
  uint16_t next_length = 60;
  // Bursts of varying size, some overflowing the ring, with a sync after each step.
  for (int step = 0; step < 40; ++step) {
    const int burst = (step * 397) % 1500;
    uint32_t written = 0;
    for (int i = 0; i < burst; ++i) {
      const bool full = link_nreadable(l_) == LINK_RING_SIZE;
      written += !full;
      tx_bytes += next_length;
      ++tx_packets;
      link_transmit(l_, make_packet(next_length));
      next_length = static_cast<uint16_t>(60 + (next_length * 7 + 13) % 1454);
    }
    LinkDelta d = link_sync(l_);
    EXPECT_EQ(d.written, written);
    EXPECT_EQ(d.read, 0u);
    ExpectStatsConsistent();

    const int drain = (step * 211) % 900;
    uint32_t read = 0;
    for (int i = 0; i < drain && !link_empty(l_); ++i, ++read) {
      packet* p = link_receive(l_);
      rx_bytes += p->length;
      ++rx_packets;
      // The receiver may change the packet: rx bytes count it as it was transmitted.
      p->length = 1;
      packet_free(p);
    }
    d = link_sync(l_);
    EXPECT_EQ(d.read, read);
    EXPECT_EQ(d.written, 0u);
    ExpectStatsConsistent();
    EXPECT_EQ(l_->stats.txpackets, tx_packets);
    EXPECT_EQ(l_->stats.rxpackets, rx_packets);
    EXPECT_EQ(l_->stats.txbytes, tx_bytes);
    EXPECT_EQ(l_->stats.rxbytes, rx_bytes);
  }
  EXPECT_GT(l_->stats.txdrop, 0u) << "the bursts were meant to overflow the ring";
  // A sync with nothing new changes nothing.
  const link_stats before = l_->stats;
  const LinkDelta d = link_sync(l_);
  EXPECT_EQ(d.read, 0u);
  EXPECT_EQ(d.written, 0u);
  EXPECT_EQ(l_->stats.txpackets, before.txpackets);
  EXPECT_EQ(l_->stats.txbytes, before.txbytes);
  EXPECT_EQ(l_->stats.rxbytes, before.rxbytes);
}

// Cursors wrap modulo 2^32: through INT32_MAX to INT32_MIN (as int32_t) and through -1 to 0.
TEST_F(LinkTest, CursorsWrap) {
  for (const int32_t start : {INT32_MAX - 5, -6}) {
    SCOPED_TRACE(start);
    link_sync(l_);
    const link_stats before = l_->stats;
    l_->read = l_->write = l_->synced_read = l_->synced_write = start;
    constexpr int kPackets = 20;
    std::vector<packet*> sent;
    uint64_t bytes = 0;
    for (int i = 0; i < kPackets; ++i) {
      packet* p = make_packet(static_cast<uint16_t>(64 + i));
      bytes += p->length;
      sent.push_back(p);
      link_transmit(l_, p);
      EXPECT_EQ(link_nreadable(l_), static_cast<uint32_t>(i + 1));
    }
    EXPECT_EQ(l_->write, link_advance(start, kPackets));
    EXPECT_EQ(l_->write, start == -6 ? kPackets - 6 : INT32_MIN + kPackets - 6);
    LinkDelta d = link_sync(l_);
    EXPECT_EQ(d.written, static_cast<uint32_t>(kPackets));
    EXPECT_EQ(l_->stats.txpackets - before.txpackets, static_cast<uint64_t>(kPackets));
    EXPECT_EQ(l_->stats.txbytes - before.txbytes, bytes);

    for (int i = 0; i < kPackets; ++i) ASSERT_EQ(link_receive(l_), sent[i]) << i;
    EXPECT_TRUE(link_empty(l_));
    d = link_sync(l_);
    EXPECT_EQ(d.read, static_cast<uint32_t>(kPackets));
    EXPECT_EQ(l_->stats.rxpackets - before.rxpackets, static_cast<uint64_t>(kPackets));
    EXPECT_EQ(l_->stats.rxbytes - before.rxbytes, bytes);
    ExpectStatsConsistent();
    for (packet* p : sent) packet_free(p);
  }
}

TEST_F(LinkTest, FullRingAcrossCursorWrap) {
  l_->read = l_->write = l_->synced_read = l_->synced_write = INT32_MAX - 5;
  for (int i = 0; i < LINK_RING_SIZE; ++i) link_transmit(l_, make_packet(10));
  EXPECT_EQ(link_nreadable(l_), static_cast<uint32_t>(LINK_RING_SIZE));
  link_transmit(l_, make_packet(10));
  EXPECT_EQ(l_->stats.txdrop, 1u);
  link_sync(l_);
  EXPECT_EQ(l_->stats.txpackets, static_cast<uint64_t>(LINK_RING_SIZE + 1));
  EXPECT_EQ(l_->stats.txbytes, 10u * (LINK_RING_SIZE + 1));
  ExpectStatsConsistent();
}

TEST(LinkDeleteTest, DeleteFreesQueuedPackets) {
  Link* l = snabb_link_new();
  // Make sure the pool has the packets below, so the count is not disturbed by its growth.
  std::vector<packet*> warm;
  for (int i = 0; i < 301; ++i) warm.push_back(packet_allocate());
  for (packet* w : warm) packet_free(w);
  const int64_t before = nfree();
  for (int i = 0; i < 300; ++i) link_transmit(l, make_packet(42));
  for (int i = 0; i < 100; ++i) packet_free(link_receive(l));
  // One queued packet had its header moved by a prepend; delete must still free it properly.
  packet* p = make_packet(20);
  auto* moved = reinterpret_cast<packet*>(reinterpret_cast<uint8_t*>(p) - 14);
  moved->headroom = PACKET_HEADROOM - 14;
  moved->length = 34;
  link_transmit(l, moved);
  EXPECT_EQ(nfree(), before - 201);
  snabb_link_delete(l);
  EXPECT_EQ(nfree(), before);
  // The moved packet went back as it was, and is allocated again at its canonical place.
  packet_freelist* fl = snabb_packet_freelist();
  EXPECT_EQ(fl->list[fl->nfree - 1], moved);
  EXPECT_EQ(packet_allocate(), p);
  packet_free(p);
}

}  // namespace
}  // namespace snabb::runtime
