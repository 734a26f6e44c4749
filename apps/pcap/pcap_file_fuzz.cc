// Fuzz target: PcapFileReader (and libpcap behind it) over arbitrary file bytes. Every input must
// be either refused when opened, with one std::runtime_error whose message starts with the file's
// name, or read to its end: as many records as the reader counted when it opened the file, each one
// no longer than a packet and timestamped; either way no file descriptor stays open. An error after
// a successful open, another exception, a leaked descriptor, a crash, a sanitizer report or a hang
// is a finding (fuzz/driver.cc saves the input).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#include "apps/pcap/pcap_file.h"

namespace {

using snabb::apps::pcap::PcapFileReader;
using snabb::runtime::packet_allocate;
using snabb::runtime::packet_free;

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "pcap_file_fuzz: %s\n", what.c_str());
  std::abort();
}

struct PacketFree {
  void operator()(packet* p) const { packet_free(p); }
};

// The input as a file: a memfd, rewritten for each input, named through /proc.
const std::string& input_file(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("pcap_file_fuzz", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0 ||
      (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))) {
    std::perror("pcap_file_fuzz: memfd");
    std::exit(2);
  }
  return path;
}

// The lowest free file descriptor: higher after an input that left one open.
int lowest_free_fd() {
  const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  close(fd);
  return fd;
}

void read_capture(const std::string& path) {
  std::unique_ptr<PcapFileReader> reader;
  try {
    reader = std::make_unique<PcapFileReader>(path);
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).rfind(path + ": ", 0) != 0) {
      finding("a refusal that does not start with the file's name: " + std::string(e.what()));
    }
    return;
  } catch (const std::exception& e) {
    finding("not a std::runtime_error: " + std::string(e.what()));
  }
  std::unique_ptr<packet, PacketFree> p(packet_allocate());
  uint64_t records = 0;
  try {
    while (reader->next(p.get())) {
      records++;
      uint64_t ns;
      if (p->length > PACKET_PAYLOAD_SIZE || !snabb::runtime::packet_timestamp(p.get(), &ns)) {
        finding("record " + std::to_string(records) + ": " + std::to_string(p->length) +
                " bytes, or no timestamp");
      }
      p.reset(packet_allocate());
    }
  } catch (const std::exception& e) {
    finding("the file was accepted but reading it failed: " + std::string(e.what()));
  }
  if (records != reader->records()) {
    finding("read " + std::to_string(records) + " records, counted " +
            std::to_string(reader->records()) + " when opening");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = input_file(data, size);
  // Compared around each input: libFuzzer itself opens descriptors between inputs.
  const int free_fd = lowest_free_fd();
  read_capture(path);
  if (lowest_free_fd() != free_fd) finding("a file descriptor was left open (refused file?)");
  return 0;
}
