// stats: the C++ reader of a run directory's counters (stats.h), for the control server; the
// writer and the Lua reader (snabb top, snabb ps) are core.stats (stats.lua). Each file is mapped
// read-only, and its 64-bit fields are read with single loads. A thread keeps its mappings from
// one read to the next while the files stay (same inode and size): the control server runs in the
// engine's process, where each munmap interrupts the engine's core to flush its TLB (measured:
// /counters at 100 Hz, ten unmaps a read, cost the engine 17% of its packets per CPU second).
#include "runtime/stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "runtime/error.h"

namespace snabb::stats {
namespace {

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

// A file mapped read-only, unmapped when it goes out of scope.
class Mapping {
 public:
  // min: the least size of such a file (a stats header; 8 for a counter file).
  explicit Mapping(const std::string& path, size_t min = sizeof(stats_header)) : path_(path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) fail(path + ": " + std::strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
      const int e = errno;
      close(fd);
      fail(path + ": " + std::strerror(e));
    }
    size_ = static_cast<size_t>(st.st_size);
    ino_ = st.st_ino;
    ctime_ = st.st_ctim;
    if (size_ >= min) addr_ = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (size_ < min) fail(path + ": not a stats file (too short)");
    if (addr_ == MAP_FAILED) fail(path + ": " + std::strerror(errno));
  }
  ~Mapping() {
    if (addr_ != MAP_FAILED) munmap(addr_, size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  // The counters of a file of `kind`, `size` bytes at the header's offset; checked.
  const void* counters(uint32_t kind, size_t size) const {
    const auto* h = static_cast<const stats_header*>(addr_);
    if (h->magic != STATS_MAGIC) fail(path_ + ": not a stats file (bad magic)");
    if (h->version != STATS_VERSION) {
      fail(path_ + ": stats version " + std::to_string(h->version) + ", this snabb reads " +
           std::to_string(STATS_VERSION));
    }
    if (h->kind != kind) fail(path_ + ": stats of another kind (" + std::to_string(h->kind) + ")");
    if (h->size < size || h->offset + size > size_) fail(path_ + ": stats file cut short");
    return static_cast<const char*>(addr_) + h->offset;
  }
  const void* base() const { return addr_; }
  // Whether the file at path is still the one mapped (st from lstat): a file made again may reuse
  // an inode number, not its change time.
  bool same(const struct stat& st) const {
    return st.st_ino == ino_ && static_cast<size_t>(st.st_size) == size_ &&
           st.st_ctim.tv_sec == ctime_.tv_sec && st.st_ctim.tv_nsec == ctime_.tv_nsec;
  }

 private:
  std::string path_;
  size_t size_ = 0;
  ino_t ino_ = 0;
  struct timespec ctime_ = {};
  void* addr_ = MAP_FAILED;
};

// The mappings a thread keeps between reads: get() maps a file or gives the one kept for it;
// sweep() unmaps those no read has asked for since the last sweep (objects that left).
class Mappings {
 public:
  const Mapping& get(const std::string& path, size_t min = sizeof(stats_header)) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) fail(path + ": " + std::strerror(errno));
    auto it = kept_.find(path);
    if (it == kept_.end() || !it->second.mapping->same(st)) {
      Entry e{std::make_unique<Mapping>(path, min), true};
      it = kept_.insert_or_assign(path, std::move(e)).first;
    }
    it->second.used = true;
    return *it->second.mapping;
  }
  void sweep() {
    for (auto it = kept_.begin(); it != kept_.end();) {
      if (!it->second.used) {
        it = kept_.erase(it);
      } else {
        it->second.used = false;
        ++it;
      }
    }
  }

 private:
  struct Entry {
    std::unique_ptr<Mapping> mapping;
    bool used;
  };
  std::map<std::string, Entry> kept_;
};

thread_local Mappings kept;

// One load of a field another process writes.
template <typename T>
T load(const T& field) {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

// The names in directory path, sorted; none when it is missing.
std::vector<std::string> children(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (!dir) return names;
  while (const dirent* e = readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      names.emplace_back(e->d_name);
    }
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// The app's counter files (X.counter: 8 bytes, a uint64_t), by X. One that vanishes while read
// (its app is leaving) is left out.
std::map<std::string, uint64_t> counters(const std::string& dir) {
  std::map<std::string, uint64_t> result;
  static const std::string suffix = ".counter";
  for (const std::string& file : children(dir)) {
    if (file.size() <= suffix.size() ||
        file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    try {
      const Mapping& m = kept.get(dir + "/" + file, sizeof(uint64_t));
      result[unescape_name(file.substr(0, file.size() - suffix.size()))] =
          load(*static_cast<const uint64_t*>(m.base()));
    } catch (const std::runtime_error&) {
      continue;  // gone, or not yet whole
    }
  }
  return result;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void json_string(std::ostringstream& out, const std::string& s) {
  out << '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out << '\\' << c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out << buf;
    } else {
      out << c;
    }
  }
  out << '"';
}

}  // namespace

std::string escape_name(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto u = static_cast<unsigned char>(name[i]);
    if (u == '%' || u == '/' || u < 0x20 || u == 0x7f || (i == 0 && u == '.')) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", u);
      out += buf;
    } else {
      out += name[i];
    }
  }
  return out;
}

std::string unescape_name(const std::string& file) {
  std::string out;
  for (size_t i = 0; i < file.size(); ++i) {
    if (file[i] == '%' && i + 2 < file.size() && hex(file[i + 1]) >= 0 && hex(file[i + 2]) >= 0) {
      out += static_cast<char>(hex(file[i + 1]) * 16 + hex(file[i + 2]));
      i += 2;
    } else {
      out += file[i];
    }
  }
  return out;
}

namespace {

// One run directory's own counters.
Snapshot read_one(const std::string& rundir) {
  Snapshot s;
  s.rundir = rundir;
  const std::string engine_path = rundir + "/engine/stats";
  if (!exists(rundir)) fail(rundir + ": " + std::strerror(errno));
  if (!exists(engine_path)) {
    fail(engine_path + ": " + std::strerror(errno) +
         " (not the run directory of a snabb run, bench or basic1)");
  }
  {
    const Mapping& m = kept.get(engine_path);
    const auto* e =
        static_cast<const engine_stats*>(m.counters(STATS_ENGINE, sizeof(engine_stats)));
    const auto* file = static_cast<const stats_engine_file*>(m.base());
    s.pid = load(file->header.pid);
    s.engine.tsc_hz = static_cast<double>(load(file->info.tsc_hz));
    s.engine.started_ns = load(file->info.started_ns);
    s.engine.breaths = load(e->breaths);
    s.engine.cycles = load(e->cycles);
    s.engine.packets = load(e->packets);
    s.engine.heartbeat_ns = load(e->heartbeat_ns);
    s.engine.breath_buckets.resize(ENGINE_BREATH_BUCKETS);
    s.engine.bucket_limits.resize(ENGINE_BREATH_BUCKETS);
    for (int i = 0; i < ENGINE_BREATH_BUCKETS; ++i) {
      s.engine.breath_buckets[i] = load(e->breath_cycles[i]);
      s.engine.bucket_limits[i] = snabb_engine_breath_bucket_limit(i);
    }
  }
  {
    std::ifstream config(rundir + "/engine/config");
    std::getline(config, s.config);
  }
  // An app or link may leave the graph between listing its directory and reading its file: it is
  // then left out, as if listed a moment later.
  const std::string apps = rundir + "/engine/apps";
  for (const std::string& file : children(apps)) {
    const std::string path = apps + "/" + file;
    App a;
    a.name = unescape_name(file);
    try {
      const Mapping& m = kept.get(path);
      const auto* st = static_cast<const app_stats*>(m.counters(STATS_APP, sizeof(app_stats)));
      a.calls = load(st->calls);
      a.cycles = load(st->cycles);
      a.idle_cycles = load(st->idle_cycles);
      a.packets_in = load(st->packets_in);
      a.packets_out = load(st->packets_out);
      a.errors = load(st->errors);
      a.freed = load(st->freed);
    } catch (const std::runtime_error&) {
      if (exists(path)) throw;
      continue;
    }
    a.counters = counters(rundir + "/apps/" + file);
    s.apps.push_back(std::move(a));
  }
  const std::string links = rundir + "/engine/links";
  for (const std::string& file : children(links)) {
    const std::string path = links + "/" + file;
    Link l;
    l.name = unescape_name(file);
    const size_t arrow = l.name.find(" -> ");
    if (arrow != std::string::npos) {
      l.from = l.name.substr(0, arrow);
      l.to = l.name.substr(arrow + 4);
    }
    try {
      const Mapping& m = kept.get(path);
      const auto* k =
          static_cast<const runtime::Link*>(m.counters(STATS_LINK, sizeof(runtime::Link)));
      // rx before tx: both only grow, so queued (tx - drop - rx) is never under-read below 0.
      l.rxpackets = load(k->stats.rxpackets);
      l.rxbytes = load(k->stats.rxbytes);
      l.txdrop = load(k->stats.txdrop);
      l.txpackets = load(k->stats.txpackets);
      l.txbytes = load(k->stats.txbytes);
    } catch (const std::runtime_error&) {
      if (exists(path)) throw;
      continue;
    }
    l.queued = l.txpackets >= l.txdrop + l.rxpackets ? l.txpackets - l.txdrop - l.rxpackets : 0;
    s.links.push_back(std::move(l));
  }
  return s;
}

}  // namespace

Snapshot read(const std::string& rundir) {
  Snapshot s = read_one(rundir);
  Engine& e = s.engine;
  uint64_t heartbeat = UINT64_MAX;
  for (const std::string& name : children(rundir + "/workers")) {
    if (name.ends_with(".tmp")) continue;
    Snapshot w;
    try {
      w = read_one(rundir + "/workers/" + name);
    } catch (const std::runtime_error&) {
      continue;  // a worker starting, or gone
    }
    s.workers.push_back({name, w.pid});
    e.breaths += w.engine.breaths, e.cycles += w.engine.cycles, e.packets += w.engine.packets;
    for (size_t i = 0; i < e.breath_buckets.size() && i < w.engine.breath_buckets.size(); ++i) {
      e.breath_buckets[i] += w.engine.breath_buckets[i];
    }
    heartbeat = std::min(heartbeat, w.engine.heartbeat_ns);
    for (App& a : w.apps) {
      a.worker = name;
      s.apps.push_back(std::move(a));
    }
    for (Link& l : w.links) {
      l.worker = name;
      s.links.push_back(std::move(l));
    }
  }
  if (!s.workers.empty()) e.heartbeat_ns = heartbeat;
  kept.sweep();
  return s;
}

std::string to_json(const Snapshot& s) {
  std::ostringstream out;
  out << "{\"pid\": " << s.pid << ", \"rundir\": ";
  json_string(out, s.rundir);
  out << ", \"config\": ";
  json_string(out, s.config);
  const Engine& e = s.engine;
  out << ", \"engine\": {\"breaths\": " << e.breaths << ", \"cycles\": " << e.cycles
      << ", \"packets\": " << e.packets << ", \"tsc_hz\": " << static_cast<uint64_t>(e.tsc_hz)
      << ", \"started_ns\": " << e.started_ns << ", \"heartbeat_ns\": " << e.heartbeat_ns
      << ", \"breath_buckets\": [";
  // Only the buckets that hold breaths, as [limit, count] pairs: 512 mostly empty buckets are
  // noise.
  bool first = true;
  for (size_t i = 0; i < e.breath_buckets.size(); ++i) {
    if (!e.breath_buckets[i]) continue;
    out << (first ? "" : ", ") << "[" << e.bucket_limits[i] << ", " << e.breath_buckets[i] << "]";
    first = false;
  }
  out << "]}, \"apps\": [";
  for (size_t i = 0; i < s.apps.size(); ++i) {
    const App& a = s.apps[i];
    out << (i ? ", " : "") << "{\"name\": ";
    json_string(out, a.name);
    if (!a.worker.empty()) {
      out << ", \"worker\": ";
      json_string(out, a.worker);
    }
    out << ", \"calls\": " << a.calls << ", \"cycles\": " << a.cycles
        << ", \"idle_cycles\": " << a.idle_cycles << ", \"packets_in\": " << a.packets_in
        << ", \"packets_out\": " << a.packets_out << ", \"errors\": " << a.errors
        << ", \"freed\": " << a.freed << ", \"counters\": {";
    bool first_counter = true;
    for (const auto& [name, value] : a.counters) {
      out << (first_counter ? "" : ", ");
      json_string(out, name);
      out << ": " << value;
      first_counter = false;
    }
    out << "}}";
  }
  out << "], \"links\": [";
  for (size_t i = 0; i < s.links.size(); ++i) {
    const Link& l = s.links[i];
    out << (i ? ", " : "") << "{\"name\": ";
    json_string(out, l.name);
    if (!l.worker.empty()) {
      out << ", \"worker\": ";
      json_string(out, l.worker);
    }
    out << ", \"from\": ";
    json_string(out, l.from);
    out << ", \"to\": ";
    json_string(out, l.to);
    out << ", \"txpackets\": " << l.txpackets << ", \"txbytes\": " << l.txbytes
        << ", \"rxpackets\": " << l.rxpackets << ", \"rxbytes\": " << l.rxbytes
        << ", \"txdrop\": " << l.txdrop << ", \"queued\": " << l.queued << "}";
  }
  out << "]";
  if (!s.workers.empty()) {
    out << ", \"workers\": [";
    for (size_t i = 0; i < s.workers.size(); ++i) {
      out << (i ? ", " : "") << "{\"name\": ";
      json_string(out, s.workers[i].name);
      out << ", \"pid\": " << s.workers[i].pid << "}";
    }
    out << "]";
  }
  out << "}";
  return out.str();
}

}  // namespace snabb::stats

namespace {

using snabb::runtime::set_error;

std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

int fail_errno(const std::string& what) {
  set_error(what + ": " + std::strerror(errno));
  return -1;
}

// Makes directory dir (one level) in dirfd when missing, with mode and group.
int make_dir(int dirfd, const std::string& dir, int mode, int gid) {
  if (dir.empty()) return 0;
  if (mkdirat(dirfd, dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return 0;
    // Its parent first (apps/, links/), then it.
    if (errno != ENOENT) return fail_errno(dir);
    if (make_dir(dirfd, parent_of(dir), mode, gid) != 0) return -1;  // (the parent's error)
    if (mkdirat(dirfd, dir.c_str(), 0700) != 0) return fail_errno(dir);
  }
  if (fchmodat(dirfd, dir.c_str(), static_cast<mode_t>(mode), 0) != 0) return fail_errno(dir);
  if (gid >= 0 && fchownat(dirfd, dir.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid),
                           AT_SYMLINK_NOFOLLOW) != 0) {
    return fail_errno(dir);
  }
  return 0;
}

}  // namespace

extern "C" {

void* snabb_stats_create(int dirfd, const char* path, size_t size, int dir_mode, int file_mode,
                         int gid) {
  if (make_dir(dirfd, parent_of(path), dir_mode, gid) != 0) return nullptr;
  const int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = openat(dirfd, path, flags, 0600);
  if (fd < 0 && errno == EEXIST && unlinkat(dirfd, path, 0) == 0)
    fd = openat(dirfd, path, flags, 0600);
  if (fd < 0) return fail_errno(path), nullptr;
  void* mem = MAP_FAILED;
  if ((file_mode == 0600 || fchmod(fd, static_cast<mode_t>(file_mode)) == 0) &&
      (gid < 0 || fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(gid)) == 0) &&
      ftruncate(fd, static_cast<off_t>(size)) == 0) {
    mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (mem == MAP_FAILED) {
    fail_errno(path);
    unlinkat(dirfd, path, 0);
  }
  close(fd);
  return mem == MAP_FAILED ? nullptr : mem;
}

int snabb_stats_move(int dirfd, const char* from, const char* to, int dir_mode, int gid) {
  if (make_dir(dirfd, parent_of(to), dir_mode, gid) != 0) return -1;
  return renameat(dirfd, from, dirfd, to) == 0 ? 0 : fail_errno(std::string(from) + " -> " + to);
}
}
