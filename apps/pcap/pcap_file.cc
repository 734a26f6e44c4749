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

namespace snabb::apps::pcap {

using runtime::packet_set_timestamp;
using runtime::packet_set_wire_length;
using runtime::packet_timestamp;
using runtime::packet_wire_length;

namespace {

constexpr uint32_t kPcapngMagic = 0x0a0d0d0a;
constexpr uint32_t kSnaplen = 262144;  // what tcpdump writes
constexpr uint64_t kNanosPerSecond = 1'000'000'000;
// Records a writer keeps before handing them to write(2): at 64-byte frames, a write(2) per 3,600
// packets.
constexpr size_t kWriteBuffer = 256 << 10;

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

int FileDescriptor::reset(int fd) {
  const int old = std::exchange(fd_, fd);
  return old >= 0 ? ::close(old) : 0;
}

PcapFileReader::PcapFileReader(std::string path) : path_(std::move(path)) {
  fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd_.get() < 0) fail(std::strerror(errno));
  struct stat st {};
  if (fstat(fd_.get(), &st) != 0) fail(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("is a directory");
  if (st.st_size == 0) fail("empty file (no pcap header)");
  uint32_t magic = 0;
  if (pread(fd_.get(), &magic, sizeof magic, 0) == sizeof magic) {
    pcapng_ = magic == kPcapngMagic;
    if (!pcapng_ && !is_pcap_magic(magic)) {
      fail("not a pcap or pcapng file (it starts with " + hex32(swap32(magic)) + ")");
    }
  }
  // First pass: check every record. Second: the handle that next() reads from.
  PcapHandle check = open_checked();
  const ::pcap_pkthdr* header;
  const uint8_t* data;
  while (read_record(check.get(), &header, &data)) {
    records_++;
    bytes_ += header->caplen;
  }
  handle_ = open_checked();
  position_ = 0;
  offset_ = kFileHeader;
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
  const int rc = pcap_next_ex(h, const_cast<::pcap_pkthdr**>(header), data);
  if (rc == PCAP_ERROR_BREAK) return false;
  const auto record = [&] { return "record " + std::to_string(position_ + 1) + ": "; };
  // libpcap quietly cuts a classic pcap record down to the snapshot length, so a record of that
  // length, or one libpcap refused, gets its header read as written (one pread; other records need
  // no system call: with ftell and pread for every record, PcapReader took 30,000 cycles a packet).
  if (!pcapng_) {
    uint32_t incl = rc == 1 ? (*header)->caplen : 0;
    const uint32_t snaplen = static_cast<uint32_t>(pcap_snapshot(h));
    uint32_t fields[4];  // ts_sec, ts_frac, incl_len, orig_len
    if ((rc != 1 || incl >= snaplen) &&
        pread(fd_.get(), fields, sizeof fields, static_cast<off_t>(offset_)) == sizeof fields) {
      incl = fields[2];
      uint32_t orig = fields[3];
      if (pcap_is_swapped(h)) incl = swap32(incl), orig = swap32(orig);
      if (incl > snaplen) {
        fail(record() + "captured length " + std::to_string(incl) +
             " is larger than the file's snapshot length " + std::to_string(snaplen));
      }
      if (incl > orig) {
        fail(record() + "captured length " + std::to_string(incl) +
             " is larger than the packet's length " + std::to_string(orig));
      }
    }
    offset_ += sizeof fields + incl;
  }
  if (rc != 1) fail(record() + pcap_geterr(h));
  const uint32_t caplen = (*header)->caplen;
  if (caplen > PACKET_PAYLOAD_SIZE) {
    fail(record() + std::to_string(caplen) + " bytes, more than the " +
         std::to_string(PACKET_PAYLOAD_SIZE) + "-byte packet maximum");
  }
  if (caplen > (*header)->len) {
    fail(record() + "captured length " + std::to_string(caplen) +
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
  if (header->len > header->caplen) packet_set_wire_length(p, header->len);
  // With nanosecond precision requested, libpcap puts nanoseconds in tv_usec.
  packet_set_timestamp(p, static_cast<uint64_t>(header->ts.tv_sec) * kNanosPerSecond +
                              static_cast<uint64_t>(header->ts.tv_usec));
  return true;
}

namespace {

// Hands n bytes to write(2) until all are written: 0, or the errno of the failure with *written
// saying how many were.
int write_all(int fd, const uint8_t* data, size_t n, size_t* written) {
  *written = 0;
  while (*written < n) {
    const ssize_t w = ::write(fd, data + *written, n - *written);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : ENOSPC;
    *written += static_cast<size_t>(w);
  }
  return 0;
}

}  // namespace

PcapFileWriter::PcapFileWriter(std::string path, bool nanosecond, bool append)
    : path_(std::move(path)), nanosecond_(nanosecond), buffer_(kWriteBuffer) {
  fd_.reset(::open(path_.c_str(), (append ? O_RDWR : O_WRONLY | O_TRUNC) | O_CREAT | O_CLOEXEC,
                   0666));  // (append reads the header)
  if (fd_.get() < 0) fail("", errno);
  // The file header libpcap writes: magic (in our byte order), version 2.4, time zone 0, sigfigs
  // 0, snapshot length, link type Ethernet.
  const uint32_t header[6] = {
      nanosecond ? 0xa1b23c4du : 0xa1b2c3d4u, 2 | (4u << 16), 0, 0, kSnaplen, DLT_EN10MB};
  struct stat st {};
  if (append && fstat(fd_.get(), &st) == 0 && st.st_size >= static_cast<off_t>(sizeof header)) {
    // Only whole records were ever written (flush), so the file ends at a record boundary.
    uint32_t old[6];
    if (pread(fd_.get(), old, sizeof old, 0) != sizeof old || old[0] != header[0] ||
        old[5] != header[5]) {
      fd_.reset();
      throw std::runtime_error(path_ + ": not appended to: it is not a pcap file of " +
                               (nanosecond ? "nanosecond" : "microsecond") +
                               " timestamps and Ethernet frames as this writer makes");
    }
    size_ = static_cast<size_t>(lseek(fd_.get(), 0, SEEK_END));
    return;
  }
  if (append && ftruncate(fd_.get(), 0) != 0) fail("", errno);
  if (const int error =
          write_all(fd_.get(), reinterpret_cast<const uint8_t*>(header), sizeof header, &size_)) {
    fail("write failed: ", error);
  }
}

void PcapFileWriter::fail(const std::string& what, int error) const {
  throw std::runtime_error(path_ + ": " + what + std::strerror(error));
}

void PcapFileWriter::write(packet* p, uint64_t now_ns) {
  uint64_t ns = now_ns;
  packet_timestamp(p, &ns);
  uint32_t wire = p->length;
  packet_wire_length(p, &wire);
  const uint32_t header[4] = {
      static_cast<uint32_t>(ns / kNanosPerSecond),
      static_cast<uint32_t>(nanosecond_ ? ns % kNanosPerSecond : ns % kNanosPerSecond / 1000),
      p->length, wire};
  if (used_ + sizeof header + p->length > buffer_.size()) flush();
  std::memcpy(buffer_.data() + used_, header, sizeof header);
  std::memcpy(buffer_.data() + used_ + sizeof header, p->data, p->length);
  used_ += sizeof header + p->length;
}

// Whole records only: if write(2) fails part way (disk full, file size limit), the file is cut
// back to the last record written whole and the rest of the buffer is dropped.
void PcapFileWriter::flush() {
  if (fd_.get() < 0) return;
  size_t written = 0;
  const int error = write_all(fd_.get(), buffer_.data(), used_, &written);
  if (error == 0) {
    size_ += used_;
    used_ = 0;
    return;
  }
  size_t whole = 0;  // bytes of the records written whole
  for (;;) {
    uint32_t caplen;
    if (whole + 16 > written) break;
    std::memcpy(&caplen, buffer_.data() + whole + 8, sizeof caplen);
    if (whole + 16 + caplen > written) break;
    whole += 16 + caplen;
  }
  if (whole < written && ftruncate(fd_.get(), static_cast<off_t>(size_ + whole)) == 0) {
    lseek(fd_.get(), static_cast<off_t>(size_ + whole), SEEK_SET);
  }
  size_ += whole;
  used_ = 0;
  fail("write failed: ", error);
}

void PcapFileWriter::close() {
  if (fd_.get() < 0) return;
  flush();
  if (fd_.reset() != 0) fail("close failed: ", errno);
}

}  // namespace snabb::apps::pcap

using snabb::runtime::c_call;

struct pcap_reader : snabb::apps::pcap::PcapFileReader {
  using PcapFileReader::PcapFileReader;
};
struct pcap_writer : snabb::apps::pcap::PcapFileWriter {
  using PcapFileWriter::PcapFileWriter;
  std::string error;  // of a failed write, for the next flush or close to report
  void check() {
    if (!error.empty()) throw std::runtime_error(std::exchange(error, ""));
  }
};

extern "C" {

pcap_reader* snabb_pcap_reader_open(const char* path) {
  return c_call<pcap_reader*>(nullptr,
                              [&] { return std::make_unique<pcap_reader>(path).release(); });
}

int snabb_pcap_reader_next(pcap_reader* r, packet* p) {
  return c_call(-1, [&] { return r->next(p) ? 1 : 0; });
}

uint64_t snabb_pcap_reader_records(pcap_reader* r) { return r->records(); }
uint64_t snabb_pcap_reader_bytes(pcap_reader* r) { return r->bytes(); }

void snabb_pcap_reader_close(pcap_reader* r) { std::unique_ptr<pcap_reader> owned(r); }

pcap_writer* snabb_pcap_writer_open(const char* path, int nanosecond, int append) {
  return c_call<pcap_writer*>(nullptr, [&] {
    return std::make_unique<pcap_writer>(path, nanosecond != 0, append != 0).release();
  });
}

void snabb_pcap_writer_write(pcap_writer* w, packet* p, uint64_t now_ns) {
  if (!w->error.empty()) return;
  try {
    w->write(p, now_ns);
  } catch (const std::exception& e) {
    w->error = e.what();
  }
}

int snabb_pcap_writer_flush(pcap_writer* w) {
  return c_call(-1, [&] {
    w->check();
    w->flush();
    return 0;
  });
}

int snabb_pcap_writer_close(pcap_writer* w) {
  std::unique_ptr<pcap_writer> owned(w);
  return c_call(-1, [&] {
    owned->check();
    owned->close();
    return 0;
  });
}
}
