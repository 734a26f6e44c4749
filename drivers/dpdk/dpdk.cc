#include "drivers/dpdk/dpdk.h"

#include <dirent.h>
#include <fcntl.h>
#include <rte_bus_vdev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>  // (its link() hides struct link: written "struct link" below)

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/packet.h"

namespace snabb::drivers::dpdk {
namespace {

using runtime::freelist_canonical;
using runtime::freelist_entry_slot;
using runtime::freelist_pop;
using runtime::freelist_push_slot;
using runtime::link_consume;
using runtime::link_nreadable;
using runtime::link_nwritable;
using runtime::link_peek;
using runtime::link_replace;
using runtime::LinkBurst;
using runtime::packet_pool_adopt;
using runtime::packet_slot;

constexpr uint16_t kBurst = 32;
// Packets received per pull: half of engine.pull_burst, as the links of a forwarding graph
// hold a breath's packets of every port at once and a smaller breath stays nearer the CPU.
constexpr uint32_t kMaxRxPerCall = 256;
// DPDK's per-core cache in front of the free list: PMDs free sent mbufs one at a time, and each
// would otherwise be a call into the mempool handler. The largest DPDK allows, so that a breath of
// two ports (2 x kMaxRxPerCall) goes round without touching the free list; DPDK also wants it no
// larger than 2/3 of the pool.
unsigned cache_size(uint32_t mbufs) {
  return std::min<unsigned>(RTE_MEMPOOL_CACHE_MAX_SIZE, mbufs * 2 / 3);
}

rte_mempool* pool = nullptr;
bool populating = false;

// Several processes on one port (DPDK's multi-process: a primary and secondaries on one file
// prefix and its hugepages; drivers/README.md). The primary makes the pool for all of them,
// `processes` x mbufs, keeps its share in its free list and puts the others' in the handoff ring,
// from which each secondary takes its own at init. The port's set-up is recorded in a memzone
// (struct shared_port) when the primary has started it: a secondary attaches to a started port
// only, and checks that its queues agree.
constexpr char kPoolName[] = "snabb_packets";
constexpr char kHandoffName[] = "snabb_mbufs";
bool secondary = false;
rte_ring* handoff = nullptr;
uint32_t populate_keep = 0;  // while populating: mbufs the primary still keeps (the rest: handoff)
struct shared_port {
  uint16_t rxqs, txqs, ring;
  uint8_t rss;
  uint64_t started_ns;  // CLOCK_MONOTONIC, the same for every process of the machine
  uint32_t attached;    // secondaries polling it now (atomic): the primary waits for them to stop
};
uint64_t eal_ready_ns = 0;  // when this process's EAL was up (and had probed the devices it saw)
uint64_t monotonic_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1000000000 + uint64_t(t.tv_nsec);
}
std::string shared_port_name(const std::string& name) { return "snabb_port_" + name; }
std::vector<std::pair<uintptr_t, uintptr_t>> pool_memory;  // [start, end) of the mbufs' memory
std::vector<packet*> retired;  // ordinary slots met while looking for mbufs: kept out of DPDK's way
std::array<uint64_t, RTE_MAX_ETHPORTS> tx_copied{};  // per port

// An mbuf's data room is a packet slot: [rte_mbuf][private area][slot: headroom, header, payload,
// timestamp]. PMDs put received data RTE_PKTMBUF_HEADROOM (128) bytes into the slot; the 8-byte
// private area moves that off a cache-line boundary so that our 4-byte header, just before the
// data, shares the data's first line instead of dirtying a line of its own.
constexpr uint16_t kPrivSize = 8;
constexpr size_t kMbufHeader = sizeof(rte_mbuf) + kPrivSize;
uint8_t* slot_of(rte_mbuf* m) { return reinterpret_cast<uint8_t*>(m) + kMbufHeader; }
uintptr_t pool_low = 0, pool_high = 0;  // bounds of all of pool_memory
// True when [pool_low, pool_high) lies in one of the EAL's memory areas (memseg lists): address
// space it reserved for itself, so nothing but DPDK memory (our mbufs, between the chunks) can be
// there. With hugepages the pool is ~90 chunks of 2 MB; a search per packet sent cost 3x the rate.
bool pool_in_one_area = false;
bool is_mbuf(packet* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  if (a < pool_low || a >= pool_high) return false;
  if (pool_in_one_area) return true;
  // pool_memory is sorted: the chunk that starts last at or before a.
  const auto next =
      std::upper_bound(pool_memory.begin(), pool_memory.end(), std::pair{a, UINTPTR_MAX});
  return next != pool_memory.begin() && a < std::prev(next)->second;
}

// The "snabb" mempool handler: the mbufs live in the packet free list. (These run for every burst
// a PMD receives or sends, so they work on the free list directly.)
int ops_alloc(rte_mempool*) { return 0; }
void ops_free(rte_mempool*) {}
int ops_enqueue(rte_mempool*, void* const* objs, unsigned n) {
  if (populating) {
    for (unsigned i = 0; i < n; ++i) {
      if (populate_keep > 0) {
        packet_pool_adopt(slot_of(static_cast<rte_mbuf*>(objs[i])));
        populate_keep--;
      } else if (rte_ring_enqueue(handoff, objs[i]) != 0) {
        return -ENOBUFS;
      }
    }
    return 0;
  }
  packet_freelist* fl = snabb_packet_freelist();
  for (unsigned i = 0; i < n; ++i) freelist_push_slot(fl, slot_of(static_cast<rte_mbuf*>(objs[i])));
  return 0;
}
int ops_dequeue(rte_mempool*, void** objs, unsigned n) {
  packet_freelist* fl = snabb_packet_freelist();
  unsigned got = 0;
  while (got < n) {
    if (fl->nfree == 0) {  // all or nothing: give back what was taken
      while (got > 0) freelist_push_slot(fl, slot_of(static_cast<rte_mbuf*>(objs[--got])));
      return -ENOBUFS;
    }
    packet* p = freelist_pop(fl);
    if (is_mbuf(p)) {
      // freelist_pop gives the canonical place (header at the slot start + PACKET_HEADROOM).
      objs[got++] = reinterpret_cast<rte_mbuf*>(freelist_entry_slot(p) - kMbufHeader);
    } else {
      retired.push_back(p);
    }
  }
  return 0;
}
unsigned ops_count(const rte_mempool*) {
  packet_freelist* fl = snabb_packet_freelist();
  return static_cast<unsigned>(std::count_if(fl->list, fl->list + fl->nfree, is_mbuf));
}

rte_mempool_ops snabb_ops = {
    .name = "snabb",
    .alloc = ops_alloc,
    .free = ops_free,
    .enqueue = ops_enqueue,
    .dequeue = ops_dequeue,
    .get_count = ops_count,
};
RTE_MEMPOOL_REGISTER_OPS(snabb_ops);

// DPDK says why a call failed in its log more often than in its return code: rte_eal_init can
// fail with rte_errno 0 ("Success": another process holds the config lock), rte_vdev_init returns
// -1 or 1 whatever went wrong (a capture file net_pcap cannot open, an unknown driver). While the
// EAL or a port is set up, the log goes here: the lines at ERR or worse become the cause in our
// message; on success everything is written to stderr, as DPDK would have.
class LogCapture {
 public:
  LogCapture() : stream_(fopencookie(this, "w", {nullptr, write, nullptr, nullptr})) {
    if (stream_) rte_openlog_stream(stream_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  ~LogCapture() {
    if (!stream_) return;
    rte_openlog_stream(nullptr);  // back to DPDK's default (stderr)
    std::fclose(stream_);
  }
  // The call succeeded: what it logged goes to stderr after all.
  void pass_on() const { std::fwrite(all_.data(), 1, all_.size(), stderr); }
  // "why1; why2": the error lines, without DPDK's "FATAL: " repeats.
  std::string errors() const {
    std::string result;
    std::istringstream in(errors_);
    for (std::string line; std::getline(in, line);) {
      if (const auto fatal = line.find("FATAL: "); fatal != std::string::npos) line.erase(fatal, 7);
      if (line.empty() || result.find(line) != std::string::npos) continue;
      result += (result.empty() ? "" : "; ") + line;
    }
    return result;
  }

 private:
  static ssize_t write(void* cookie, const char* buf, size_t size) {
    auto* self = static_cast<LogCapture*>(cookie);
    self->all_.append(buf, size);
    // rte_vlog flushes after each message, so this is one message at its level.
    if (rte_log_cur_msg_loglevel() <= static_cast<int>(RTE_LOG_ERR))
      self->errors_.append(buf, size);
    return static_cast<ssize_t>(size);
  }
  FILE* stream_;
  std::string all_, errors_;
};

// The cause of a failure: the error code's text (unless 0) and what DPDK logged as errors.
std::string cause(int err, const LogCapture& log) {
  std::string text = err != 0 ? rte_strerror(err < 0 ? -err : err) : "";
  const std::string logged = log.errors();
  if (!logged.empty()) text += (text.empty() ? "" : ": ") + logged;
  return text.empty() ? "DPDK gave no reason" : text;
}

// DPDK's runtime directory for a file prefix, as the EAL makes it (eal_create_runtime_dir):
// $RUNTIME_DIRECTORY, else /var/run for root, else $XDG_RUNTIME_DIR or /tmp; then dpdk/PREFIX.
// Telemetry's socket is dpdk_telemetry.v2 in it.
std::string runtime_dir(const std::string& prefix) {
  const char* base = std::getenv("RUNTIME_DIRECTORY");
  if (!base) base = getuid() == 0 ? "/var/run" : std::getenv("XDG_RUNTIME_DIR");
  if (!base) base = "/tmp";
  return std::string(base) + "/dpdk/" + prefix;
}

// The runtime directory of our default file prefix, snabb-PID (the PID of the run directory
// /var/run/snabb/PID), removed when the process exits: with --in-memory or --no-shconf the EAL
// leaves only telemetry's socket in it (DPDK unlinks the socket at exit too, but leaves the
// directory: one per run otherwise). A process killed before its exit leaves both: the next
// one removes them (remove_stale).
class RuntimeDir {
 public:
  explicit RuntimeDir(std::string dir) : dir_(std::move(dir)) {}
  RuntimeDir(const RuntimeDir&) = delete;
  RuntimeDir& operator=(const RuntimeDir&) = delete;
  ~RuntimeDir() {
    unlink((dir_ + "/dpdk_telemetry.v2").c_str());
    rmdir(dir_.c_str());
  }

 private:
  std::string dir_;
};

// Removes what runs killed before their exit left: directories snabb-PID next to `dir` whose
// process is gone, with the telemetry socket in them (directories holding anything else stay).
void remove_stale(const std::string& dir) {
  const std::string parent = dir.substr(0, dir.rfind('/'));
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(parent.c_str()), closedir);
  if (!d) return;
  while (const dirent* e = readdir(d.get())) {
    int pid = 0;
    char rest = 0;
    if (std::sscanf(e->d_name, "snabb-%d%c", &pid, &rest) != 1 || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;
    const std::string stale = parent + "/" + e->d_name;
    unlink((stale + "/dpdk_telemetry.v2").c_str());
    rmdir(stale.c_str());
  }
}

// Telemetry needs its directory: made here (the EAL would make it too) so that when it cannot
// be, telemetry is turned off with one line saying why, where DPDK 22.11 starts without a socket
// and without a word. "" when made (or there already), else the reason.
std::string make_runtime_dir(const std::string& dir) {
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    const std::string part = dir.substr(0, slash);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return "cannot create " + part + ": " + std::strerror(errno);
    }
    if (slash == std::string::npos) return "";
  }
}

// Default EAL options: the core we run on (so a taskset stays as it is), no PCI scan, the file
// prefix snabb-PID, telemetry on unless `telemetry` is false (its socket in
// /var/run/dpdk/snabb-PID: drivers/README.md), no other files in /var/run/dpdk, and memory for
// the mbufs plus DPDK's own: hugepages when enough are free, ordinary memory otherwise
// (--in-memory needs hugepages; --no-shconf is its equivalent without).
std::string default_args(uint32_t mbufs, bool telemetry) {
  const uint64_t needed_mb =
      uint64_t{mbufs} * (kMbufHeader + PACKET_SLOT_SIZE + 128) / (1 << 20) + 256;
  std::ifstream meminfo("/proc/meminfo");
  uint64_t free_hugepages = 0, hugepage_kb = 0;
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("HugePages_Free:", 0) == 0) free_hugepages = std::stoull(line.substr(15));
    if (line.rfind("Hugepagesize:", 0) == 0) hugepage_kb = std::stoull(line.substr(13));
  }
  const int cpu = std::max(sched_getcpu(), 0);
  const std::string prefix = "snabb-" + std::to_string(getpid());
  const std::string dir = runtime_dir(prefix);
  remove_stale(dir);
  if (telemetry) {
    if (const std::string why = make_runtime_dir(dir); !why.empty()) {
      std::fprintf(stderr,
                   "dpdk: telemetry off: %s (dpdk-telemetry.py cannot attach; --no-dpdk-telemetry "
                   "turns it off without this line)\n",
                   why.c_str());
      telemetry = false;
    }
  }
  static RuntimeDir cleanup(dir);
  return "-l " + std::to_string(cpu) + " --no-pci" + (telemetry ? "" : " --no-telemetry") +
         " --file-prefix " + prefix + " --log-level=notice " +
         (free_hugepages * hugepage_kb / 1024 >= needed_mb
              ? "--in-memory"
              : "--no-huge --no-shconf -m " + std::to_string(std::max<uint64_t>(1024, needed_mb)));
}

// mbufs held outside the free list by ports open now (their rings and pulls; see need()).
std::array<uint64_t, RTE_MAX_ETHPORTS> held{};

// The mbufs a port can hold at once, so that every queue can still receive: each receive queue's
// ring full (drivers fill it at start) plus one pull (kMaxRxPerCall), each send queue's ring full
// of packets sent but not yet freed. Below this, one port's pull takes the mbufs another port needs
// and that port receives nothing, silently (2 net_null ports, 64 mbufs: one forwarded 6 million
// packets, the other none).
uint64_t need(uint64_t rxqs, uint64_t txqs, uint64_t ring) {
  return rxqs * (ring + kMaxRxPerCall) + txqs * ring;
}

// The bounds of the pool's memory, and whether it is in one EAL area (see is_mbuf).
void find_pool_memory(rte_mempool* mp) {
  rte_mempool_mem_iter(
      mp,
      [](rte_mempool*, void*, rte_mempool_memhdr* m, unsigned) {
        const auto start = reinterpret_cast<uintptr_t>(m->addr);
        pool_memory.emplace_back(start, start + m->len);
      },
      nullptr);
  std::sort(pool_memory.begin(), pool_memory.end());
  pool_low = pool_memory.front().first;
  pool_high = pool_memory.back().second;
  if (pool_high > runtime::kPacketAddressLimit) {
    throw std::runtime_error(
        "dpdk: the mbuf pool lies above 2^48, where link entries cannot "
        "address it (try --base-virtaddr in the EAL arguments)");
  }
  const rte_memseg_list* area = rte_mem_virt2memseg_list(reinterpret_cast<void*>(pool_low));
  pool_in_one_area =
      area && area == rte_mem_virt2memseg_list(reinterpret_cast<void*>(pool_high - 1));
}

// A secondary process: the primary's pool (waited for: the primary may still be making it) and
// `mbufs` of them from the handoff ring, into this process's free list.
void attach_pool(uint32_t mbufs, LogCapture& log) {
  rte_mempool* mp = nullptr;
  for (int waited_ms = 0; waited_ms < 10000; waited_ms += 10) {
    mp = rte_mempool_lookup(kPoolName);
    handoff = rte_ring_lookup(kHandoffName);
    if (mp && handoff) break;
    usleep(10000);
  }
  if (!mp || !handoff) {
    throw std::runtime_error(
        "dpdk: secondary process: the primary has no mbuf pool to share after 10 s (its "
        "dpdk.init{processes = N} with N > 1 makes one): " +
        cause(rte_errno, log));
  }
  // Up to `mbufs`: a device's queues may hold some of one process's share and hand them to another
  // (net_tap's receive queues keep the mbufs of the process that set them up, and a receiving
  // process replaces them from its own), so a process started again may find fewer left.
  std::vector<void*> objs(mbufs);
  objs.resize(rte_ring_dequeue_burst(handoff, objs.data(), mbufs, nullptr));
  if (objs.size() < snabb_dpdk_min_mbufs()) {
    rte_ring_enqueue_bulk(handoff, objs.data(), static_cast<unsigned>(objs.size()), nullptr);
    throw std::runtime_error("dpdk: secondary process: the primary's pool has " +
                             std::to_string(objs.size()) + " mbufs left to share, fewer than " +
                             std::to_string(snabb_dpdk_min_mbufs()) +
                             " (dpdk.init{processes=}: how many processes share the pool)");
  }
  for (void* o : objs) packet_pool_adopt(slot_of(static_cast<rte_mbuf*>(o)));
  find_pool_memory(mp);
  pool = mp;
  // At exit, the mbufs in the free list go back to the ring, for the process that replaces this
  // one (what links and apps still held is lost, as after a kill).
  std::atexit([] {
    packet_freelist* fl = snabb_packet_freelist();
    for (uint32_t i = 0; i < fl->nfree; ++i) {
      if (is_mbuf(fl->list[i])) {
        rte_ring_enqueue(handoff,
                         freelist_entry_slot(freelist_canonical(fl->list[i])) - kMbufHeader);
      }
    }
  });
  std::fprintf(stderr, "dpdk: secondary process: %zu mbufs from the primary's pool, %u left\n",
               objs.size(), rte_ring_count(handoff));
}

// An exclusive flock on a file, held while it lives (-1: none).
class FileLock {
 public:
  explicit FileLock(const std::string& path)
      : fd_(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ >= 0) flock(fd_, LOCK_EX);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_;
};

// The file prefix EAL options name (DPDK's default: rte).
std::string file_prefix(const std::string& options) {
  std::istringstream in(options);
  std::string prefix = "rte";
  for (std::string w; in >> w;) {
    if (w == "--file-prefix") {
      in >> prefix;
    } else if (w.rfind("--file-prefix=", 0) == 0) {
      prefix = w.substr(14);
    }
  }
  return prefix;
}

// The files of an EAL shared by processes, removed when its primary exits (registered with
// atexit once it is up): its hugepage files, which DPDK leaves in the huge dir for secondaries to
// map (88 of 2 MiB for 2 x 8,192 mbufs, in use until the next primary of the prefix clears them
// or the hugetlbfs is unmounted), and its runtime directory (the EAL's config, memseg and memzone
// lists, the IPC sockets) with the lock file beside it. The primary is the last to stop (it waits
// for its secondaries, see close_port); files still mapped by one stay usable until it unmaps
// them. A killed primary leaves them: the next primary of the prefix clears the hugepage files
// and reuses the directory.
std::string shared_runtime_dir;
void remove_shared_files() {
  std::set<std::string> files;
  rte_memseg_walk_thread_unsafe(
      [](const rte_memseg_list*, const rte_memseg* ms, void* arg) {
        const int fd = rte_memseg_get_fd_thread_unsafe(ms);
        char path[4096];
        const ssize_t n =
            fd < 0 ? -1
                   : readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), path, sizeof path);
        if (n > 0) static_cast<std::set<std::string>*>(arg)->emplace(path, size_t(n));
        return 0;
      },
      &files);
  for (const auto& file : files) unlink(file.c_str());
  if (std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(shared_runtime_dir.c_str()), closedir); d) {
    while (const dirent* e = readdir(d.get())) {
      if (e->d_name[0] != '.') unlink((shared_runtime_dir + "/" + e->d_name).c_str());
    }
  }
  rmdir(shared_runtime_dir.c_str());
  unlink((shared_runtime_dir + ".snabb-lock").c_str());
}

void init(const char* args, int64_t mbufs_arg, bool telemetry, uint32_t processes,
          LogCapture& log) {
  if (pool) throw std::runtime_error("dpdk: already initialised (once per process)");
  // The smallest pool a port can forward with: one queue each way, 32-descriptor rings.
  if (mbufs_arg < static_cast<int64_t>(snabb_dpdk_min_mbufs())) {
    throw std::runtime_error("dpdk.init: mbufs=" + std::to_string(mbufs_arg) +
                             " is too few to forward: at least " +
                             std::to_string(snabb_dpdk_min_mbufs()) +
                             " (a port with one queue each way of 32 descriptors: 2 x 32, and one "
                             "pull of " +
                             std::to_string(kMaxRxPerCall) + ")");
  }
  const packet_freelist* fl = snabb_packet_freelist();
  const int64_t room = fl ? fl->max_packets - snabb_packet_allocated() : 0;
  if (mbufs_arg > room) {
    throw std::runtime_error("dpdk.init: mbufs=" + std::to_string(mbufs_arg) +
                             " is more than the packet pool has room for (" + std::to_string(room) +
                             " more packets; packet.set_max_packets raises its capacity)");
  }
  const auto mbufs = static_cast<uint32_t>(mbufs_arg);
  // rte_eal_init may keep pointers into argv: the strings live as long as the process.
  static std::vector<std::string> words;
  static std::vector<char*> argv;
  words = {"snabb"};
  if (processes > 1 && !(args && *args)) {
    throw std::runtime_error(
        "dpdk.init: processes=" + std::to_string(processes) +
        " needs EAL options that let processes share the EAL: args = \"--proc-type=auto "
        "--file-prefix NAME --huge-dir DIR ...\" (hugepages; drivers/README.md)");
  }
  const std::string options = args && *args
                                  ? std::string(args) + (telemetry ? "" : " --no-telemetry")
                                  : default_args(mbufs, telemetry);
  std::istringstream in(options);
  for (std::string w; in >> w;) words.push_back(w);
  for (auto& w : words) argv.push_back(w.data());
  // Processes sharing an EAL start one at a time: with --proc-type=auto, two starting together
  // both took themselves for the primary, and one failed ("Cannot create lock on
  // '/var/run/dpdk/NAME/config'. Is another primary process running?"). Held until the primary
  // has made the pool and the ring its secondaries look for (the end of init).
  std::unique_ptr<FileLock> starting;
  if (processes > 1) {
    const std::string dir = runtime_dir(file_prefix(options));
    make_runtime_dir(dir.substr(0, dir.rfind('/')));
    starting = std::make_unique<FileLock>(dir + ".snabb-lock");
  }
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    throw std::runtime_error("dpdk: EAL initialisation failed (" + cause(rte_errno, log) +
                             "); EAL options: " + options);
  }
  eal_ready_ns = monotonic_ns();
  if (rte_eal_process_type() == RTE_PROC_SECONDARY) {
    secondary = true;
    attach_pool(mbufs, log);
    return;
  }
  // Shared by several processes, the pool has no per-lcore cache: the caches live in the pool,
  // one per lcore id, and two processes with the same id (each EAL's -l) would share one.
  const uint32_t total = mbufs * processes;
  if (processes > 1) {
    handoff = rte_ring_create(kHandoffName, total - mbufs, rte_socket_id(), RING_F_EXACT_SZ);
    if (!handoff) {
      throw std::runtime_error("dpdk: cannot create the ring that shares mbufs: " +
                               cause(rte_errno, log));
    }
  }
  rte_mempool* mp = rte_mempool_create_empty(kPoolName, total, kMbufHeader + PACKET_SLOT_SIZE,
                                             processes > 1 ? 0 : cache_size(mbufs),
                                             sizeof(rte_pktmbuf_pool_private), rte_socket_id(), 0);
  if (!mp) throw std::runtime_error("dpdk: cannot create the mbuf pool: " + cause(rte_errno, log));
  if (int rc = rte_mempool_set_ops_byname(mp, "snabb", nullptr); rc != 0) {
    throw std::runtime_error("dpdk: mempool handler: " + cause(rc, log));
  }
  rte_pktmbuf_pool_private priv{};
  priv.mbuf_data_room_size = PACKET_SLOT_SIZE;
  priv.mbuf_priv_size = kPrivSize;
  rte_pktmbuf_pool_init(mp, &priv);
  populating = true;
  populate_keep = mbufs;
  const int populated = rte_mempool_populate_default(mp);
  populating = false;
  if (populated < 0 || static_cast<uint32_t>(populated) < total) {
    throw std::runtime_error("dpdk: no memory for " + std::to_string(total) + " mbufs of " +
                             std::to_string(PACKET_SLOT_SIZE) +
                             " bytes (give the EAL more with -m, or hugepages)");
  }
  rte_mempool_obj_iter(mp, rte_pktmbuf_init, nullptr);
  find_pool_memory(mp);
  pool = mp;
  if (processes > 1) {
    shared_runtime_dir = runtime_dir(file_prefix(options));
    std::atexit(remove_shared_files);
  }
}

// Stops and closes a port (its queues give their mbufs back to the pool); a virtual device goes
// too, so that a later config can create it again.
// Shared with secondaries, the port is the primary's to stop: a secondary only says it has stopped
// polling, and the primary waits for that (2 s at most: a secondary killed never says it), as a
// secondary polling a port the primary closed died of a segmentation fault (a supervisor stopping
// all its workers at once).
void close_port(uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = "";
  rte_eth_dev_get_name_by_port(port, name);
  const rte_memzone* mz = rte_memzone_lookup(shared_port_name(name).c_str());
  auto* shared = mz ? static_cast<shared_port*>(mz->addr) : nullptr;
  if (secondary) {
    if (shared) __atomic_fetch_sub(&shared->attached, 1, __ATOMIC_RELEASE);
    return;
  }
  held[port] = 0;
  if (shared) {
    for (int waited_ms = 0; waited_ms < 2000; waited_ms += 10) {
      if (__atomic_load_n(&shared->attached, __ATOMIC_ACQUIRE) == 0) break;
      usleep(10000);
    }
    rte_memzone_free(mz);
  }
  rte_eth_dev_stop(port);
  rte_eth_dev_close(port);
  if (std::strncmp(name, "net_", 4) == 0 || std::strncmp(name, "eth_", 4) == 0)
    rte_vdev_uninit(name);
}

// Sets an open port up for rxqs/txqs queues of `ring` descriptors, after checking what the device
// and the mbuf pool allow.
uint16_t setup_port(uint16_t port, const std::string& spec, uint16_t rxqs, uint16_t txqs,
                    uint16_t ring, bool rss, LogCapture& log) {
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) {
    throw std::runtime_error("dpdk: " + spec + ": " + cause(rc, log));
  }
  // What the device takes, checked here so that the message names the parameter.
  auto limit = [&](const char* what, uint16_t value, uint16_t max, const char* queues) {
    if (value > max) {
      throw std::runtime_error("dpdk: " + spec + ": " + what + "=" + std::to_string(value) +
                               ", but the device has at most " + std::to_string(max) + " " +
                               queues);
    }
  };
  limit("rxqs", rxqs, info.max_rx_queues, "receive queue(s)");
  limit("txqs", txqs, info.max_tx_queues, "send queue(s)");
  const std::pair<rte_eth_desc_lim, const char*> lims[] = {{info.rx_desc_lim, "receive"},
                                                           {info.tx_desc_lim, "send"}};
  for (const auto& [lim, dir] : lims) {
    const uint16_t align = std::max<uint16_t>(lim.nb_align, 1);
    if (ring < lim.nb_min || ring > lim.nb_max || ring % align != 0) {
      throw std::runtime_error("dpdk: " + spec + ": ring_size=" + std::to_string(ring) +
                               ", but its " + dir + " rings take " + std::to_string(lim.nb_min) +
                               " to " + std::to_string(lim.nb_max) + " descriptors" +
                               (align > 1 ? ", a multiple of " + std::to_string(align) : ""));
    }
  }
  uint64_t held_by_others = 0;
  for (uint64_t h : held) held_by_others += h;
  const uint64_t needed = need(rxqs, txqs, ring);
  if (held_by_others + needed > pool->size) {
    throw std::runtime_error(
        "dpdk: " + spec + ": too few mbufs: its " + std::to_string(rxqs) + " receive queue(s) of " +
        std::to_string(ring) + " descriptors and a pull of " + std::to_string(kMaxRxPerCall) +
        " each, and " + std::to_string(txqs) + " send queue(s) of " + std::to_string(ring) +
        ", hold up to " + std::to_string(needed) + " mbufs" +
        (held_by_others ? ", the ports already open " + std::to_string(held_by_others) : "") +
        "; the pool has " + std::to_string(pool->size) + ": dpdk.init{mbufs = " +
        std::to_string(held_by_others + needed) + "} at least, or a smaller ring_size");
  }
  rte_eth_conf conf{};
  if (rss && rxqs > 1) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  auto check = [&](int rc, const char* what) {
    if (rc < 0) throw std::runtime_error("dpdk: " + spec + ": " + what + ": " + cause(rc, log));
  };
  check(rte_eth_dev_configure(port, rxqs, txqs, &conf), "configure");
  const int socket = rte_eth_dev_socket_id(port);
  for (uint16_t q = 0; q < rxqs; ++q) {
    check(rte_eth_rx_queue_setup(port, q, ring, socket, nullptr, pool), "rx queue");
  }
  for (uint16_t q = 0; q < txqs; ++q) {
    check(rte_eth_tx_queue_setup(port, q, ring, socket, nullptr), "tx queue");
  }
  check(rte_eth_dev_start(port), "start");
  rte_eth_promiscuous_enable(port);  // not every device can; that is fine
  tx_copied[port] = 0;
  held[port] = needed;
  if (handoff) {  // shared with secondary processes: what they attach to
    char name[RTE_ETH_NAME_MAX_LEN] = "";
    rte_eth_dev_get_name_by_port(port, name);
    const rte_memzone* mz =
        rte_memzone_reserve(shared_port_name(name).c_str(), sizeof(shared_port), SOCKET_ID_ANY, 0);
    if (!mz) check(-rte_errno, "recording its set-up for secondary processes");
    *static_cast<shared_port*>(mz->addr) = {rxqs, txqs, ring, rss, monotonic_ns(), 0};
  }
  return port;
}

// The port `spec` names, created (virtual devices) or probed when it is not there yet, then set
// up. A device created here and refused (too many queues, too few mbufs, ...) is closed again:
// net_pcap had opened its capture files (LeakSanitizer).
// A secondary process: the port as the primary set it up and started it (waited for, 5 s at
// most), attached here (a virtual device the primary made after this process started is probed
// now). The EAL of a secondary probes the devices the primary has when it starts: one probed
// before the primary had started it has no queues here (net_tap's come from the primary at probe).
uint16_t attach_port(const std::string& spec, uint16_t rxqs, uint16_t txqs, uint16_t ring, bool rss,
                     LogCapture& log) {
  const std::string name = spec.substr(0, spec.find(','));
  const rte_memzone* mz = nullptr;
  for (int waited_ms = 0; waited_ms < 5000 && !mz; waited_ms += 10) {
    mz = rte_memzone_lookup(shared_port_name(name).c_str());
    if (!mz) usleep(10000);
  }
  if (!mz) {
    throw std::runtime_error("dpdk: " + name +
                             ": the primary process has not started it (waited 5 s; secondary "
                             "process)");
  }
  auto& shared = *static_cast<shared_port*>(mz->addr);
  const std::pair<const char*, std::pair<unsigned, unsigned>> agree[] = {
      {"rxqs", {rxqs, shared.rxqs}},
      {"txqs", {txqs, shared.txqs}},
      {"ring_size", {ring, shared.ring}},
      {"rss", {rss, shared.rss}}};
  for (const auto& [what, values] : agree) {
    if (values.first != values.second) {
      throw std::runtime_error("dpdk: " + name + ": " + what + "=" + std::to_string(values.first) +
                               ", but the primary process set the port up with " + what + "=" +
                               std::to_string(values.second) + " (the processes must agree)");
    }
  }
  uint16_t port;
  const bool vdev = name.rfind("net_", 0) == 0 || name.rfind("eth_", 0) == 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) == 0 && vdev &&
      shared.started_ns > eal_ready_ns) {
    // Attached before the port was started: let go of it here (a secondary's detach is its own)
    // and attach again below.
    rte_vdev_uninit(name.c_str());
  }
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) {
    int rc = vdev ? rte_vdev_init(name.c_str(), "") : rte_dev_probe(spec.c_str());
    // A virtual device whose probe failed as the EAL started is on the bus, unprobed (net_tap's,
    // when the primary, still setting the port up, answered the request for its queues too late:
    // "Failed to request queues from primary: 110", then "File exists" here): probed again.
    if (vdev && rc == -EEXIST) rc = rte_dev_probe(name.c_str());
    if (rc != 0 || rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) {
      throw std::runtime_error("dpdk: " + name + ": cannot attach to the primary's port (" +
                               cause(rc, log) + ")");
    }
  }
  __atomic_fetch_add(&shared.attached, 1, __ATOMIC_RELEASE);
  return port;
}

uint16_t open_port(const std::string& spec, uint16_t rxqs, uint16_t txqs, uint16_t ring, bool rss,
                   LogCapture& log) {
  if (!pool) throw std::runtime_error("dpdk: not initialised");
  if (secondary) return attach_port(spec, rxqs, txqs, ring, rss, log);
  const std::string name = spec.substr(0, spec.find(','));
  uint16_t port;
  bool created = false;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) {
    const bool vdev = name.rfind("net_", 0) == 0 || name.rfind("eth_", 0) == 0;
    const int rc =
        vdev ? rte_vdev_init(name.c_str(),
                             spec.size() > name.size() ? spec.c_str() + name.size() + 1 : "")
             : rte_dev_probe(spec.c_str());
    if (rc != 0 || rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) {
      std::string known;
      uint16_t id;
      RTE_ETH_FOREACH_DEV(id) {
        char n[RTE_ETH_NAME_MAX_LEN];
        if (rte_eth_dev_get_name_by_port(id, n) == 0)
          known += (known.empty() ? "" : ", ") + std::string(n);
      }
      // rte_vdev_init's code says nothing (-1 for an unknown driver and for options the driver
      // refuses, which net_null and net_pcap do without a log line).
      std::string why = cause(vdev && (rc == -1 || rc == 1) ? 0 : rc, log);
      if (vdev && log.errors().empty()) why = "an unknown driver, or options it does not take";
      throw std::runtime_error("dpdk: no port '" + spec + "' (" + why +
                               "); ports: " + (known.empty() ? "none" : known));
    }
    created = true;
  }
  try {
    return setup_port(port, spec, rxqs, txqs, ring, rss, log);
  } catch (...) {
    if (created) close_port(port);
    throw;
  }
}

// Copies an ordinary slot's packet into an mbuf (nullptr when the pool is empty).
packet* copy_to_mbuf(packet* p) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (!m) return nullptr;
  auto* copy = reinterpret_cast<packet*>(rte_pktmbuf_mtod(m, uint8_t*) - offsetof(packet, data));
  std::memcpy(copy->data, p->data, p->length);
  copy->length = p->length;
  copy->headroom = static_cast<uint16_t>(m->data_off - offsetof(packet, data));
  runtime::packet_free(p);
  return copy;
}

}  // namespace
}  // namespace snabb::drivers::dpdk

using namespace snabb::drivers::dpdk;

extern "C" {

uint32_t snabb_dpdk_min_mbufs(void) { return static_cast<uint32_t>(need(1, 1, kBurst)); }

int snabb_dpdk_init(const char* args, int64_t mbufs, int telemetry, int processes) {
  return snabb::runtime::c_call(-1, [&] {
    LogCapture log;
    init(args, mbufs, telemetry != 0, static_cast<uint32_t>(std::max(processes, 1)), log);
    log.pass_on();
    return 0;
  });
}

int snabb_dpdk_initialized(void) { return pool != nullptr; }

int snabb_dpdk_secondary(void) { return secondary; }

int snabb_dpdk_port_open(const char* spec, uint16_t rxqs, uint16_t txqs, uint16_t ring_size,
                         int rss) {
  return snabb::runtime::c_call(-1, [&] {
    LogCapture log;
    const int port = open_port(spec, rxqs, txqs, ring_size, rss != 0, log);
    log.pass_on();
    return port;
  });
}

// Writes straight into the link's ring (it has room for all of them): the same as link_transmit
// for each packet, with one cursor update per burst.
void snabb_dpdk_pull(void* arg) {
  const auto& q = *static_cast<dpdk_queue*>(arg);
  struct link* out = q.output;
  if (!out) return;
  uint32_t room = std::min<uint32_t>(link_nwritable(out), kMaxRxPerCall);
  rte_mbuf* mbufs[kBurst];
  while (room > 0) {
    const uint16_t n = rte_eth_rx_burst(q.port, q.queue, mbufs, std::min<uint32_t>(room, kBurst));
    LinkBurst burst(out);
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = mbufs[i];
      if (m->nb_segs != 1 || m->data_len > PACKET_PAYLOAD_SIZE) {  // we asked for no scatter
        rte_pktmbuf_free(m);
        continue;
      }
      auto* p = reinterpret_cast<packet*>(rte_pktmbuf_mtod(m, uint8_t*) - offsetof(packet, data));
      p->length = m->data_len;
      p->headroom = static_cast<uint16_t>(m->data_off - offsetof(packet, data));
      burst.put(p);
    }
    burst.commit();
    room -= n;
    if (n < kBurst) break;
  }
}

void snabb_dpdk_push(void* arg) {
  const auto& q = *static_cast<dpdk_queue*>(arg);
  struct link* in = q.input;
  if (!in) return;
  rte_mbuf* mbufs[kBurst];
  for (uint32_t waiting = link_nreadable(in); waiting > 0;) {
    const uint16_t n = static_cast<uint16_t>(std::min<uint32_t>(waiting, kBurst));
    uint16_t ready = 0;
    for (; ready < n; ++ready) {
      packet* p = link_peek(in, ready);
      if (!is_mbuf(p)) {
        packet* copy = copy_to_mbuf(p);
        if (!copy) break;
        link_replace(in, ready, p = copy);
        tx_copied[q.port]++;
      }
      // The slot starts at buf_addr: the data's offset follows from our header alone (reading
      // buf_addr would wait for the mbuf's cache line).
      const uint16_t headroom = p->headroom & PACKET_HEADROOM_MASK;
      rte_mbuf* m =
          reinterpret_cast<rte_mbuf*>(reinterpret_cast<uint8_t*>(p) - headroom - kMbufHeader);
      m->data_off = static_cast<uint16_t>(headroom + offsetof(packet, data));
      m->data_len = p->length;
      m->pkt_len = p->length;
      mbufs[ready] = m;
    }
    const uint16_t done = rte_eth_tx_burst(q.port, q.queue, mbufs, ready);
    link_consume(in, done);
    waiting -= done;
    if (done < n) break;
  }
}

void snabb_dpdk_port_stats(uint16_t port, dpdk_port_stats* s) {
  rte_eth_stats st{};
  rte_eth_stats_get(port, &st);
  *s = {st.ipackets, st.ibytes,  st.opackets,  st.obytes,      st.imissed,
        st.ierrors,  st.oerrors, st.rx_nombuf, tx_copied[port]};
}

int snabb_dpdk_xstats(uint16_t port, dpdk_xstat* out, int max) {
  const int n = rte_eth_xstats_get(port, nullptr, 0);
  if (n <= 0) return 0;
  std::vector<rte_eth_xstat> values(n);
  std::vector<rte_eth_xstat_name> names(n);
  if (rte_eth_xstats_get(port, values.data(), n) != n ||
      rte_eth_xstats_get_names(port, names.data(), n) != n) {
    return 0;
  }
  const int count = std::min(n, max);
  for (int i = 0; i < count; ++i) {
    std::snprintf(out[i].name, sizeof out[i].name, "%s", names[values[i].id].name);
    out[i].value = values[i].value;
  }
  return count;
}

int snabb_dpdk_link_up(uint16_t port) {
  rte_eth_link l{};
  return rte_eth_link_get_nowait(port, &l) == 0 && l.link_status == RTE_ETH_LINK_UP;
}

void snabb_dpdk_port_close(uint16_t port) { close_port(port); }

uint32_t snabb_dpdk_mbufs(void) { return pool ? pool->size : 0; }
uint32_t snabb_dpdk_mbufs_free(void) { return pool ? rte_mempool_avail_count(pool) : 0; }
}
