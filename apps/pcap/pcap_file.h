// Capture files: PcapFileReader (pcap and pcapng through libpcap, Ethernet only) and
// PcapFileWriter (pcap, microsecond or nanosecond timestamps, written whole records at a time so
// that the file ends at a record boundary whenever the process dies). Every problem with a file is
// a std::runtime_error whose message starts with the file's name; the C functions below hand the
// same messages to Lua (apps/pcap/pcap.lua) as snabb_error() (runtime/error.h).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/error.h"
#include "runtime/packet.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
struct pcap_reader;
struct pcap_writer;

/* Failures return NULL or -1, and snabb_error() says why. */
/* Opens and checks a whole capture; NULL when it cannot be read. */
struct pcap_reader* snabb_pcap_reader_open(const char* path);
/* The next record into p (payload, length, timestamp, and the wire length of a record cut short:
   PACKET_SNAPPED): 1, or 0 at the end of the file, or -1. */
int snabb_pcap_reader_next(struct pcap_reader* r, struct packet* p);
/* Records in the file and the sum of their captured lengths (counted when it was opened). */
uint64_t snabb_pcap_reader_records(struct pcap_reader* r);
uint64_t snabb_pcap_reader_bytes(struct pcap_reader* r);
void snabb_pcap_reader_close(struct pcap_reader* r);

/* Creates (truncates) a pcap file, or with append != 0 adds to one of the same format (a file
   that does not exist yet or holds no header is started afresh); NULL when it cannot. */
struct pcap_writer* snabb_pcap_writer_open(const char* path, int nanosecond, int append);
/* Appends p (buffered; written out whole records at a time). Packets without a timestamp get
   now_ns; a snapped record keeps its wire length. A failed write is reported by the next flush or
   close, and nothing more is written until then. */
void snabb_pcap_writer_write(struct pcap_writer* w, struct packet* p, uint64_t now_ns);
/* Writes out buffered records: 0, or -1 (e.g. the disk is full: the file is cut back to its last
   whole record). */
int snabb_pcap_writer_flush(struct pcap_writer* w);
/* Flushes and closes: 0, or -1. */
int snabb_pcap_writer_close(struct pcap_writer* w);
// END FFI

#ifdef __cplusplus
}

#include <memory>
#include <string>
#include <vector>

struct pcap;
struct pcap_pkthdr;

namespace snabb::apps::pcap {

struct PcapCloser {
  void operator()(::pcap* p) const;
};
using PcapHandle = std::unique_ptr<::pcap, PcapCloser>;

// A file descriptor, closed when its owner goes, also by a constructor that throws.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { reset(); }
  int get() const { return fd_; }
  // Closes it now (and takes fd): 0, or -1 with errno from close.
  int reset(int fd = -1);

 private:
  int fd_ = -1;
};

class PcapFileReader {
 public:
  // Opens path and reads it through once to check every record, so a malformed capture is refused
  // before any of its packets enter a graph.
  explicit PcapFileReader(std::string path);
  PcapFileReader(const PcapFileReader&) = delete;
  PcapFileReader& operator=(const PcapFileReader&) = delete;
  // The next record into p; false at the end of the file.
  bool next(packet* p);
  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }  // captured bytes of all records

 private:
  PcapHandle open_checked() const;
  // The next record, checked; false at the end of the file.
  bool read_record(::pcap* h, const ::pcap_pkthdr** header, const uint8_t** data);
  [[noreturn]] void fail(const std::string& what) const;

  bool pcapng_ = false;
  FileDescriptor fd_;  // for peeking at classic pcap record headers (see read_record)

  std::string path_;
  PcapHandle handle_;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
  uint64_t position_ = 0;                      // records read so far
  static constexpr uint64_t kFileHeader = 24;  // a classic pcap file's header
  uint64_t offset_ = kFileHeader;  // where the next classic pcap record starts in the file
};

// Writes pcap itself rather than through libpcap's stdio stream, which writes out whenever its
// buffer fills, mid-record: a process killed then (SIGKILL, the OOM killer) left a file that
// tcpdump calls truncated. Records are buffered and handed to write(2) whole.
class PcapFileWriter {
 public:
  PcapFileWriter(std::string path, bool nanosecond, bool append = false);
  void write(packet* p, uint64_t now_ns);
  void flush();
  void close();

 private:
  [[noreturn]] void fail(const std::string& what, int error) const;
  std::string path_;
  bool nanosecond_;
  FileDescriptor fd_;
  size_t size_ = 0;  // bytes in the file: the header and whole records
  std::vector<uint8_t> buffer_;
  size_t used_ = 0;  // bytes of buffer_ that hold records not yet written
};

}  // namespace snabb::apps::pcap
#endif
