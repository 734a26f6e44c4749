// Safety nets (see safety.h): stop signals, the watchdog, crash reports.
//
// Everything here that runs in a signal handler is async-signal-safe: it reads plain memory (the
// engine's current app and method, the trace table below), formats into a stack buffer and
// write(2)s it. Two things go further, each where nothing safer says as much:
// - the watchdog asks for the Lua line of interpreted code with a count hook (lua_sethook, which
//   LuaJIT's own luajit.c calls from its SIGINT handler); the hook then runs as ordinary code at
//   the next interpreted instruction. Compiled code never checks hooks: there the trace's lines are
//   the answer.
// - a crash outside compiled code reads the Lua line with lua_getstack/lua_getinfo, last, after
//   everything else is printed. Neither allocates. The interpreter writes back its frame before
//   it calls C (FFI conversions, FFI calls, the C API), so where most FFI crashes happen the line
//   is exact; inside the interpreter's own code it may be that of the last such call, and in a C
//   function called from compiled code that of the function the trace was entered in. Should the
//   read itself fault, the handler is already reset (SA_RESETHAND): the process ends as it would.
#include "jit/safety.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>

#include "runtime/clock.h"
#include "runtime/engine.h"

namespace snabb::vm {
namespace {

// A line of text built without allocating, written with one write(2).
class Message {
 public:
  Message& operator<<(const char* s) {
    while (*s && n_ < sizeof buf_ - 1) buf_[n_++] = *s++;
    return *this;
  }
  Message& number(uint64_t v, int base = 10) {
    char digits[24];
    int i = 0;
    do {
      digits[i++] = "0123456789abcdef"[v % base];
      v /= base;
    } while (v);
    if (base == 16) *this << "0x";
    while (i > 0 && n_ < sizeof buf_ - 1) buf_[n_++] = digits[--i];
    return *this;
  }
  // Seconds with one decimal.
  Message& seconds(uint64_t ns) {
    number(ns / 1'000'000'000);
    const char tenth[] = {'.', static_cast<char>('0' + ns / 100'000'000 % 10), 0};
    return *this << tenth << " s";
  }
  // The text so far, NUL-terminated, into out (of size n).
  void copy_to(char* out, size_t n) const {
    const size_t k = n_ < n - 1 ? n_ : n - 1;
    std::memcpy(out, buf_, k);
    out[k] = 0;
  }
  void write() {
    buf_[n_++] = '\n';
    for (size_t done = 0; done < n_;) {
      const ssize_t w = ::write(STDERR_FILENO, buf_ + done, n_ - done);
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
    n_ = 0;
  }

 private:
  char buf_[1024];
  size_t n_ = 0;
};

const char* signal_name(int signo) {
  switch (signo) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGALRM:
      return "SIGALRM";
    case SIGSEGV:
      return "SIGSEGV (segmentation fault)";
    case SIGBUS:
      return "SIGBUS (bus error)";
    case SIGILL:
      return "SIGILL (illegal instruction)";
    case SIGFPE:
      return "SIGFPE (arithmetic error)";
    case SIGABRT:
      return "SIGABRT";
    default:
      return "signal";
  }
}

// --- Compiled traces and their source lines ---------------------------------------------------

constexpr int kMaxTrace = 8192;  // above jit/policy.lua's maxtrace (8000)

// One per trace number, made the first time that number is used and never freed, so a handler
// never reads freed memory. An entry is invalid while end == 0: it is rewritten in that state.
struct TraceLines {
  volatile uintptr_t start = 0, end = 0;
  char lines[512] = {};  // longer lists are cut (paths are shortened in jit/safety.lua)
};
std::array<std::unique_ptr<TraceLines>, kMaxTrace> traces;

// The trace whose machine code holds ip, or 0; *lines: its source lines.
int trace_at(uintptr_t ip, const char** lines) {
  for (int tr = 1; tr < kMaxTrace; ++tr) {
    const TraceLines* t = traces[tr].get();
    if (t && ip >= t->start && ip < t->end) {
      *lines = t->lines;
      return tr;
    }
  }
  return 0;
}

// --- Where the interrupted code is ---------------------------------------------------------

lua_State* main_L = nullptr;  // the process's Lua state (the engine and its apps run on it)

uintptr_t interrupted_ip(void* context) {
  return static_cast<uintptr_t>(static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP]);
}

// Appends "in compiled trace N (file:lines)"; false (nothing appended) outside compiled code.
bool describe_trace(Message& m, uintptr_t ip) {
  const char* lines = nullptr;
  const int tr = trace_at(ip, &lines);
  if (!tr) return false;
  m << "in compiled trace ";
  m.number(tr) << " (" << lines << ")";
  return true;
}

// Appends "in C code (instruction 0x...)", and "called from compiled trace N (lines)" when a
// return address into a trace's machine code is among the stack's top 16 words (compiled code
// calls C functions with a plain call, and keeps no frame of its own that would hide it).
void describe_c(Message& m, uintptr_t ip, void* context) {
  m << "in C code (instruction ";
  m.number(ip, 16) << ")";
  const auto* sp = reinterpret_cast<const uintptr_t*>(
      static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RSP]);
  for (int i = 0; i < 16; ++i) {
    const char* lines = nullptr;
    if (const int tr = trace_at(sp[i], &lines)) {
      m << " called from compiled trace ";
      m.number(tr) << " (" << lines << ")";
      return;
    }
  }
}

// Appends "file:line", the innermost Lua function's current line (see the file comment).
bool describe_lua_line(Message& m) {
  if (!main_L) return false;
  lua_Debug ar;
  for (int level = 0; level < 20 && lua_getstack(main_L, level, &ar); ++level) {
    if (lua_getinfo(main_L, "Sl", &ar) && ar.currentline > 0) {
      m << ar.short_src << ":";
      m.number(static_cast<uint64_t>(ar.currentline));
      return true;
    }
  }
  return false;
}

// "app 'NAME' METHOD", or "" and false outside app calls.
bool describe_app(Message& m) {
  const runtime::Engine& e = runtime::engine();
  if (!*e.current_app()) return false;
  m << "app '" << e.current_app() << "' " << e.current_method();
  return true;
}

// An app call, told apart from every other: the engine's cycle count changes at the end of each.
struct Call {
  const char* app = "";
  uint64_t cycles = 0;
  bool operator==(const Call& o) const { return app == o.app && cycles == o.cycles; }
};
Call current_call() {
  runtime::Engine& e = runtime::engine();
  return {e.current_app(), e.stats().cycles};
}

// --- Stop signals ---------------------------------------------------------------------------

// SIGINT and SIGTERM end a run as its normal end does (exit status 0, as tcpdump's); the others,
// whose default action ends the process, stop it as cleanly and exit with 128 + the signal
// number, the status their default action would give.
constexpr int kStopSignals[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
                                SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM};

volatile sig_atomic_t first_signal = 0;
Call first_signal_call;
uint64_t first_signal_ns = 0;

// The first stop signal asks the engine to stop after the current breath (the apps are then
// stopped, a PcapWriter flushed, the run directory removed); outside the engine the program
// carries on to the point where the engine would run, and stops there. A second one ends the
// process at once, naming the app that did not return; SIGPIPE (a reader of our output gone)
// never does, since every later write raises it again.
void on_stop_signal(int signo, siginfo_t*, void* context) {
  if (!first_signal) {
    first_signal = signo;
    first_signal_call = current_call();
    first_signal_ns = runtime::monotonic_ns();
    runtime::Engine::request_stop();
    return;
  }
  if (signo == SIGPIPE) return;
  Message m;
  m << "snabb: " << signal_name(signo) << " again: ending the process now";
  if (*runtime::engine().current_app()) {
    m << "; ";
    describe_app(m);
    if (current_call() == first_signal_call) {
      m << " has not returned since the " << signal_name(first_signal) << " ";
      m.seconds(runtime::monotonic_ns() - first_signal_ns) << " ago";
    }
    m << ", ";
    if (!describe_trace(m, interrupted_ip(context))) m << "running interpreted or in C";
  }
  m.write();
  signal(signo, SIG_DFL);
  raise(signo);  // delivered as this handler returns: the default action, status 128 + signo
}

// --- Watchdog --------------------------------------------------------------------------------

uint64_t watchdog_ns = 0;  // 0: off (jit/safety.lua sets the default)
timer_t watchdog_timer;
bool watchdog_timer_made = false;
bool watchdog_handler_installed = false;
Call watched;
uint64_t watched_since = 0;
int reports = 0;  // about the watched call: 1 once reported, 2 when the end is announced
volatile sig_atomic_t hook_pending = 0;
char hook_message[1024];

int watchdog_signal() { return SIGRTMIN + 1; }

// Runs at the next interpreted instruction after the watchdog asked for it: ordinary code.
void on_hook(lua_State* L, lua_Debug* ar) {
  sigset_t block, saved;
  sigemptyset(&block);
  sigaddset(&block, watchdog_signal());
  sigprocmask(SIG_BLOCK, &block, &saved);
  lua_sethook(L, nullptr, 0, 0);
  if (hook_pending && current_call() == watched && lua_getinfo(L, "Sl", ar)) {
    std::fprintf(stderr, "%s; it is running interpreted at %s:%d\n", hook_message, ar->short_src,
                 ar->currentline);
  }
  hook_pending = 0;
  sigprocmask(SIG_SETMASK, &saved, nullptr);
}

// Every quarter of the watchdog's time (at most every second): is the same app call still running?
// Once it has run for the watchdog's time it is named with where it is; at twice that time the
// process ends (SIGABRT, so a core dump shows the loop where dumps are enabled): a dataplane app
// that keeps its core that long has stopped every other app for as long.
void on_watchdog(int, siginfo_t*, void* context) {
  const Call call = current_call();
  const uint64_t now = runtime::monotonic_ns();
  if (!*call.app || !(call == watched)) {
    watched = call;
    watched_since = now;
    reports = 0;
    return;
  }
  const uint64_t stuck = now - watched_since;
  if (watchdog_ns == 0 || stuck < watchdog_ns) return;
  const uintptr_t ip = interrupted_ip(context);
  Message m;
  m << "snabb: watchdog: ";
  describe_app(m);
  if (reports == 0) {
    m << " has not returned for ";
    m.seconds(stuck);
    reports = 1;
    const char* lines;
    if (trace_at(ip, &lines)) {
      describe_trace(m << "; it is ", ip);
      m.write();
    } else if (main_L) {
      // Interpreted or in C: the hook gives the line at the next interpreted instruction.
      m.copy_to(hook_message, sizeof hook_message);
      hook_pending = 1;
      lua_sethook(main_L, on_hook, LUA_MASKCOUNT, 1);
    }
  } else if (hook_pending) {
    // No interpreted instruction since: the call is in C (a C function, a system call).
    lua_sethook(main_L, nullptr, 0, 0);
    hook_pending = 0;
    Message c;
    c << hook_message << "; it is ";
    describe_c(c, ip, context);
    c.write();
  } else if (reports == 1 && stuck >= 2 * watchdog_ns) {
    m << " has still not returned after ";
    m.seconds(stuck) << ": ending the process (SIGABRT); it is ";
    if (!describe_trace(m, ip)) m.number(ip, 16) << " (interpreted or in C)";
    m.write();
    reports = 2;
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
  }
}

// --- Crashes ---------------------------------------------------------------------------------

constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
std::array<char, 64 * 1024> crash_stack;

void on_crash(int signo, siginfo_t* info, void* context) {
  Message m;
  m << "snabb: " << signal_name(signo);
  if (signo == SIGSEGV || signo == SIGBUS) {
    m << " at address ";
    m.number(reinterpret_cast<uintptr_t>(info->si_addr), 16);
  }
  m << " in ";
  if (!describe_app(m)) m << "no app call (engine, config or program code)";
  m << ", ";
  const uintptr_t ip = interrupted_ip(context);
  const bool compiled = describe_trace(m, ip);
  if (!compiled) describe_c(m, ip, context);
  m.write();
  if (!compiled) {
    // Last, as it reads the Lua state (see the file comment).
    Message line;
    line << "snabb: the Lua line running: ";
    if (describe_lua_line(line)) line.write();
  }
  // The handler was reset to the default action on entry (SA_RESETHAND): returning re-runs the
  // faulting instruction, which now ends the process with this signal (status 128 + signo, a core
  // dump where enabled). A signal sent with kill() does not recur, so it is raised again.
  if (info->si_code <= 0) raise(signo);
}

void install(int signo, void (*handler)(int, siginfo_t*, void*), int flags) {
  struct sigaction sa {};
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | flags;
  sigemptyset(&sa.sa_mask);
  sigaction(signo, &sa, nullptr);
}

bool arm_watchdog() {
  if (!watchdog_handler_installed) return true;  // armed by safety_install, with its handler
  if (!watchdog_timer_made) {
    sigevent ev{};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = watchdog_signal();
    ev._sigev_un._tid = gettid();  // the engine's thread
    if (timer_create(CLOCK_MONOTONIC, &ev, &watchdog_timer) != 0) return false;
    watchdog_timer_made = true;
  }
  const uint64_t period =
      watchdog_ns == 0 ? 0 : std::clamp<uint64_t>(watchdog_ns / 4, 10'000'000, 1'000'000'000);
  const timespec ts{static_cast<time_t>(period / 1'000'000'000),
                    static_cast<long>(period % 1'000'000'000)};
  const itimerspec spec{ts, ts};
  return timer_settime(watchdog_timer, 0, &spec, nullptr) == 0;
}

}  // namespace

// safety_install(): the crash handlers (on an alternate stack: a stack overflow is a SIGSEGV too)
// and the watchdog, for the process's Lua state. programs/main.lua calls it first thing.
int safety_install(lua_State* L) {
  main_L = L;
  stack_t ss{};
  ss.ss_sp = crash_stack.data();
  ss.ss_size = crash_stack.size();
  sigaltstack(&ss, nullptr);
  for (int signo : kCrashSignals) install(signo, on_crash, SA_ONSTACK | SA_RESETHAND);
  install(watchdog_signal(), on_watchdog, 0);
  watchdog_handler_installed = true;
  if (!arm_watchdog()) return luaL_error(L, "watchdog: cannot create a timer");
  return 0;
}

// catch_signals(): the stop signals' handler (kStopSignals). It keeps a stop already requested:
// a signal that came while a config was loading stops the engine as soon as it starts.
int catch_signals(lua_State* L) {
  if (!main_L) main_L = L;
  for (int signo : kStopSignals) install(signo, on_stop_signal, 0);
  return 0;
}

int stop_requested(lua_State* L) {
  lua_pushboolean(L, runtime::Engine::stop_requested());
  return 1;
}

// stop_signal() -> signal number (0: none yet), its name, the exit status it calls for.
int stop_signal(lua_State* L) {
  const int signo = first_signal;
  lua_pushinteger(L, signo);
  lua_pushstring(L, signo ? signal_name(signo) : "");
  lua_pushinteger(L, signo == 0 || signo == SIGINT || signo == SIGTERM ? 0 : 128 + signo);
  return 3;
}

// set_watchdog(seconds): how long one app call may run before it is reported (0: never).
int set_watchdog(lua_State* L) {
  const double seconds = luaL_checknumber(L, 1);
  if (!(seconds >= 0 && seconds <= 1e6)) {
    return luaL_error(L, "--watchdog: %f is not a number of seconds from 0 (off) to 1000000",
                      seconds);
  }
  watchdog_ns = static_cast<uint64_t>(seconds * 1e9);
  if (!arm_watchdog()) return luaL_error(L, "watchdog: cannot set its timer");
  return 0;
}

}  // namespace snabb::vm

using namespace snabb::vm;

extern "C" {

void snabb_safety_trace(int trace, uint64_t address, uint32_t size, const char* lines) {
  if (trace <= 0 || trace >= kMaxTrace) return;
  if (!traces[trace]) traces[trace] = std::make_unique<TraceLines>();
  TraceLines& t = *traces[trace];
  t.end = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::strncpy(t.lines, lines, sizeof t.lines - 1);
  t.start = address;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t.end = address + size;
}

void snabb_safety_flush(void) {
  for (auto& t : traces) {
    if (t) t->end = 0;
  }
}
}
