#include "apps/pcap/pcap_file.h"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace snabb::pcap {

using runtime::packet_set_timestamp;
using runtime::packet_timestamp;

namespace {

constexpr uint32_t kPcapngMagic = 0x0a0d0d0a;
constexpr uint32_t kSnaplen = 262144;  // what tcpdump writes
constexpr uint64_t kNanosPerSecond = 1'000'000'000;

bool is_pcap_magic(uint32_t m) {
  // Microsecond and nanosecond variants, in either byte order.
  return m == 0xa1b2c3d4 || m == 0xd4c3b2a1 || m == 0xa1b23c4d || m == 0x4d3cb2a1;
}

uint32_t swap32(uint32_t v) { return __builtin_bswap32(v); }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

}  // namespace

void PcapCloser::operator()(::pcap* p) const { pcap_close(p); }
void DumperCloser::operator()(::pcap_dumper* d) const { pcap_dump_close(d); }

PcapFileReader::PcapFileReader(std::string path) : path_(std::move(path)) {
  fd_.fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_.fd < 0) fail(std::strerror(errno));
  struct stat st {};
  if (fstat(fd_.fd, &st) != 0) fail(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("is a directory");
  if (st.st_size == 0) fail("empty file (no pcap header)");
  uint32_t magic = 0;
  if (pread(fd_.fd, &magic, sizeof magic, 0) == sizeof magic) {
    pcapng_ = magic == kPcapngMagic;
    if (!pcapng_ && !is_pcap_magic(magic)) {
      fail("not a pcap or pcapng file (it starts with " + hex32(swap32(magic)) + ")");
    }
  }
  // First pass: check every record. Second: the handle that next() reads from.
  PcapHandle check = open_checked();
  const ::pcap_pkthdr* header;
  const uint8_t* data;
  while (read_record(check.get(), &header, &data)) records_++;
  handle_ = open_checked();
  position_ = 0;
}

PcapFileReader::Fd::~Fd() {
  if (fd >= 0) ::close(fd);
}

void PcapFileReader::fail(const std::string& what) const {
  throw std::runtime_error(path_ + ": " + what);
}

PcapHandle PcapFileReader::open_checked() const {
  char err[PCAP_ERRBUF_SIZE] = "";
  PcapHandle h(
      pcap_open_offline_with_tstamp_precision(path_.c_str(), PCAP_TSTAMP_PRECISION_NANO, err));
  if (!h) fail(err);
  const int dlt = pcap_datalink(h.get());
  if (dlt != DLT_EN10MB) {
    const char* name = pcap_datalink_val_to_name(dlt);
    const char* description = pcap_datalink_val_to_description(dlt);
    fail("link type " + std::string(name ? name : std::to_string(dlt)) +
         (description ? " (" + std::string(description) + ")" : "") +
         " is not Ethernet; only Ethernet captures can be read");
  }
  return h;
}

bool PcapFileReader::read_record(::pcap* h, const ::pcap_pkthdr** header, const uint8_t** data) {
  const std::string record = "record " + std::to_string(position_ + 1) + ": ";
  // libpcap quietly cuts a classic pcap record down to the snapshot length, so look at the
  // record header as written before libpcap reads it.
  if (!pcapng_) {
    uint32_t fields[4];  // ts_sec, ts_frac, incl_len, orig_len
    const long offset = std::ftell(pcap_file(h));
    if (offset >= 0 && pread(fd_.fd, fields, sizeof fields, offset) == sizeof fields) {
      uint32_t incl = fields[2], orig = fields[3];
      if (pcap_is_swapped(h)) incl = swap32(incl), orig = swap32(orig);
      const uint32_t snaplen = static_cast<uint32_t>(pcap_snapshot(h));
      if (incl > snaplen) {
        fail(record + "captured length " + std::to_string(incl) +
             " is larger than the file's snapshot length " + std::to_string(snaplen));
      }
      if (incl > orig) {
        fail(record + "captured length " + std::to_string(incl) +
             " is larger than the packet's length " + std::to_string(orig));
      }
    }
  }
  const int rc = pcap_next_ex(h, const_cast<::pcap_pkthdr**>(header), data);
  if (rc == PCAP_ERROR_BREAK) return false;
  if (rc != 1) fail(record + pcap_geterr(h));
  const uint32_t caplen = (*header)->caplen;
  if (caplen > PACKET_PAYLOAD_SIZE) {
    fail(record + std::to_string(caplen) + " bytes, more than the " +
         std::to_string(PACKET_PAYLOAD_SIZE) + "-byte packet maximum");
  }
  if (caplen > (*header)->len) {
    fail(record + "captured length " + std::to_string(caplen) +
         " is larger than the packet's length " + std::to_string((*header)->len));
  }
  position_++;
  return true;
}

bool PcapFileReader::next(packet* p) {
  const ::pcap_pkthdr* header;
  const uint8_t* data;
  if (!read_record(handle_.get(), &header, &data)) return false;
  std::memcpy(p->data, data, header->caplen);
  p->length = static_cast<uint16_t>(header->caplen);
  // With nanosecond precision requested, libpcap puts nanoseconds in tv_usec.
  packet_set_timestamp(p, static_cast<uint64_t>(header->ts.tv_sec) * kNanosPerSecond +
                              static_cast<uint64_t>(header->ts.tv_usec));
  return true;
}

PcapFileWriter::PcapFileWriter(std::string path, bool nanosecond)
    : path_(std::move(path)), nanosecond_(nanosecond) {
  dead_.reset(pcap_open_dead_with_tstamp_precision(
      DLT_EN10MB, kSnaplen, nanosecond ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO));
  if (!dead_) throw std::runtime_error(path_ + ": libpcap could not start a capture file");
  dumper_.reset(pcap_dump_open(dead_.get(), path_.c_str()));
  // libpcap's message names the file already ("PATH: No such file or directory").
  if (!dumper_) throw std::runtime_error(pcap_geterr(dead_.get()));
}

void PcapFileWriter::write(packet* p, uint64_t now_ns) {
  uint64_t ns = now_ns;
  packet_timestamp(p, &ns);
  ::pcap_pkthdr header{};
  header.ts.tv_sec = static_cast<time_t>(ns / kNanosPerSecond);
  header.ts.tv_usec =
      static_cast<suseconds_t>(nanosecond_ ? ns % kNanosPerSecond : ns % kNanosPerSecond / 1000);
  header.caplen = header.len = p->length;
  pcap_dump(reinterpret_cast<u_char*>(dumper_.get()), &header, p->data);
}

void PcapFileWriter::flush() {
  if (!dumper_) return;
  FILE* f = pcap_dump_file(dumper_.get());
  if (pcap_dump_flush(dumper_.get()) != 0 || std::ferror(f)) {
    throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
  }
}

void PcapFileWriter::close() {
  if (!dumper_) return;
  flush();
  dumper_.reset();
}

}  // namespace snabb::pcap

namespace {

template <typename F>
auto with_error(char* err, size_t errlen, auto failed, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    std::snprintf(err, errlen, "%s", e.what());
    return failed;
  }
}

}  // namespace

struct snabb_pcap_reader : snabb::pcap::PcapFileReader {
  using PcapFileReader::PcapFileReader;
};
struct snabb_pcap_writer : snabb::pcap::PcapFileWriter {
  using PcapFileWriter::PcapFileWriter;
};

extern "C" {

snabb_pcap_reader* snabb_pcap_reader_open(const char* path, char* err, size_t errlen) {
  return with_error(err, errlen, static_cast<snabb_pcap_reader*>(nullptr),
                    [&] { return std::make_unique<snabb_pcap_reader>(path).release(); });
}

int snabb_pcap_reader_next(snabb_pcap_reader* r, packet* p, char* err, size_t errlen) {
  return with_error(err, errlen, -1, [&] { return r->next(p) ? 1 : 0; });
}

uint64_t snabb_pcap_reader_records(snabb_pcap_reader* r) { return r->records(); }

void snabb_pcap_reader_close(snabb_pcap_reader* r) { std::unique_ptr<snabb_pcap_reader> owned(r); }

snabb_pcap_writer* snabb_pcap_writer_open(const char* path, int nanosecond, char* err,
                                          size_t errlen) {
  return with_error(err, errlen, static_cast<snabb_pcap_writer*>(nullptr), [&] {
    return std::make_unique<snabb_pcap_writer>(path, nanosecond != 0).release();
  });
}

void snabb_pcap_writer_write(snabb_pcap_writer* w, packet* p, uint64_t now_ns) {
  w->write(p, now_ns);
}

int snabb_pcap_writer_flush(snabb_pcap_writer* w, char* err, size_t errlen) {
  return with_error(err, errlen, -1, [&] {
    w->flush();
    return 0;
  });
}

int snabb_pcap_writer_close(snabb_pcap_writer* w, char* err, size_t errlen) {
  std::unique_ptr<snabb_pcap_writer> owned(w);
  return with_error(err, errlen, -1, [&] {
    owned->close();
    return 0;
  });
}
}
