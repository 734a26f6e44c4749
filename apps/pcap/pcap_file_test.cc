// PcapFileReader/PcapFileWriter on real captures (tests/data/pcap) and on captures broken in each
// way the reader must refuse with a message.
#include "apps/pcap/pcap_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace snabb::apps::pcap {
namespace {

using runtime::packet_allocate;
using runtime::packet_free;
using runtime::packet_timestamp;

using Bytes = std::vector<char>;
const std::string kData = "tests/data/pcap/";

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

class PcapFileTest : public ::testing::Test {
 protected:
  std::string temp(const std::string& name) {
    auto dir =
        std::filesystem::temp_directory_path() / ("pcap_file_test." + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    dirs_.push_back(dir);
    return (dir / name).string();
  }
  std::string write_temp(const std::string& name, const Bytes& bytes) {
    const std::string path = temp(name);
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<long>(bytes.size()));
    return path;
  }
  // The message PcapFileReader throws for path (the test fails if it throws none).
  static std::string error_of(const std::string& path) {
    try {
      PcapFileReader reader(path);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    ADD_FAILURE() << path << " was accepted";
    return "";
  }
  void TearDown() override {
    for (auto& d : dirs_) std::filesystem::remove_all(d);
  }
  std::vector<std::filesystem::path> dirs_;
};

struct Record {
  uint64_t ns;
  std::string bytes;
};

std::vector<Record> read_all(const std::string& path) {
  PcapFileReader reader(path);
  std::vector<Record> records;
  packet* p = packet_allocate();
  while (reader.next(p)) {
    uint64_t ns = 0;
    EXPECT_TRUE(packet_timestamp(p, &ns));
    records.push_back({ns, std::string(reinterpret_cast<char*>(p->data), p->length)});
    packet_free(p);
    p = packet_allocate();
  }
  packet_free(p);
  EXPECT_EQ(records.size(), reader.records());
  return records;
}

TEST_F(PcapFileTest, ReadsRecordsWithNanosecondTimestamps) {
  const auto records = read_all(kData + "v4.pcap");
  ASSERT_EQ(records.size(), 43u);  // tcpdump -nr v4.pcap | wc -l
  // tcpdump -tt: the first record is 1084443427.311224 (microsecond file), 62 bytes.
  EXPECT_EQ(records[0].ns, 1084443427311224000ull);
  EXPECT_EQ(records[0].bytes.size(), 62u);
  EXPECT_EQ(read_all(kData + "empty.pcap").size(), 0u);
}

TEST_F(PcapFileTest, WriterRoundTripsRecordsAndTimestamps) {
  for (const char* name : {"v4.pcap", "v6.pcap", "tftp_wrq.pcap"}) {
    for (bool nano : {false, true}) {
      const auto original = read_all(kData + name);
      const std::string out = temp(std::string(name) + (nano ? ".ns" : ".us"));
      {
        PcapFileWriter writer(out, nano);
        PcapFileReader reader(kData + name);
        packet* p = packet_allocate();
        while (reader.next(p)) writer.write(p, 0);
        packet_free(p);
        writer.close();
      }
      const auto copy = read_all(out);
      ASSERT_EQ(copy.size(), original.size()) << name;
      for (size_t i = 0; i < copy.size(); ++i) {
        EXPECT_EQ(copy[i].bytes, original[i].bytes) << name << " record " << i;
        EXPECT_EQ(copy[i].ns, original[i].ns) << name << " record " << i;
      }
    }
  }
}

TEST_F(PcapFileTest, WriterStampsPacketsWithoutTimestamp) {
  const std::string out = temp("stamped.pcap");
  PcapFileWriter writer(out, true);
  packet* p = packet_allocate();
  p->length = 60;
  writer.write(p, 1'700'000'000'123'456'789ull);
  packet_free(p);
  writer.close();
  const auto records = read_all(out);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].ns, 1'700'000'000'123'456'789ull);
}

// v4.pcap's records as a pcapng file: section header, one Ethernet interface with nanosecond
// timestamps, an enhanced packet block per record.
Bytes as_pcapng(const std::vector<Record>& records) {
  Bytes out;
  auto u32 = [&](uint32_t v) {
    out.insert(out.end(), reinterpret_cast<char*>(&v), reinterpret_cast<char*>(&v) + 4);
  };
  auto u16 = [&](uint16_t v) {
    out.insert(out.end(), reinterpret_cast<char*>(&v), reinterpret_cast<char*>(&v) + 2);
  };
  u32(0x0a0d0d0a), u32(28), u32(0x1a2b3c4d), u16(1), u16(0), u32(0xffffffff), u32(0xffffffff),
      u32(28);
  // Interface: link type 1 (Ethernet), snaplen 0 (none); option if_tsresol (9) = 9 (ns).
  u32(1), u32(32), u16(1), u16(0), u32(0), u16(9), u16(1), u32(9), u16(0), u16(0), u32(32);
  for (const Record& r : records) {
    const uint32_t padded = (r.bytes.size() + 3) & ~3u, length = 32 + padded;
    u32(6), u32(length), u32(0), u32(static_cast<uint32_t>(r.ns >> 32)),
        u32(static_cast<uint32_t>(r.ns)), u32(r.bytes.size()), u32(r.bytes.size());
    out.insert(out.end(), r.bytes.begin(), r.bytes.end());
    out.resize(out.size() + padded - r.bytes.size(), 0);
    u32(length);
  }
  return out;
}

TEST_F(PcapFileTest, ReadsPcapng) {
  const auto original = read_all(kData + "v4.pcap");
  const auto copy = read_all(write_temp("v4.pcapng", as_pcapng(original)));
  ASSERT_EQ(copy.size(), original.size());
  for (size_t i = 0; i < copy.size(); ++i) {
    EXPECT_EQ(copy[i].bytes, original[i].bytes) << i;
    EXPECT_EQ(copy[i].ns, original[i].ns) << i;
  }
}

TEST_F(PcapFileTest, RefusesOtherLinkTypes) {
  EXPECT_NE(error_of(kData + "loopback-sll.pcap").find("link type LINUX_SLL2"), std::string::npos);
}

TEST_F(PcapFileTest, RefusesMalformedCaptures) {
  const Bytes good = read_file(kData + "v4.pcap");
  ASSERT_GT(good.size(), 100u);
  auto expect_error = [&](const std::string& name, const Bytes& bytes, const std::string& text) {
    const std::string path = write_temp(name, bytes);
    const std::string message = error_of(path);
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;  // names the file
    EXPECT_NE(message.find(text), std::string::npos) << name << ": " << message;
  };
  expect_error("empty", {}, "empty file");
  Bytes magic = good;
  magic[0] = 'X';
  expect_error("magic", magic, "not a pcap or pcapng file");
  expect_error("short-header", Bytes(good.begin(), good.begin() + 10), "truncated");
  // First record header ends at 24 + 16; cut inside it, then inside its data.
  expect_error("short-record-header", Bytes(good.begin(), good.begin() + 24 + 7),
               "record 1: truncated");
  expect_error("short-record", Bytes(good.begin(), good.end() - 10), "record 43: truncated");
  // caplen (bytes 32..35 of the file, little-endian) beyond the snapshot length 65535.
  Bytes big = good;
  const uint32_t huge = 70000;
  std::memcpy(&big[32], &huge, 4);
  std::memcpy(&big[36], &huge, 4);
  expect_error("caplen-snaplen", big,
               "record 1: captured length 70000 is larger than the file's snapshot length 65535");
  // caplen larger than the packet's own length.
  Bytes longer = good;
  const uint32_t small = 10;
  std::memcpy(&longer[36], &small, 4);
  expect_error("caplen-len", longer,
               "record 1: captured length 62 is larger than the packet's length 10");
  // A record larger than a packet can hold, in a file whose snapshot length allows it.
  Bytes jumbo(good.begin(), good.begin() + 24);
  const uint32_t snaplen = 65535, length = 20000;
  std::memcpy(&jumbo[16], &snaplen, 4);
  const uint32_t header[4] = {1, 0, length, length};
  jumbo.insert(jumbo.end(), reinterpret_cast<const char*>(header),
               reinterpret_cast<const char*>(header) + sizeof header);
  jumbo.resize(jumbo.size() + length, 0);
  expect_error("jumbo", jumbo, "record 1: 20000 bytes, more than the 10240-byte packet maximum");
}

// orig_len of each record of a pcap file in our byte order, read from the file itself.
std::vector<uint32_t> wire_lengths(const std::string& path) {
  const Bytes bytes = read_file(path);
  std::vector<uint32_t> lengths;
  for (size_t offset = 24; offset + 16 <= bytes.size();) {
    uint32_t fields[4];
    std::memcpy(fields, &bytes[offset], sizeof fields);
    lengths.push_back(fields[3]);
    offset += 16 + fields[2];
  }
  return lengths;
}

TEST_F(PcapFileTest, WriterKeepsTheWireLengthOfSnappedRecords) {
  // tcpdump -e -r icmp-snapped.pcap: six 1042-byte frames, 128 bytes of each captured.
  const std::string out = temp("snapped.pcap");
  PcapFileWriter writer(out, false);
  PcapFileReader reader(kData + "icmp-snapped.pcap");
  packet* p = packet_allocate();
  for (int i = 0; reader.next(p); ++i) {
    EXPECT_EQ(p->length, 128);
    uint32_t wire = 0;
    EXPECT_TRUE(runtime::packet_wire_length(p, &wire));
    EXPECT_EQ(wire, 1042u);
    if (i == 5) p->length = 100;  // a changed packet is a frame of its own length
    writer.write(p, 0);
  }
  packet_free(p);
  writer.close();
  EXPECT_EQ(wire_lengths(out), (std::vector<uint32_t>{1042, 1042, 1042, 1042, 1042, 100}));
  // Records that were not cut short carry no wire length of their own.
  PcapFileReader whole(kData + "v4.pcap");
  p = packet_allocate();
  ASSERT_TRUE(whole.next(p));
  EXPECT_FALSE(p->headroom & PACKET_SNAPPED);
  packet_free(p);
}

// A write that fails part way (here: at the file size limit) leaves the file at its last whole
// record, and says why.
TEST_F(PcapFileTest, WriterCutsAFailedWriteBackToWholeRecords) {
  const std::string out = temp("limited.pcap");
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto saved_handler = signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
  rlimit limited = saved;
  limited.rlim_cur = 100'000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  std::string error;
  {
    PcapFileWriter writer(out, false);
    packet* p = packet_allocate();
    try {
      for (int loop = 0; loop < 100; ++loop) {  // v6.pcap is 40 KB
        PcapFileReader reader(kData + "v6.pcap");
        while (reader.next(p)) writer.write(p, 0);
      }
      writer.flush();
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    packet_free(p);
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, saved_handler);
  EXPECT_NE(error.find(out + ": write failed: File too large"), std::string::npos) << error;
  const auto size = std::filesystem::file_size(out);
  EXPECT_LE(size, 100'000u);
  EXPECT_GT(read_all(out).size(), 0u);  // and no "truncated" error
}

TEST_F(PcapFileTest, WriterNamesTheFileItCannotCreate) {
  try {
    PcapFileWriter writer("/nonexistent-dir/out.pcap", false);
    FAIL() << "opened a file in a missing directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/out.pcap: "), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace snabb::apps::pcap
