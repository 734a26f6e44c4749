// Capture files through libpcap: PcapFileReader (pcap and pcapng, Ethernet only) and
// PcapFileWriter (pcap, microsecond or nanosecond timestamps). Every problem with a file is a
// std::runtime_error whose message starts with the file's name; the C functions below hand the
// same messages to Lua (apps/pcap/pcap.lua).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/packet.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
struct snabb_pcap_reader;
struct snabb_pcap_writer;

/* Opens and checks a whole capture; NULL with a message in err when it cannot be read. */
struct snabb_pcap_reader* snabb_pcap_reader_open(const char* path, char* err, size_t errlen);
/* The next record into p (payload, length, timestamp): 1, or 0 at the end of the file, or -1 with a
   message in err. */
int snabb_pcap_reader_next(struct snabb_pcap_reader* r, struct packet* p, char* err, size_t errlen);
/* Records in the file (counted when it was opened). */
uint64_t snabb_pcap_reader_records(struct snabb_pcap_reader* r);
void snabb_pcap_reader_close(struct snabb_pcap_reader* r);

/* Creates (truncates) a pcap file; NULL with a message in err. */
struct snabb_pcap_writer* snabb_pcap_writer_open(const char* path, int nanosecond, char* err,
                                                 size_t errlen);
/* Appends p; packets without a timestamp get now_ns. */
void snabb_pcap_writer_write(struct snabb_pcap_writer* w, struct packet* p, uint64_t now_ns);
/* Flushes buffered records: 0, or -1 with a message in err (e.g. the disk is full). */
int snabb_pcap_writer_flush(struct snabb_pcap_writer* w, char* err, size_t errlen);
/* Flushes and closes: 0, or -1 with a message in err. */
int snabb_pcap_writer_close(struct snabb_pcap_writer* w, char* err, size_t errlen);
// END FFI

#ifdef __cplusplus
}

#include <memory>
#include <string>

struct pcap;
struct pcap_dumper;
struct pcap_pkthdr;

namespace snabb::pcap {

struct PcapCloser {
  void operator()(::pcap* p) const;
};
using PcapHandle = std::unique_ptr<::pcap, PcapCloser>;
struct DumperCloser {
  void operator()(::pcap_dumper* d) const;
};
using DumperHandle = std::unique_ptr<::pcap_dumper, DumperCloser>;

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

 private:
  PcapHandle open_checked() const;
  // The next record, checked; false at the end of the file.
  bool read_record(::pcap* h, const ::pcap_pkthdr** header, const uint8_t** data);
  [[noreturn]] void fail(const std::string& what) const;

  // Closed with the reader, also when its constructor refuses the file.
  struct Fd {
    int fd = -1;
    ~Fd();
  };

  bool pcapng_ = false;
  Fd fd_;  // for peeking at classic pcap record headers (see read_record)

  std::string path_;
  PcapHandle handle_;
  uint64_t records_ = 0;
  uint64_t position_ = 0;  // records read so far
};

class PcapFileWriter {
 public:
  PcapFileWriter(std::string path, bool nanosecond);
  void write(packet* p, uint64_t now_ns);
  void flush();
  void close();

 private:
  std::string path_;
  bool nanosecond_;
  PcapHandle dead_;
  DumperHandle dumper_;
};

}  // namespace snabb::pcap
#endif
