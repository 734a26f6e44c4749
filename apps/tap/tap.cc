// The capture tap (tap.h). snabb_tap_run runs right after every call of the tapped link's writer
// (engine.lua puts its node behind the writer's): the packets queued since its last call are
// still in the ring, not yet received, and it writes them to the file through apps/pcap's
// PcapFileWriter (whole records, so the file is complete whenever it stops). One clock read per
// call that has packets. A packet queued and received before the tap ran (a writer's tick, or a
// link from an app to itself) is counted as missed, never read after its receiver had it.
#include "apps/tap/tap.h"

#include <time.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "apps/pcap/pcap_file.h"
#include "runtime/error.h"

using snabb::runtime::Link;  // (POSIX's link() hides the struct's plain name in C++)

struct tap {
  tap(const char* path, Link* l, uint64_t limit)
      : writer(path, /*nanosecond=*/false), l(l), cursor(l->write) {
    stats.limit = limit;
  }
  snabb::apps::pcap::PcapFileWriter writer;
  Link* l;
  int32_t cursor;  // the write cursor up to which the tap has looked
  tap_stats stats{};
  std::string error;  // a failed write, for the next flush or close to report
};

namespace {

uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

using snabb::runtime::c_call;
using snabb::runtime::link_distance;

extern "C" {

tap* snabb_tap_open(const char* path, Link* l, uint64_t limit) {
  return c_call<tap*>(nullptr, [&] { return std::make_unique<tap>(path, l, limit).release(); });
}

void snabb_tap_run(void* arg) {
  tap* t = static_cast<tap*>(arg);
  Link* l = t->l;
  const int32_t write = l->write;
  uint32_t n = link_distance(t->cursor, write);
  if (n == 0) return;
  // Entries between the cursor and the read cursor were received already: missed.
  const uint32_t queued = link_distance(l->read, write);
  if (n > queued) {
    t->stats.missed += n - queued;
    t->cursor = l->read;
    n = queued;
  }
  if (t->stats.done || !t->error.empty()) {
    t->cursor = write;
    return;
  }
  const uint64_t now = realtime_ns();
  try {
    for (uint32_t i = 0; i < n; ++i) {
      packet* p = snabb::runtime::link_entry_packet(
          snabb::runtime::link_slot(l, snabb::runtime::link_advance(t->cursor, i)));
      t->writer.write(p, now);
      t->stats.packets++;
      t->stats.bytes += p->length;
      if (t->stats.packets == t->stats.limit) {
        t->stats.done = 1;
        break;
      }
    }
  } catch (const std::exception& e) {
    t->error = e.what();
  }
  t->cursor = write;
}

tap_stats* snabb_tap_stats(tap* t) { return &t->stats; }

int snabb_tap_flush(tap* t) {
  return c_call(-1, [&] {
    if (!t->error.empty()) throw std::runtime_error(std::exchange(t->error, ""));
    t->writer.flush();
    return 0;
  });
}

int snabb_tap_close(tap* t) {
  std::unique_ptr<tap> owned(t);
  return c_call(-1, [&] {
    if (!t->error.empty()) throw std::runtime_error(t->error);
    t->writer.close();
    return 0;
  });
}
}
