// GSO segmentation and checksum completion (offload.h) on frames built here: TCP over IPv4 and
// IPv6 (with an extension header and a VLAN tag to put back), UDP_SEGMENT, and frames it must
// refuse, and SCTP's CRC32c. The end-to-end test (tests/af_packet_test.sh) covers TCP over IPv4 and
// IPv6 from a real kernel; VLAN-tagged and UDP GSO frames this machine's kernel does not make (no
// 802.1Q module; no Debian tool sends with UDP_SEGMENT), so they are checked here. Checksums are
// verified with a reference sum written the textbook way (big-endian 16-bit words).
#include "drivers/af_packet/offload.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace snabb::drivers::af_packet {
namespace {

using Bytes = std::vector<uint8_t>;

uint32_t be16(const uint8_t* p) { return p[0] << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return be16(p) << 16 | be16(p + 2); }

// RFC 1071, folded but not complemented: 0xffff when the data includes a correct checksum.
uint32_t ref_sum(const Bytes& b) {
  uint32_t s = 0;
  for (size_t i = 0; i < b.size(); i += 2) s += b[i] << 8 | (i + 1 < b.size() ? b[i + 1] : 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}
// Is the TCP/UDP checksum of the segment at d (IP header at ip, L4 at l4) correct?
bool l4_valid(const uint8_t* d, uint32_t len, uint32_t ip, uint32_t l4, bool v6, uint8_t proto) {
  Bytes b(d + ip + (v6 ? 8 : 12), d + ip + (v6 ? 40 : 20));  // the addresses
  const uint32_t n = len - l4;
  const uint8_t tail[] = {0, 0, uint8_t(n >> 8), uint8_t(n), 0, 0, 0, proto};
  if (v6) {
    b.insert(b.end(), tail, tail + 8);
  } else {
    b.insert(b.end(), {0, proto, uint8_t(n >> 8), uint8_t(n)});
  }
  b.insert(b.end(), d + l4, d + len);
  return ref_sum(b) == 0xffff;
}

// A frame: Ethernet (untagged), IPv4 or IPv6 (with an 8-byte hop-by-hop header), TCP (12 bytes of
// options, the given flags) or UDP, then `payload` bytes counting up.
Bytes make(bool v6, uint8_t proto, uint32_t payload, uint8_t flags = 0x10) {
  Bytes f = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, uint8_t(v6 ? 0x86 : 0x08), uint8_t(v6 ? 0xdd : 0)};
  const uint32_t l4len = (proto == 6 ? 32 : 8) + payload;
  if (v6) {
    const uint32_t plen = 8 + l4len;
    f.insert(f.end(), {0x60, 0, 0, 0, uint8_t(plen >> 8), uint8_t(plen), 0, 64});
    for (int i = 0; i < 32; ++i) f.push_back(uint8_t(0xfd + i));  // addresses
    f.insert(f.end(), {proto, 0, 1, 4, 0, 0, 0, 0});              // hop-by-hop
  } else {
    const uint32_t tlen = 20 + l4len;
    f.insert(f.end(), {0x45,
                       0,
                       uint8_t(tlen >> 8),
                       uint8_t(tlen),
                       0x12,
                       0xff,
                       0x40,
                       0,
                       64,
                       proto,
                       0,
                       0,
                       10,
                       0,
                       0,
                       1,
                       10,
                       0,
                       0,
                       2});
  }
  if (proto == 6) {  // ports, seq 0xfffff000 (wraps), ack, data offset 8, flags, window
    f.insert(f.end(),
             {0x30, 0x39, 0x00, 0x50, 0xff, 0xff, 0xf0, 0x00, 0, 0, 0, 1, 0x80, flags, 1, 0,
              0xab, 0xcd, 0,    0,    1,    1,    8,    10,   0, 0, 0, 1, 0,    0,     0, 2});
  } else {
    f.insert(f.end(), {0x30, 0x39, 0x00, 0x35, uint8_t(l4len >> 8), uint8_t(l4len), 0xab, 0xcd});
  }
  for (uint32_t i = 0; i < payload; ++i) f.push_back(uint8_t(i * 7));
  return f;
}

virtio_net_hdr gso(uint8_t type, uint16_t size) {
  virtio_net_hdr h{};
  h.gso_type = type;
  h.gso_size = size;
  return h;
}

TEST(GsoFrame, TcpOverIpv4) {
  const Bytes f = make(false, 6, 3500, 0x80 | 0x10 | 0x08 | 0x01);  // CWR ACK PSH FIN
  GsoFrame g;
  ASSERT_TRUE(g.init(f.data(), f.size(), nullptr, gso(VIRTIO_NET_HDR_GSO_TCPV4, 1000), 10240));
  ASSERT_EQ(g.segments(), 4u);
  uint8_t d[10240];
  for (uint32_t i = 0; i < 4; ++i) {
    const uint32_t len = g.segment(i, d), size = i < 3 ? 1000 : 500;
    EXPECT_EQ(len, 14 + 20 + 32 + size);
    EXPECT_EQ(be16(d + 16), 20 + 32 + size);  // IPv4 total length
    EXPECT_EQ(be16(d + 18), 0x12ff + i);      // ID, one more per segment
    EXPECT_EQ(ref_sum(Bytes(d + 14, d + 34)), 0xffffu) << "IPv4 header checksum, segment " << i;
    EXPECT_EQ(be32(d + 38), 0xfffff000u + i * 1000);  // sequence number
    EXPECT_EQ(d[47], (i == 0 ? 0x80 : 0) | 0x10 | (i == 3 ? 0x09 : 0)) << "flags, segment " << i;
    EXPECT_TRUE(l4_valid(d, len, 14, 34, false, 6)) << "TCP checksum, segment " << i;
    EXPECT_EQ(std::memcmp(d + 66, f.data() + 66 + i * 1000, size), 0);
  }
}

TEST(GsoFrame, TcpOverIpv6WithExtensionHeaderAndVlanTag) {
  const Bytes f = make(true, 6, 2000);
  const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x05};
  GsoFrame g;
  ASSERT_TRUE(g.init(f.data(), f.size(), tag, gso(VIRTIO_NET_HDR_GSO_TCPV6, 1440), 10240));
  ASSERT_EQ(g.segments(), 2u);
  uint8_t d[10240];
  for (uint32_t i = 0; i < 2; ++i) {
    const uint32_t len = g.segment(i, d), size = i == 0 ? 1440 : 560;
    EXPECT_EQ(len, 18 + 40 + 8 + 32 + size);
    EXPECT_EQ(std::memcmp(d, f.data(), 12), 0);
    EXPECT_EQ(std::memcmp(d + 12, tag, 4), 0);
    EXPECT_EQ(be16(d + 16), 0x86ddu);
    EXPECT_EQ(be16(d + 22), 8 + 32 + size);  // IPv6 payload length, extension header included
    EXPECT_EQ(be32(d + 70), 0xfffff000u + i * 1440);
    EXPECT_TRUE(l4_valid(d, len, 18, 66, true, 6)) << "TCP checksum, segment " << i;
    EXPECT_EQ(std::memcmp(d + 98, f.data() + 94 + i * 1440, size), 0);
  }
}

TEST(GsoFrame, UdpSegment) {
  const Bytes f = make(false, 17, 3000);
  GsoFrame g;
  ASSERT_TRUE(g.init(f.data(), f.size(), nullptr, gso(VIRTIO_NET_HDR_GSO_UDP_L4, 1200), 10240));
  ASSERT_EQ(g.segments(), 3u);
  uint8_t d[10240];
  for (uint32_t i = 0; i < 3; ++i) {
    const uint32_t len = g.segment(i, d), size = i < 2 ? 1200 : 600;
    EXPECT_EQ(be16(d + 16), 20 + 8 + size);
    EXPECT_EQ(be16(d + 38), 8 + size);  // UDP length
    EXPECT_TRUE(l4_valid(d, len, 14, 34, false, 17)) << "UDP checksum, segment " << i;
  }
}

TEST(GsoFrame, Refuses) {
  GsoFrame g;
  const Bytes tcp = make(false, 6, 3000), udp = make(false, 17, 3000);
  EXPECT_FALSE(g.init(udp.data(), udp.size(), nullptr, gso(VIRTIO_NET_HDR_GSO_TCPV4, 1000), 10240));
  EXPECT_FALSE(
      g.init(tcp.data(), tcp.size(), nullptr, gso(VIRTIO_NET_HDR_GSO_UDP_L4, 1000), 10240));
  EXPECT_FALSE(g.init(tcp.data(), tcp.size(), nullptr, gso(VIRTIO_NET_HDR_GSO_TCPV4, 0), 10240));
  // Segments that would not fit: 66 bytes of headers and an MSS of 10175.
  EXPECT_FALSE(
      g.init(tcp.data(), tcp.size(), nullptr, gso(VIRTIO_NET_HDR_GSO_TCPV4, 10175), 10240));
  EXPECT_TRUE(g.init(tcp.data(), tcp.size(), nullptr, gso(VIRTIO_NET_HDR_GSO_TCPV4, 10174), 10240));
  Bytes arp = tcp;
  arp[12] = 0x08, arp[13] = 0x06;
  EXPECT_FALSE(g.init(arp.data(), arp.size(), nullptr, gso(VIRTIO_NET_HDR_GSO_TCPV4, 1000), 10240));
  EXPECT_FALSE(g.init(tcp.data(), 40, nullptr, gso(VIRTIO_NET_HDR_GSO_TCPV4, 1000), 10240));
}

TEST(CompleteChecksum, PartialUdpChecksum) {
  Bytes f = make(false, 17, 333);  // odd length
  // What the sender leaves for the hardware: the pseudo-header's sum, not complemented.
  const uint32_t n = f.size() - 34;
  const uint32_t pseudo = ref_sum({10, 0, 0, 1, 10, 0, 0, 2, 0, 17, uint8_t(n >> 8), uint8_t(n)});
  f[40] = uint8_t(pseudo >> 8), f[41] = uint8_t(pseudo);
  EXPECT_FALSE(l4_valid(f.data(), f.size(), 14, 34, false, 17));
  ASSERT_TRUE(complete_checksum(f.data(), f.size(), 34, 6));
  EXPECT_TRUE(l4_valid(f.data(), f.size(), 14, 34, false, 17));
  EXPECT_FALSE(complete_checksum(f.data(), 40, 34, 6));  // the field is past the end
}

// CRC32c the textbook way, bit by bit; "123456789" gives 0xe3069283 (RFC 3720 B.4's check value).
uint32_t ref_crc32c(const uint8_t* p, size_t n) {
  uint32_t c = ~0u;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
  }
  return ~c;
}

TEST(CompleteChecksum, SctpCrc32c) {
  ASSERT_EQ(ref_crc32c(reinterpret_cast<const uint8_t*>("123456789"), 9), 0xe3069283u);
  Bytes f = make(false, 17, 101);
  f[23] = 132;  // SCTP: common header (ports, verification tag, checksum), then a chunk
  const uint32_t sum_before = be32(f.data() + 34 + 8);
  ASSERT_TRUE(complete_checksum(f.data(), f.size(), 34, 8));
  Bytes zeroed(f.begin() + 34, f.end());
  std::memset(zeroed.data() + 8, 0, 4);
  const uint32_t crc = ref_crc32c(zeroed.data(), zeroed.size());
  const uint8_t* field = f.data() + 42;
  EXPECT_EQ(field[0] | field[1] << 8 | field[2] << 16 | uint32_t(field[3]) << 24, crc);
  EXPECT_NE(be32(field), sum_before);
}

}  // namespace
}  // namespace snabb::drivers::af_packet
