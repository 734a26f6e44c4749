#include "observe/vmprofile.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/engine.h"

namespace snabb::observe {
namespace {

std::string last_error;

// What a function of the snabb binary is, by its name: LuaJIT's (static, so its symbols are in our
// symbol table), ours, or someone else's.
vmprofile_state state_of_symbol(std::string_view name) {
  auto starts = [&](std::string_view prefix) { return name.substr(0, prefix.size()) == prefix; };
  auto any = [&](std::initializer_list<std::string_view> prefixes) {
    return std::any_of(prefixes.begin(), prefixes.end(), starts);
  };
  if (any({"lj_vm_exit", "lj_trace_exit", "lj_snap_restore", "snap_restore", "snap_unsink"})) {
    return VMPROFILE_EXIT;
  }
  if (any({"lj_gc_", "gc_", "lj_mem_", "lj_alloc_"})) return VMPROFILE_GC;
  if (any({"lj_opt_", "fold_", "opt_", "lj_fold"})) return VMPROFILE_OPTIMISE;
  if (any({"lj_asm_", "asm_", "emit_", "ra_", "lj_mcode_", "mcode_"})) return VMPROFILE_ASSEMBLE;
  if (any({"lj_record", "rec_", "recff_", "lj_ffrecord", "lj_crecord", "crec_", "lj_trace_",
           "trace_", "lj_snap_", "snap_", "lj_ir_", "ir_", "lj_dispatch_"})) {
    return VMPROFILE_RECORD;
  }
  if (any({"lj_ccall", "lj_cconv", "lj_cdata", "lj_carith", "lj_ctype", "lj_clib", "lj_cparse"})) {
    return VMPROFILE_C;
  }
  if (starts("lj_") || starts("lua_") || starts("luaL_") || starts("luaJIT_")) {
    // The VM itself (lj_BC_*, lj_vm_*, fast functions) and the runtime it calls. The Lua C API is
    // only entered from our C++ (calling apps), so it counts as the runtime.
    return starts("lj_") ? VMPROFILE_INTERP : VMPROFILE_RUNTIME;
  }
  if (starts("_ZN5snabb") || starts("snabb_") || starts("_ZNK5snabb")) return VMPROFILE_RUNTIME;
  return VMPROFILE_C;
}

bool fail(const char* what) {
  last_error = std::string("vmprofile: ") + what;
  return false;
}

uintptr_t load_bias() {
  uintptr_t bias = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        *static_cast<uintptr_t*>(data) = info->dlpi_addr;
        return 1;  // the first object is the program itself
      },
      &bias);
  return bias;
}

// Calls visit(name, address, size) for every code symbol of the running binary (.symtab, so
// LuaJIT's hidden and static functions too).
template <typename Visit>
bool read_code_symbols(Visit visit) {
  const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot open /proc/self/exe");
  struct stat st {};
  fstat(fd, &st);
  void* map = mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return fail("cannot map /proc/self/exe");
  const auto* image = static_cast<const uint8_t*>(map);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(image);
  const auto* sections = reinterpret_cast<const Elf64_Shdr*>(image + eh->e_shoff);
  const Elf64_Shdr* symtab = nullptr;
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sections[i].sh_type == SHT_SYMTAB) symtab = &sections[i];
  }
  if (symtab) {
    const char* names = reinterpret_cast<const char*>(image + sections[symtab->sh_link].sh_offset);
    const auto* symbols = reinterpret_cast<const Elf64_Sym*>(image + symtab->sh_offset);
    const uintptr_t bias = load_bias();
    for (size_t i = 0; i < symtab->sh_size / sizeof(Elf64_Sym); ++i) {
      const Elf64_Sym& s = symbols[i];
      const int type = ELF64_ST_TYPE(s.st_info);
      if (s.st_value == 0 || s.st_shndx == SHN_UNDEF || s.st_shndx >= eh->e_shnum) continue;
      if (!(sections[s.st_shndx].sh_flags & SHF_EXECINSTR)) continue;
      if (type == STT_FUNC || type == STT_NOTYPE)
        visit(names + s.st_name, bias + s.st_value, s.st_size);
    }
  }
  munmap(map, st.st_size);
  return symtab ? true : fail("the binary has no symbol table (stripped?)");
}

// The binary's code as address ranges classified by symbol; built once, read by the handler.
class SymbolMap {
 public:
  bool load() {
    struct Symbol {
      uintptr_t address, size;
      int state;
    };
    std::vector<Symbol> found;
    if (!read_code_symbols([&](const char* name, uintptr_t address, uintptr_t size) {
          found.push_back({address, size, state_of_symbol(name)});
        })) {
      return false;
    }
    std::sort(found.begin(), found.end(),
              [](const Symbol& a, const Symbol& b) { return a.address < b.address; });
    // Each symbol covers up to the next one (the interpreter's labels have no sizes); runs of the
    // same state become one range.
    for (size_t i = 0; i < found.size(); ++i) {
      const uintptr_t end = i + 1 < found.size()
                                ? found[i + 1].address
                                : found[i].address + std::max<uintptr_t>(found[i].size, 1);
      if (!ranges_.empty() && ranges_.back().state == found[i].state &&
          ranges_.back().end == found[i].address) {
        ranges_.back().end = end;
      } else {
        ranges_.push_back({found[i].address, end, found[i].state});
      }
    }
    return true;
  }
  // The state of an address in the binary; -1 when it is outside it.
  int lookup(uintptr_t ip) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), ip,
                               [](uintptr_t a, const Range& r) { return a < r.start; });
    if (it == ranges_.begin()) return -1;
    --it;
    return ip < it->end ? it->state : -1;
  }

 private:
  struct Range {
    uintptr_t start, end;
    int state;
  };
  std::vector<Range> ranges_;
};

// Where each trace's machine code is. Two copies: the main thread edits the one the signal handler
// is not reading, then switches (the handler runs on the same thread, between instructions).
class TraceMap {
 public:
  void add(int trace, uintptr_t start, uint32_t size, uint32_t loop) {
    const Table& now = tables_[active_.load(std::memory_order_relaxed)];
    Table& next = tables_[1 - active_.load(std::memory_order_relaxed)];
    std::copy(now.entries.begin(), now.entries.begin() + now.n, next.entries.begin());
    next.n = now.n;
    auto& e = next.entries;
    auto at = std::lower_bound(e.begin(), e.begin() + next.n, start,
                               [](const Entry& x, uintptr_t a) { return x.start < a; });
    if (next.n == e.size()) return;  // full: such traces count as C
    std::move_backward(at, e.begin() + next.n, e.begin() + next.n + 1);
    *at = {start, start + size, loop ? start + loop : start + size, trace};
    next.n++;
    publish(next);
  }
  void clear() {
    Table& next = tables_[1 - active_.load(std::memory_order_relaxed)];
    next.n = 0;
    publish(next);
  }
  // The trace at ip (0: none); *in_loop says whether ip is in its loop part.
  int lookup(uintptr_t ip, bool* in_loop) const {
    const Table& t = tables_[active_.load(std::memory_order_relaxed)];
    auto end = t.entries.begin() + t.n;
    auto it = std::upper_bound(t.entries.begin(), end, ip,
                               [](uintptr_t a, const Entry& x) { return a < x.start; });
    if (it == t.entries.begin()) return 0;
    --it;
    if (ip >= it->end) return 0;
    *in_loop = ip >= it->loop;
    return it->trace;
  }

 private:
  struct Entry {
    uintptr_t start, end, loop;
    int trace;
  };
  struct Table {
    std::array<Entry, VMPROFILE_MAX_TRACE + 1> entries;
    size_t n = 0;
  };
  void publish(const Table& next) {
    std::atomic_signal_fence(std::memory_order_release);
    active_.store(&next == &tables_[0] ? 0 : 1, std::memory_order_relaxed);
  }
  std::array<Table, 2> tables_;
  std::atomic<int> active_{0};
};

// Maps bytes of fd (a sparse file, sized when `sized`) shared, and closes fd; nullptr with
// last_error naming path when it cannot. No readahead: the kernel read (zeroed) the sparse file
// around the page the header is on; page faults were 28% of an observed configure of 10,000 apps
// (perf), 9% with this.
void* map_sparse(int fd, size_t bytes, bool sized, const char* path) {
  void* map = sized ? mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  close(fd);
  if (map == MAP_FAILED) {
    last_error = std::string(path) + ": " + std::strerror(errno);
    return nullptr;
  }
  madvise(map, bytes, MADV_RANDOM);
  return map;
}

// A zone file, mapped for as long as the zone exists.
class Zone {
 public:
  // append: keep the counts of a zone file of this layout that is there already.
  static std::unique_ptr<Zone> create(const char* path, const char* name, bool append) {
    const int fd = open(path, O_RDWR | O_CREAT | (append ? 0 : O_TRUNC) | O_CLOEXEC, 0644);
    if (fd < 0) {
      last_error = std::string(path) + ": " + std::strerror(errno);
      return nullptr;
    }
    struct stat st {};
    if (append &&
        (fstat(fd, &st) != 0 || st.st_size != sizeof(vmprofile_file) || !has_header(fd))) {
      append = false;
    }
    // A sparse file: rows of traces that never run take no disk or memory.
    const bool sized =
        append || (ftruncate(fd, 0) == 0 && ftruncate(fd, sizeof(vmprofile_file)) == 0);
    void* map = map_sparse(fd, sizeof(vmprofile_file), sized, path);
    if (map == nullptr) return nullptr;
    auto* f = static_cast<vmprofile_file*>(map);
    std::memcpy(f->magic, "SNABBVMP", 8);
    f->version = VMPROFILE_VERSION;
    f->states = VMPROFILE_STATES;
    f->max_trace = VMPROFILE_MAX_TRACE;
    std::strncpy(f->zone, name, sizeof f->zone - 1);
    return std::make_unique<Zone>(f);
  }
  explicit Zone(vmprofile_file* f) : file_(f) {}
  ~Zone() { munmap(file_, sizeof(vmprofile_file)); }
  Zone(const Zone&) = delete;
  Zone& operator=(const Zone&) = delete;
  vmprofile_file* file() const { return file_; }

 private:
  // Whether the file starts as a vmprofile_file of this version and layout does.
  static bool has_header(int fd) {
    struct {
      char magic[8];
      uint32_t version, states, max_trace;
    } h;
    static_assert(offsetof(vmprofile_file, max_trace) == 16);
    return pread(fd, &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h) &&
           std::memcmp(h.magic, "SNABBVMP", 8) == 0 && h.version == VMPROFILE_VERSION &&
           h.states == VMPROFILE_STATES && h.max_trace == VMPROFILE_MAX_TRACE;
  }
  vmprofile_file* file_;
};

// The address table's file, mapped while it is open (snabb_vmprofile_addresses).
class AddressTable {
 public:
  static std::unique_ptr<AddressTable> create(const char* path) {
    const int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      last_error = std::string(path) + ": " + std::strerror(errno);
      return nullptr;
    }
    // Sparse, as the zone files: slots are spread by their hash, so pages fill where samples land.
    const bool sized = ftruncate(fd, sizeof(vmprofile_addresses)) == 0;
    void* map = map_sparse(fd, sizeof(vmprofile_addresses), sized, path);
    if (map == nullptr) return nullptr;
    auto* f = static_cast<vmprofile_addresses*>(map);
    std::memcpy(f->magic, "SNABBVMA", 8);
    f->version = VMPROFILE_ADDRESSES_VERSION;
    f->slots = VMPROFILE_ADDRESS_SLOTS;
    f->probes = VMPROFILE_ADDRESS_PROBES;
    return std::make_unique<AddressTable>(f);
  }
  explicit AddressTable(vmprofile_addresses* f) : file_(f) {}
  ~AddressTable() { munmap(file_, sizeof(vmprofile_addresses)); }
  AddressTable(const AddressTable&) = delete;
  AddressTable& operator=(const AddressTable&) = delete;
  vmprofile_addresses* file() const { return file_; }

 private:
  vmprofile_addresses* file_;
};

// Counts a sample at ip in trace (of flush generation flushes) in the table f; called from the
// signal handler: a hash, at most VMPROFILE_ADDRESS_PROBES slots looked at, no allocation.
void count_address(vmprofile_addresses* f, uintptr_t ip, uint32_t trace, uint32_t flushes) {
  static_assert((VMPROFILE_ADDRESS_SLOTS & (VMPROFILE_ADDRESS_SLOTS - 1)) == 0);
  constexpr unsigned kBits = std::countr_zero(static_cast<unsigned>(VMPROFILE_ADDRESS_SLOTS));
  f->samples++;
  const uint64_t key = ip ^ (uint64_t{trace} << 47) ^ (uint64_t{flushes} << 32);
  uint32_t i = static_cast<uint32_t>((key * 0x9e3779b97f4a7c15ull) >> (64 - kBits));
  for (int probe = 0; probe < VMPROFILE_ADDRESS_PROBES; ++probe) {
    vmprofile_address& s = f->slot[i];
    if (s.address == ip && s.trace == trace && s.flushes == flushes) {
      s.count++;
      return;
    }
    if (s.address == 0) {
      s.trace = trace;
      s.flushes = flushes;
      s.count = 1;
      std::atomic_signal_fence(std::memory_order_release);  // the slot's key and count, then taken
      s.address = ip;
      f->used++;
      return;
    }
    i = (i + 1) & (VMPROFILE_ADDRESS_SLOTS - 1);
  }
  f->overflow++;
}

std::unique_ptr<SymbolMap> symbols;  // loaded on first use, kept for the process
TraceMap traces;
std::unique_ptr<AddressTable> addresses;
vmprofile_addresses* volatile address_file = nullptr;  // what the handler reads
uint32_t flushes = 0;                                  // jit.flush() calls seen
// Zone ids index these; 0 is unused. The signal handler reads zone_files only: a zone is taken out
// of it before it is unmapped, and put in only once its file is mapped. The handler runs on the
// thread that started the timer (SIGEV_THREAD_ID), the one that opens and closes zones, so it sees
// either the old or the new entry and never a zone half gone.
std::vector<std::unique_ptr<Zone>> zones(1);
std::vector<int> free_zone_ids;  // of closed zones, reused before new ids
std::array<vmprofile_file* volatile, VMPROFILE_MAX_ZONES> zone_files{};
volatile int base_zone = 0;
int running_hz = 0;
timer_t timer;
bool timer_armed = false;

bool load_symbols() {
  if (symbols) return true;
  auto map = std::make_unique<SymbolMap>();
  if (!map->load()) return false;
  symbols = std::move(map);
  return true;
}

int classify(uintptr_t ip, int* trace) {
  bool in_loop = false;
  *trace = traces.lookup(ip, &in_loop);
  if (*trace) return in_loop ? VMPROFILE_LOOP : VMPROFILE_HEAD;
  const int state = symbols ? symbols->lookup(ip) : -1;
  return state < 0 ? VMPROFILE_C : state;
}

void on_sigprof(int, siginfo_t*, void* context) {
  const auto ip =
      static_cast<uintptr_t>(static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP]);
  const int zone = runtime::current_profile_zone;
  vmprofile_file* f = zone > 0 && zone < VMPROFILE_MAX_ZONES ? zone_files[zone] : nullptr;
  if (!f) f = zone_files[base_zone];
  if (!f) return;
  int trace = 0;
  const int state = classify(ip, &trace);
  f->counts[trace <= VMPROFILE_MAX_TRACE ? trace : 0][state]++;
  f->samples++;
  vmprofile_addresses* a = address_file;
  if (trace && a) count_address(a, ip, static_cast<uint32_t>(trace), flushes);
}

}  // namespace
}  // namespace snabb::observe

using namespace snabb::observe;

extern "C" {

int snabb_vmprofile_zone(const char* path, const char* name, int append) {
  if (free_zone_ids.empty() && zones.size() >= VMPROFILE_MAX_ZONES) {
    last_error = "vmprofile: " + std::to_string(VMPROFILE_MAX_ZONES - 1) +
                 " zones are open, the most there can be (VMPROFILE_MAX_ZONES - 1; one per app "
                 "and one for the engine): run with --no-vmprofile for graphs this large";
    return -1;
  }
  auto zone = Zone::create(path, name, append != 0);
  if (!zone) return -1;
  zone->file()->hz = running_hz;
  int id;
  if (free_zone_ids.empty()) {
    id = static_cast<int>(zones.size());
    zones.push_back(nullptr);
  } else {
    id = free_zone_ids.back();
    free_zone_ids.pop_back();
  }
  std::atomic_signal_fence(std::memory_order_release);  // the header is written before it is seen
  zone_files[id] = zone->file();
  zones[id] = std::move(zone);
  return id;
}

int snabb_vmprofile_addresses(const char* path) {
  auto table = AddressTable::create(path);
  if (!table) return -1;
  table->file()->hz = running_hz;
  address_file = nullptr;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // out of the handler's reach, then unmapped
  addresses = std::move(table);
  std::atomic_signal_fence(std::memory_order_release);  // the header is written before it is seen
  address_file = addresses->file();
  return 0;
}

void snabb_vmprofile_zone_close(int zone) {
  if (zone <= 0 || zone >= static_cast<int>(zones.size()) || !zones[zone]) return;
  if (base_zone == zone) base_zone = 0;
  zone_files[zone] = nullptr;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // out of the handler's reach, then unmapped
  zones[zone].reset();
  free_zone_ids.push_back(zone);
}

void snabb_vmprofile_select(int zone) { base_zone = zone; }

int snabb_vmprofile_start(int hz) {
  if (hz <= 0 || hz > 100000) {
    last_error = "vmprofile: rate must be 1..100000 Hz";
    return -1;
  }
  if (!load_symbols()) return -1;
  // Zone files are unmapped when the process's statics go; no sample may land after that.
  static const bool stop_at_exit = std::atexit(snabb_vmprofile_stop) == 0;
  (void)stop_at_exit;
  struct sigaction sa {};
  sa.sa_sigaction = on_sigprof;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  // Every other signal waits until a sample is taken. Timers due at the same tick are delivered
  // together, the second handler stacked on the first: the watchdog's (vm/safety.cc), whose period
  // is a whole number of this one's, then saw the entry of on_sigprof as the interrupted
  // instruction, and reported a compiled loop as "in C code" in 4 runs of 6.
  sigfillset(&sa.sa_mask);
  sigaction(SIGPROF, &sa, nullptr);
  // A timer of this thread's CPU time. The kernel checks CPU-time timers at its scheduler tick,
  // so samples ride on interrupts that happen anyway, at most one per tick. A wall-clock timer
  // brings an interrupt of its own per sample: 20-29 us each through this VM's hypervisor, 5.8%
  // of basic1 at 1 kHz; perf_event_open's cpu-clock sampling, with no signal, still takes one
  // and cost about as much (tools/sample-cost.c, tools/bench-observe, README's performance part).
  if (!timer_armed) {
    sigevent ev{};
    ev.sigev_notify = SIGEV_THREAD_ID;  // this thread: the engine's, which opens and closes zones
    ev._sigev_un._tid = gettid();       // sigev_notify_thread_id, which glibc 2.36 does not name
    ev.sigev_signo = SIGPROF;
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &timer) != 0) {
      return fail("timer_create failed");
    }
    timer_armed = true;
  }
  const long ns = 1000000000L / hz;
  const itimerspec spec{{ns / 1000000000L, ns % 1000000000L}, {ns / 1000000000L, ns % 1000000000L}};
  timer_settime(timer, 0, &spec, nullptr);
  // A coarse clock's resolution is the tick (4 ms with the kernel's HZ of 250 here).
  timespec tick{};
  const long tick_ns =
      clock_getres(CLOCK_MONOTONIC_COARSE, &tick) == 0 && tick.tv_sec == 0 ? tick.tv_nsec : 0;
  running_hz = tick_ns > 0 ? std::min<int>(hz, static_cast<int>(1000000000L / tick_ns)) : hz;
  for (auto& z : zones) {
    if (z) z->file()->hz = running_hz;
  }
  if (addresses) addresses->file()->hz = running_hz;
  return 0;
}

int snabb_vmprofile_hz(void) { return running_hz; }

void snabb_vmprofile_stop(void) {
  if (timer_armed) {
    timer_delete(timer);
    timer_armed = false;
  }
  signal(SIGPROF, SIG_IGN);
  running_hz = 0;
}

void snabb_vmprofile_trace(int trace, uint64_t address, uint32_t size, uint32_t loop) {
  traces.add(trace, address, size, loop);
}

void snabb_vmprofile_flush(void) {
  traces.clear();
  flushes++;
}

void snabb_vmprofile_close(void) {
  snabb_vmprofile_stop();
  base_zone = 0;
  for (auto& f : zone_files) f = nullptr;
  address_file = nullptr;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  addresses.reset();
  zones.resize(1);
  free_zone_ids.clear();
}

uint64_t snabb_vmprofile_symbol(const char* name) {
  uint64_t found = 0;
  read_code_symbols([&](const char* n, uintptr_t address, uintptr_t) {
    if (!found && std::strcmp(n, name) == 0) found = address;
  });
  return found;
}

int snabb_vmprofile_classify(uint64_t address, int* trace) {
  load_symbols();
  return classify(address, trace);
}

const char* snabb_vmprofile_error(void) { return last_error.c_str(); }
}
