// lib/c_helpers_test.cc: Snabb's C helpers (c_helpers.h) against straightforward references: the
// checksums against an RFC 1071 byte-pair sum and the real captures of tests/data/pcap, the
// replay window, the shared-memory mappings, the MAC table and the LPM lookups.
#include "lib/c_helpers.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace snabb::lib {
namespace {

using Bytes = std::vector<unsigned char>;

// RFC 1071 as written: big-endian byte pairs, a zero-padded odd byte, end-around carries.
uint16_t reference_checksum(const unsigned char* p, size_t n, uint32_t initial) {
  uint64_t sum = initial;
  for (size_t i = 0; i + 1 < n; i += 2) sum += p[i] << 8 | p[i + 1];
  if (n % 2) sum += p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// cksum_generic and cksum_avx2 take the AVX2 path (on an AVX2 CPU), cksum_sse2 the portable one:
// each against the reference at every length and at every offset from a 32-byte boundary.
TEST(Checksum, MatchesRfc1071OnEveryLengthAndAlignment) {
  std::mt19937 random(1071);
  alignas(32) std::array<unsigned char, 1600 + 32> data;
  for (auto& b : data) b = static_cast<unsigned char>(random());
  for (size_t offset = 0; offset < 32; ++offset) {
    for (size_t n = 0; n <= 1600; ++n) {
      auto initial = static_cast<uint16_t>(random());
      uint16_t expected = reference_checksum(&data[offset], n, initial);
      ASSERT_EQ(cksum_generic(&data[offset], n, initial), expected) << n << " at " << offset;
      ASSERT_EQ(cksum_sse2(&data[offset], n, initial), expected);
      ASSERT_EQ(cksum_avx2(&data[offset], n, initial), expected);
    }
  }
  // All ones: the carries of every 64-bit lane add up; and 1 MB of random data.
  Bytes ones(9000, 0xff);
  EXPECT_EQ(cksum_generic(ones.data(), ones.size(), 0xffff),
            reference_checksum(ones.data(), 9000, 0xffff));
  EXPECT_EQ(cksum_avx2(ones.data(), ones.size(), 0xffff),
            reference_checksum(ones.data(), 9000, 0xffff));
  Bytes big(1 << 20);
  for (auto& b : big) b = static_cast<unsigned char>(random());
  EXPECT_EQ(cksum_avx2(big.data() + 1, big.size() - 1, 7),
            reference_checksum(big.data() + 1, big.size() - 1, 7));
  EXPECT_EQ(cksum_sse2(big.data() + 1, big.size() - 1, 7),
            reference_checksum(big.data() + 1, big.size() - 1, 7));
}

// The AVX2 path is the one in use wherever the CPU has AVX2 (as /proc/cpuinfo says).
TEST(Checksum, UsesAvx2WhenTheCpuHasIt) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line) && line.rfind("flags", 0) != 0) {
  }
  bool avx2 = line.find(" avx2") != std::string::npos;
  EXPECT_EQ(cksum_has_avx2(), avx2 ? 1 : 0) << line;
}

// The IP packets (from their IP header) of a pcap file with Ethernet framing.
std::vector<Bytes> ip_packets(const std::string& name) {
  std::ifstream in("tests/data/pcap/" + name, std::ios::binary);
  Bytes file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_GT(file.size(), 24u) << name;
  std::vector<Bytes> packets;
  auto le32 = [&file](size_t at) {
    uint32_t v;
    std::memcpy(&v, &file[at], 4);
    return v;
  };
  for (size_t at = 24; at + 16 <= file.size();) {
    uint32_t captured = le32(at + 8), wire = le32(at + 12);
    size_t frame = at + 16;
    at = frame + captured;
    if (at > file.size() || captured != wire || captured < 14) continue;  // whole frames only
    size_t ip = frame + 12;
    uint16_t type = file[ip] << 8 | file[ip + 1];
    if (type == 0x8100) {  // one VLAN tag
      ip += 4;
      type = file[ip] << 8 | file[ip + 1];
    }
    if (type != 0x0800 && type != 0x86dd) continue;
    packets.emplace_back(file.begin() + static_cast<long>(ip + 2),
                         file.begin() + static_cast<long>(at));
  }
  return packets;
}

TEST(Checksum, VerifiesRealTcpAndUdpPackets) {
  int verified = 0, ipv4_headers = 0;
  for (const char* name : {"v4.pcap", "v6.pcap", "tftp_wrq.pcap", "telnet-cooked.pcap",
                           "v6-tcp-udp.pcap", "tcp-ack-66-bytes.pcap"}) {
    for (Bytes& p : ip_packets(name)) {
      const auto* ip = reinterpret_cast<const int8_t*>(p.data());
      bool v4 = p[0] >> 4 == 4;
      size_t header = v4 ? (p[0] & 0x0f) * 4 : 40;
      size_t length =
          v4 ? (p[2] << 8 | p[3]) : 40 + (p[4] << 8 | p[5]);  // without Ethernet padding
      unsigned protocol = v4 ? p[9] : p[6];
      if (length > p.size()) continue;  // telnet-cooked.pcap has frames cut short after the headers
      if (v4) {
        ASSERT_EQ(cksum_generic(p.data(), header, 0), 0) << name;
        ++ipv4_headers;
      }
      uint32_t initial = pseudo_header_initial(ip, length);
      if (protocol != 6 && protocol != 17) {
        EXPECT_EQ(initial, 0xFFFF0001u) << name;
        continue;
      }
      // The pseudo-header as RFC 793/768/8200 spell it: addresses, protocol, L4 length.
      Bytes pseudo;
      if (v4) {
        pseudo.assign(p.begin() + 12, p.begin() + 20);
        pseudo.insert(pseudo.end(), {0, static_cast<unsigned char>(protocol),
                                     static_cast<unsigned char>((length - header) >> 8),
                                     static_cast<unsigned char>(length - header)});
      } else {
        pseudo.assign(p.begin() + 8, p.begin() + 40);
        pseudo.insert(pseudo.end(),
                      {0, 0, p[4], p[5], 0, 0, 0, static_cast<unsigned char>(protocol)});
      }
      ASSERT_EQ(initial,
                static_cast<uint16_t>(~reference_checksum(pseudo.data(), pseudo.size(), 0)))
          << name;
      if (protocol == 17 && p[header + 6] == 0 && p[header + 7] == 0) continue;  // no UDP checksum
      EXPECT_EQ(cksum_generic(p.data() + header, length - header, static_cast<uint16_t>(initial)),
                0)
          << name << ": a packet of " << length << " bytes";
      ++verified;
    }
  }
  EXPECT_GT(verified, 300);
  EXPECT_GT(ipv4_headers, 200);
}

// v4-tcp-udp.pcap was captured on loopback, where the kernel leaves checksums to offload: `tcpdump
// -vv` calls both wrong and says what they should be, 0x4a05 (TCP) and 0x343f (UDP).
TEST(Checksum, ComputesWhatTcpdumpExpectsOfOffloadedPackets) {
  std::vector<Bytes> packets = ip_packets("v4-tcp-udp.pcap");
  ASSERT_EQ(packets.size(), 2u);
  uint16_t expected[] = {0x4a05, 0x343f};
  size_t field[] = {16, 6};  // the checksum's offset in the TCP and UDP header
  for (int i = 0; i < 2; ++i) {
    Bytes& p = packets[i];
    size_t length = p[2] << 8 | p[3];
    uint32_t initial = pseudo_header_initial(reinterpret_cast<const int8_t*>(p.data()), length);
    EXPECT_NE(cksum_generic(p.data() + 20, length - 20, static_cast<uint16_t>(initial)), 0);
    p[20 + field[i]] = p[20 + field[i] + 1] = 0;
    EXPECT_EQ(cksum_generic(p.data() + 20, length - 20, static_cast<uint16_t>(initial)),
              expected[i]);
  }
}

TEST(Checksum, PseudoHeaderRefusesWhatItCannotSum) {
  Bytes p = ip_packets("v4-tcp-udp.pcap").at(0);
  const auto* ip = reinterpret_cast<const int8_t*>(p.data());
  EXPECT_LT(pseudo_header_initial(ip, p.size()), 0x10000u);
  p[8] ^= 1;  // the TTL: the header checksum no longer holds
  EXPECT_EQ(pseudo_header_initial(ip, p.size()), 0xFFFF0002u);
  p[0] = 0x55;  // not IPv4 or IPv6
  EXPECT_EQ(pseudo_header_initial(ip, p.size()), 0xFFFF0001u);
}

TEST(Checksum, IncrementalUpdatesMatchAFullSum) {
  for (Bytes p : ip_packets("v4.pcap")) {
    auto* checksum_cell = reinterpret_cast<uint16_t*>(&p[10]);
    size_t header = (p[0] & 0x0f) * 4;
    uint16_t ttl_protocol = p[8] << 8 | p[9];
    checksum_update_incremental_16(checksum_cell, reinterpret_cast<uint16_t*>(&p[8]),
                                   static_cast<uint16_t>(ttl_protocol - 0x100));  // TTL - 1
    EXPECT_EQ(p[8], (ttl_protocol >> 8) - 1);
    EXPECT_EQ(cksum_generic(p.data(), header, 0), 0);
    checksum_update_incremental_32(checksum_cell, reinterpret_cast<uint32_t*>(&p[16]), 0xc0a80101);
    EXPECT_EQ(p[16], 192);
    EXPECT_EQ(p[19], 1);
    EXPECT_EQ(cksum_generic(p.data(), header, 0), 0);
    uint16_t stored = *checksum_cell;
    *checksum_cell = 0;
    EXPECT_EQ(htons(cksum_generic(p.data(), header, 0)), stored);
  }
}

TEST(SeqNo, AcceptsEachNumberOnceWithinTheWindow) {
  constexpr uint32_t kWindow = 128;
  std::array<uint8_t, kWindow / 8> window{};
  uint64_t t = 0;
  auto receive = [&](uint32_t lo) {
    int64_t hi = check_seq_no(lo, t, window.data(), kWindow);
    if (hi >= 0) t = track_seq_no(static_cast<uint32_t>(hi), lo, t, window.data(), kWindow);
    return hi;
  };
  EXPECT_EQ(receive(0xfffffff0), -1);  // below zero: nothing precedes the first subspace
  EXPECT_EQ(receive(1), 0);
  EXPECT_EQ(receive(1), -1);  // replayed
  EXPECT_EQ(receive(5), 0);
  EXPECT_EQ(receive(3), 0);  // late but within the window
  EXPECT_EQ(receive(3), -1);
  EXPECT_EQ(t, 5u);
  EXPECT_EQ(receive(1000), 0);
  EXPECT_EQ(receive(1000 - kWindow + 1), 0);  // the window's first number, unseen
  EXPECT_EQ(receive(1000 - kWindow + 1), -1);
  EXPECT_EQ(receive(0xfffffff0), 0);  // far ahead in the same subspace (the ICV decides)
  // Across 2^32: the high half is inferred from the window's position.
  t = 0xfffffff0;
  window.fill(0);
  EXPECT_EQ(receive(0xfffffff8), 0);
  EXPECT_EQ(receive(4), 1);
  EXPECT_EQ(t, 0x100000004u);
  EXPECT_EQ(receive(0xfffffff9), 0);  // late, from the previous subspace
  EXPECT_EQ(receive(0xfffffff8), -1);
  EXPECT_EQ(receive(4), -1);
  // A jump of more than the window forgets it all.
  EXPECT_EQ(receive(5000), 1);
  EXPECT_EQ(receive(4999), 1);
}

TEST(Shmem, GrowsAndAttachesAFile) {
  char path[] = "/tmp/snabb_shmem_test.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  // LuaJIT passes a Lua io file given as void* as its FILE*.
  FILE* writer = std::fopen(path, "w+");
  FILE* reader = std::fopen(path, "r");
  char* base = shmem_grow(writer, nullptr, 0, 100);
  ASSERT_NE(base, nullptr);
  std::strcpy(base + 90, "kept");
  base = shmem_grow(writer, base, 100, 10000);
  ASSERT_NE(base, nullptr);
  EXPECT_STREQ(base + 90, "kept");
  std::strcpy(base + 9000, "far");
  char* view = shmem_attach(reader, 10000);
  ASSERT_NE(view, nullptr);
  EXPECT_STREQ(view + 90, "kept");
  EXPECT_STREQ(view + 9000, "far");
  EXPECT_TRUE(shmem_unmap(view, 10000));
  EXPECT_TRUE(shmem_unmap(base, 10000));
  EXPECT_EQ(shmem_attach(nullptr, 100), nullptr);
  std::fclose(writer);
  std::fclose(reader);
  unlink(path);
}

TEST(MacTable, LearnsLooksUpAndSortsPackets) {
  constexpr int kBuckets = 4;
  // Two tables of four buckets, as mac_table.lua allocates them (one header, then the buckets).
  struct Table {
    snabb_mac_hash_table table;
    snabb_mac_entry more[kBuckets - 1][SNABB_MAC_BUCKET_SIZE];
  };
  Table main{}, shadow{};
  snabb_mac_hash_table* tables[2] = {&main.table, &shadow.table};
  mac_table_insert(0xa1, 1, 0, tables, 2);
  mac_table_insert(0xa2, 2, 7, tables, 2);
  mac_table_insert(0xa1, 3, 0, tables, 2);  // moved to port 3
  EXPECT_EQ(main.table.entries, 2u);
  EXPECT_EQ(shadow.table.ubuckets, 1u);
  snabb_mac_entry* bucket = snabb_mac_bucket(&main.table, 2);
  EXPECT_EQ(mac_table_lookup(0xa1, bucket)->port, 3);
  EXPECT_EQ(mac_table_lookup(0xa2, bucket)->group, 7);
  EXPECT_EQ(mac_table_lookup(0xa3, bucket)->port, 0);
  EXPECT_EQ(mac_table_lookup(0xa1, snabb_mac_bucket(&main.table, 1))->port, 0);
  for (uint64_t mac = 0xb0; mac < 0xb0 + SNABB_MAC_BUCKET_SIZE; ++mac) {
    mac_table_insert(mac, 4, 0, tables, 3);
  }
  EXPECT_EQ(main.table.overflow, 0);
  mac_table_insert(0xc0, 4, 0, tables, 3);
  EXPECT_EQ(main.table.overflow, 1);
  EXPECT_EQ(mac_table_lookup(0xc0, snabb_mac_bucket(&main.table, 3))->port, 0);

  // Forwarding tables of 4 entries; unicast entries own a one-port list.
  struct Pft {
    snabb_pft pft;
    snabb_pft_entry more[3];
  };
  Pft ucast{}, flood{}, discard{};
  snabb_port_list lists[4]{};
  for (int i = 0; i < 4; ++i) (i ? ucast.more[i - 1] : ucast.pft.entries[0]).plist = &lists[i];
  snabb_pft* pfts[3] = {&ucast.pft, &flood.pft, &discard.pft};
  snabb_port_list flood_list{};
  auto* p = reinterpret_cast<struct packet*>(&flood_list);  // any address stands for a packet
  mac_table_lookup_pft(0xa1, bucket, 1, 0, p, pfts, &flood_list);  // to port 3
  mac_table_lookup_pft(0xa1, bucket, 3, 0, p, pfts, &flood_list);  // came from port 3
  mac_table_lookup_pft(0xa2, bucket, 5, 7, p, pfts, &flood_list);  // same group 7
  mac_table_lookup_pft(0xa9, bucket, 1, 0, p, pfts, &flood_list);  // unknown
  EXPECT_EQ(ucast.pft.length, 1);
  EXPECT_EQ(lists[0].ports[0], 3);
  EXPECT_EQ(ucast.pft.entries[0].p, p);
  EXPECT_EQ(discard.pft.length, 2);
  EXPECT_EQ(flood.pft.length, 1);
  EXPECT_EQ(flood.pft.entries[0].plist, &flood_list);
}

TEST(Lpm, Lookups248AndDxr) {
  // 10.0.0.0/8 -> 1, 10.1.2.128/25 -> 2 (block 1 of the little table).
  std::vector<uint16_t> big(1 << 24), little(512);
  std::vector<uint32_t> big32(1 << 24), little32(512);
  for (uint32_t i = 0x0a0000; i < 0x0b0000; ++i) big[i] = big32[i] = 1;
  big[0x0a0102] = 0x8001;
  big32[0x0a0102] = 0x80000001;
  for (int i = 0; i < 256; ++i) little[256 + i] = little32[256 + i] = i >= 128 ? 2 : 1;
  EXPECT_EQ(lpm4_248_search(0x0a0203ff, big.data(), little.data()), 1);
  EXPECT_EQ(lpm4_248_search(0x0a010281, big.data(), little.data()), 2);
  EXPECT_EQ(lpm4_248_search(0x0a01027f, big.data(), little.data()), 1);
  EXPECT_EQ(lpm4_248_search(0x0b000000, big.data(), little.data()), 0);
  EXPECT_EQ(lpm4_248_search32(0x0a010281, big32.data(), little32.data()), 2u);
  // DXR over 0.0.0.0/0 -> 7 and 10.1.0.0/17 -> 9: intervals ending at 10.0.255.255 (7),
  // 10.1.127.255 (9), 255.255.255.255 (7); each /16's range of them.
  std::vector<uint16_t> ints = {0xffff, 0x7fff, 0xffff}, keys = {7, 9, 7};
  std::vector<uint32_t> bottoms(1 << 16), tops(1 << 16);
  for (uint32_t i = 0; i < (1 << 16); ++i) {
    bottoms[i] = tops[i] = i <= 0x0a00 ? 0 : 2;
  }
  bottoms[0x0a01] = 1;
  tops[0x0a01] = 2;
  auto dxr = [&](uint32_t ip) {
    return lpm4_dxr_search(ip, ints.data(), keys.data(), bottoms.data(), tops.data());
  };
  EXPECT_EQ(dxr(0x0a00ffff), 7);
  EXPECT_EQ(dxr(0x0a010000), 9);
  EXPECT_EQ(dxr(0x0a017fff), 9);
  EXPECT_EQ(dxr(0x0a018000), 7);
  EXPECT_EQ(dxr(0xc0a80001), 7);
}

}  // namespace
}  // namespace snabb::lib
