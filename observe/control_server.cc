// The control server and its client (control_server.h): one Boost.Asio io_context on a thread of
// its own, a Beast HTTP/1.1 session per connection, and the mailbox through which requests for
// Lua's handlers reach the engine's thread and their answers come back.
#include "observe/control_server.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (C++20).
// clang-format off
#include <utility>
// clang-format on

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "observe/vmprofile.h"
#include "runtime/stats.h"

namespace snabb::control {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// How long a connection may take to send a request, and a request may wait for Lua's answer
// (a POST /config runs the new graph's app constructors first).
constexpr auto kReadTimeout = std::chrono::seconds(30);
constexpr auto kLuaTimeout = std::chrono::seconds(60);

// ---------------------------------------------------------------------------------------------
// Text: JSON and Prometheus.

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (size_t i = 0; i < s.size(); i++) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\', out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      // Valid UTF-8 sequences pass; any other byte becomes U+FFFD.
      const int n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
      bool ok = n > 0 && i + n <= s.size() && !(c >= 0xe0 && n == 2);
      for (int k = 1; ok && k < n; k++) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      if (ok) {
        out.append(s, i, n);
        i += n - 1;
      } else {
        out += "\\ufffd";
      }
    }
  }
  out += '"';
}

std::string error_json(const std::string& message) {
  std::string out = "{\"error\": ";
  append_json_string(out, message);
  return out + "}\n";
}

// A Prometheus label value: backslash, double quote and newline escaped.
std::string label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\', out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class Json {
 public:
  Json& key(const char* k) {
    comma();
    append_json_string(out_, k);
    out_ += ": ";
    fresh_ = true;
    return *this;
  }
  Json& str(const std::string& v) {
    comma();
    append_json_string(out_, v);
    return *this;
  }
  template <typename T>
  Json& num(T v) {
    comma();
    out_ += std::to_string(v);
    return *this;
  }
  Json& open(char c) {
    comma();
    out_ += c;
    fresh_ = true;
    return *this;
  }
  Json& close(char c) {
    out_ += c;
    fresh_ = false;
    return *this;
  }
  std::string text() { return out_ + "\n"; }

 private:
  void comma() {
    if (!fresh_) out_ += ", ";
    fresh_ = false;
  }
  std::string out_;
  bool fresh_ = true;
};

// Prometheus text format 0.0.4: each family once, HELP and TYPE first.
class Metrics {
 public:
  void family(const char* name, const char* type, const char* help) {
    name_ = name;
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  template <typename T>
  void sample(const std::string& labels, T value, const char* suffix = "") {
    out_ += name_;
    out_ += suffix;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    if constexpr (std::is_floating_point_v<T>) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", value);
      out_ += buf;
    } else {
      out_ += std::to_string(value);
    }
    out_ += '\n';
  }
  std::string text() { return out_; }

 private:
  std::string out_;
  std::string name_;
};

std::string metrics_text(const stats::Snapshot& s) {
  Metrics m;
  m.family("snabb_info", "gauge", "The instance: its process and config file (value 1).");
  m.sample("pid=\"" + std::to_string(s.pid) + "\",config=\"" + label(s.config) + "\"", 1);
  m.family("snabb_engine_breaths_total", "counter", "Breaths the engine has taken.");
  m.sample("", s.engine.breaths);
  m.family("snabb_engine_cycles_total", "counter", "TSC cycles in app calls and link syncs.");
  m.sample("", s.engine.cycles);
  m.family("snabb_engine_packets_total", "counter", "Packets received by apps.");
  m.sample("", s.engine.packets);
  m.family("snabb_tsc_hz", "gauge", "TSC cycles per second.");
  m.sample("", s.engine.tsc_hz);
  m.family("snabb_start_time_seconds", "gauge", "When the instance started (Unix time).");
  m.sample("", static_cast<double>(s.engine.started_ns) / 1e9);
  // The engine's histogram has 8 buckets per power of two of cycles; Prometheus gets one per
  // power of two from 64 cycles to 2^36 (23 s at 3 GHz), in seconds. No _sum: the engine keeps
  // counts only.
  if (s.engine.tsc_hz > 0 && !s.engine.breath_buckets.empty()) {
    m.family("snabb_engine_breath_seconds", "histogram",
             "Breaths that moved packets, by how long they took.");
    uint64_t cumulative = 0;
    const size_t n = std::min(s.engine.breath_buckets.size(), s.engine.bucket_limits.size());
    for (size_t i = 0; i < n; i++) {
      cumulative += s.engine.breath_buckets[i];
      const uint64_t limit = s.engine.bucket_limits[i];
      if (limit >= 64 && limit <= (uint64_t{1} << 36) && (limit & (limit - 1)) == 0) {
        char le[40];
        std::snprintf(le, sizeof le, "le=\"%.6g\"",
                      static_cast<double>(limit - 1) / s.engine.tsc_hz);
        m.sample(le, cumulative, "_bucket");
      }
    }
    for (size_t i = n; i < s.engine.breath_buckets.size(); i++) {
      cumulative += s.engine.breath_buckets[i];
    }
    m.sample("le=\"+Inf\"", cumulative, "_bucket");
    m.sample("", cumulative, "_count");
  }
  struct AppField {
    const char* name;
    const char* help;
    uint64_t stats::App::*field;
  };
  static constexpr AppField app_fields[] = {
      {"snabb_app_calls_total", "Calls of the app's pull and push.", &stats::App::calls},
      {"snabb_app_cycles_total", "TSC cycles in the app's calls.", &stats::App::cycles},
      {"snabb_app_idle_cycles_total", "TSC cycles in the app's calls that moved no packet.",
       &stats::App::idle_cycles},
      {"snabb_app_packets_in_total", "Packets the app received.", &stats::App::packets_in},
      {"snabb_app_packets_out_total", "Packets the app sent.", &stats::App::packets_out},
      {"snabb_app_errors_total", "Errors the app raised.", &stats::App::errors},
  };
  // A supervisor's workers' apps and links carry a worker label.
  auto app_label = [](const stats::App& a) {
    return "app=\"" + label(a.name) + "\"" +
           (a.worker.empty() ? "" : ",worker=\"" + label(a.worker) + "\"");
  };
  for (const auto& f : app_fields) {
    m.family(f.name, "counter", f.help);
    for (const auto& a : s.apps) m.sample(app_label(a), a.*f.field);
  }
  m.family("snabb_app_freed", "gauge", "Packets the app freed less those it allocated.");
  for (const auto& a : s.apps) m.sample(app_label(a), a.freed);
  bool any = false;
  for (const auto& a : s.apps) any = any || !a.counters.empty();
  if (any) {
    m.family("snabb_app_counter_total", "counter",
             "The app's own counters (apps/APP/NAME.counter).");
    for (const auto& a : s.apps) {
      for (const auto& [name, value] : a.counters) {
        m.sample(app_label(a) + ",counter=\"" + label(name) + "\"", value);
      }
    }
  }
  struct LinkField {
    const char* name;
    const char* type;
    const char* help;
    uint64_t stats::Link::*field;
  };
  static constexpr LinkField link_fields[] = {
      {"snabb_link_tx_packets_total", "counter", "Packets put on the link.",
       &stats::Link::txpackets},
      {"snabb_link_tx_bytes_total", "counter", "Bytes put on the link.", &stats::Link::txbytes},
      {"snabb_link_rx_packets_total", "counter", "Packets taken off the link.",
       &stats::Link::rxpackets},
      {"snabb_link_rx_bytes_total", "counter", "Bytes taken off the link.", &stats::Link::rxbytes},
      {"snabb_link_tx_drop_total", "counter", "Packets dropped because the link was full.",
       &stats::Link::txdrop},
      {"snabb_link_queued", "gauge", "Packets on the link now.", &stats::Link::queued},
  };
  for (const auto& f : link_fields) {
    m.family(f.name, f.type, f.help);
    for (const auto& l : s.links) {
      m.sample("link=\"" + label(l.name) + "\"" +
                   (l.worker.empty() ? "" : ",worker=\"" + label(l.worker) + "\""),
               l.*f.field);
    }
  }
  return m.text();
}

// GET /profile: each vmprofile zone of the run directory (vmprofile/NAME.vmprofile), samples by
// state and its five busiest traces.
std::string profile_json(const std::string& rundir) {
  static const char* const kStates[VMPROFILE_STATES] = {
      "loop", "head", "interp", "c", "gc", "exit", "record", "optimise", "assemble", "runtime"};
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(rundir + "/vmprofile", ec)) {
    if (e.path().extension() == ".vmprofile") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  Json j;
  j.open('{').key("zones").open('[');
  for (const auto& path : files) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    vmprofile_file header;
    const size_t counts_at = offsetof(vmprofile_file, counts);
    struct stat st;
    const bool ok = pread(fd, &header, counts_at, 0) == static_cast<ssize_t>(counts_at) &&
                    std::memcmp(header.magic, "SNABBVMP", 8) == 0 &&
                    header.version == VMPROFILE_VERSION && header.states == VMPROFILE_STATES &&
                    header.max_trace == VMPROFILE_MAX_TRACE && fstat(fd, &st) == 0 &&
                    static_cast<size_t>(st.st_size) >= sizeof(vmprofile_file);
    if (!ok) {
      close(fd);
      continue;
    }
    // The file is sparse: read the pages that hold data only.
    std::vector<uint64_t> by_state(VMPROFILE_STATES);
    std::vector<std::pair<uint64_t, uint32_t>> traces;
    std::vector<uint64_t> row(VMPROFILE_STATES);
    off_t at = static_cast<off_t>(counts_at);
    const off_t end = static_cast<off_t>(sizeof(vmprofile_file));
    const size_t row_bytes = sizeof(uint64_t) * VMPROFILE_STATES;
    while (at < end) {
      const off_t data = lseek(fd, at, SEEK_DATA);
      if (data < 0 || data >= end) break;
      const off_t hole = std::min(lseek(fd, data, SEEK_HOLE), end);
      uint32_t t = static_cast<uint32_t>((data - static_cast<off_t>(counts_at)) / row_bytes);
      for (; t <= VMPROFILE_MAX_TRACE; t++) {
        const off_t row_at = static_cast<off_t>(counts_at + t * row_bytes);
        if (row_at >= hole) break;
        if (pread(fd, row.data(), row_bytes, row_at) != static_cast<ssize_t>(row_bytes)) break;
        uint64_t total = 0;
        for (int k = 0; k < VMPROFILE_STATES; k++) by_state[k] += row[k], total += row[k];
        if (t > 0 && total > 0) traces.emplace_back(total, t);
      }
      at = std::max(hole, static_cast<off_t>(counts_at + t * row_bytes));
    }
    close(fd);
    std::sort(traces.begin(), traces.end(), std::greater<>());
    if (traces.size() > 5) traces.resize(5);
    header.zone[sizeof header.zone - 1] = 0;
    j.open('{').key("zone").str(header.zone).key("hz").num(header.hz);
    j.key("samples").num(header.samples).key("states").open('{');
    for (int k = 0; k < VMPROFILE_STATES; k++) j.key(kStates[k]).num(by_state[k]);
    j.close('}').key("traces").open('[');
    for (const auto& [n, t] : traces)
      j.open('{').key("trace").num(t).key("samples").num(n).close('}');
    j.close(']').close('}');
  }
  j.close(']').close('}');
  return j.text();
}

// The run directory's counters, read at most every 100 ms whatever the number of clients: a read
// maps and unmaps every stats file (10 munmaps for 4 apps and 3 links), and in the engine's own
// process an unmap interrupts the engine's core (TLB shootdown). GET /counters 100 times a second
// took 17% of the engine's packets per CPU second here reading every time, 9.5% with this bound;
// GET / (no read) from -4% to +3%, the noise of this shared machine (tools/bench-monitor,
// SCRAPE_INTERVAL=0.01); once a second, nothing measurable (+0.75%).
stats::Snapshot recent_snapshot(const std::string& rundir) {
  static std::mutex mutex;
  static std::string dir;
  static Clock::time_point at;
  static stats::Snapshot snapshot;
  std::lock_guard lock(mutex);
  const auto now = Clock::now();
  if (dir != rundir || now - at >= std::chrono::milliseconds(100)) {
    snapshot = stats::read(rundir);
    dir = rundir, at = now;
  }
  return snapshot;
}

// ---------------------------------------------------------------------------------------------

const char* const kEndpoints =
    "GET /counters, GET /metrics, GET /profile, GET /config, POST /config, POST /tap, "
    "GET /tap/ID, DELETE /tap/ID";

Answer answer(int status, std::string body, std::string type = "application/json") {
  Answer a;
  a.status = status, a.body = std::move(body), a.content_type = std::move(type);
  return a;
}

// The answer to a request Beast could not parse (the connection is closed after it).
Answer parse_error(const beast::error_code& ec) {
  if (ec == http::error::body_limit) {
    return answer(
        413, error_json("request body larger than " + std::to_string(CONTROL_MAX_BODY) + " bytes"));
  }
  if (ec == http::error::header_limit) {
    return answer(431, error_json("request line and headers larger than " +
                                  std::to_string(CONTROL_MAX_HEADER) + " bytes"));
  }
  return answer(400, error_json("malformed HTTP request: " + ec.message()));
}

template <typename Body>
std::string serialise(http::response<Body>& res) {
  std::ostringstream out;
  out << res;
  return out.str();
}

http::response<http::string_body> response_of(const Answer& a, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(a.status), version};
  res.set(http::field::server, "snabb");
  res.set(http::field::content_type, a.content_type);
  if (!a.allow.empty()) res.set(http::field::allow, a.allow);
  res.body() = a.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// ---------------------------------------------------------------------------------------------
// The mailbox between the server thread and Lua's.

struct Waiting {
  uint64_t id = 0;
  std::string method, path, query, body;
};

class Mailbox {
 public:
  using Deliver = std::function<void(Answer)>;

  // Server thread: queues a request; its id, or 0 when too many wait.
  uint64_t push(Waiting w, Deliver deliver) {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= CONTROL_MAX_WAITING) return 0;
    w.id = next_id_++;
    const uint64_t id = w.id;
    queue_.push_back(std::move(w));
    delivers_.emplace(id, std::move(deliver));
    pending_.store(static_cast<int32_t>(queue_.size()), std::memory_order_release);
    return id;
  }
  // Server thread: the client is gone or has waited too long.
  void cancel(uint64_t id) {
    std::lock_guard lock(mutex_);
    delivers_.erase(id);
    std::erase_if(queue_, [id](const Waiting& w) { return w.id == id; });
    pending_.store(static_cast<int32_t>(queue_.size()), std::memory_order_release);
  }
  // Lua thread.
  bool take(struct snabb_control_request* r) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) return false;
      current_ = std::move(queue_.front());
      queue_.pop_front();
      pending_.store(static_cast<int32_t>(queue_.size()), std::memory_order_release);
    }
    r->id = current_.id;
    r->method = current_.method.c_str();
    r->path = current_.path.c_str();
    r->query = current_.query.c_str();
    r->body = current_.body.data();
    r->body_len = current_.body.size();
    return true;
  }
  void reply(uint64_t id, Answer a) {
    Deliver deliver;
    {
      std::lock_guard lock(mutex_);
      auto it = delivers_.find(id);
      if (it == delivers_.end()) return;
      deliver = std::move(it->second);
      delivers_.erase(it);
    }
    deliver(std::move(a));
  }
  std::atomic<int32_t>* pending() { return &pending_; }

 private:
  std::mutex mutex_;
  std::deque<Waiting> queue_;
  std::unordered_map<uint64_t, Deliver> delivers_;
  Waiting current_;  // the Lua thread's, until its next take
  uint64_t next_id_ = 1;
  std::atomic<int32_t> pending_{0};
};
static_assert(sizeof(std::atomic<int32_t>) == sizeof(int32_t));

// ---------------------------------------------------------------------------------------------
// The server.

class Server;

template <typename Socket>
class Session : public std::enable_shared_from_this<Session<Socket>> {
 public:
  Session(Socket socket, Server& server);
  ~Session();
  void start(bool refuse_busy);

 private:
  void read();
  void on_read(beast::error_code ec);
  void dispatch();
  void from_lua(uint64_t id, Answer a);
  void write(const Answer& a, bool close);
  void on_write(beast::error_code ec);
  void shut();
  std::optional<std::string> refusal();

  Socket socket_;
  Server& server_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  uint64_t waiting_for_ = 0;  // the mailbox id of the request Lua has, 0 none
  bool reading_ = false;
  bool close_after_ = false;
};

class Server {
 public:
  // rundir: where the socket is; data_dir: the run directory GET /counters, /metrics and /profile
  // read (snabb inspect's server serves another run's).
  Server(std::string rundir, std::string data_dir)
      : rundir_(std::move(rundir)), data_dir_(std::move(data_dir)), owner_(getpid()) {}

  ~Server() {
    if (getpid() != owner_) {
      // A forked child: the thread is the parent's; leave everything to the parent.
      thread_.release();
      io_.release();
      return;
    }
    if (io_) io_->stop();
    if (thread_ && thread_->joinable()) thread_->join();
    if (!socket_path_.empty()) unlink(socket_path_.c_str());
  }

  void start(const std::string& tcp_host, int tcp_port) {
    io_ = std::make_unique<asio::io_context>(1);
    // 1,000 clients at once need as many descriptors: the soft limit goes up to the hard one.
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 65536);
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    socket_path_ = rundir_ + "/control";
    unix_.emplace(*io_);
    unix_->open();
    unlink(socket_path_.c_str());  // a kept --rundir's socket from an earlier run
    bind_unix();
    unix_->listen(SOMAXCONN);
    if (tcp_port >= 0) {
      beast::error_code ec;
      const auto address = asio::ip::make_address(tcp_host, ec);
      if (ec) {
        throw std::runtime_error("--listen " + tcp_host + ":" + std::to_string(tcp_port) +
                                 ": not an IP address");
      }
      try {
        tcp_.emplace(*io_, tcp::endpoint(address, static_cast<uint16_t>(tcp_port)));
      } catch (const std::exception& e) {
        throw std::runtime_error("--listen " + tcp_host + ":" + std::to_string(tcp_port) + ": " +
                                 e.what());
      }
      tcp_port_ = tcp_->local_endpoint().port();
      accept(*tcp_);
    }
    accept(*unix_);
    // Off the engine's cores: a run pinned with taskset would otherwise wake this thread on the
    // dataplane's core for every request. The CPUs the engine's thread may not use, when there
    // are any (else the server shares them).
    cpu_set_t engine, others;
    CPU_ZERO(&others);
    if (sched_getaffinity(0, sizeof engine, &engine) == 0) {
      const int n = static_cast<int>(std::thread::hardware_concurrency());
      for (int cpu = 0; cpu < n && cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &engine)) CPU_SET(cpu, &others);
      }
    }
    thread_ = std::make_unique<std::thread>([this, others] {
      pthread_setname_np(pthread_self(), "snabb-control");
      if (CPU_COUNT(&others) > 0) pthread_setaffinity_np(pthread_self(), sizeof others, &others);
      for (;;) {
        try {
          io_->run();
          return;
        } catch (const std::exception& e) {
          // A handler's failure is one connection's: the server goes on.
          std::fprintf(stderr, "snabb control: %s\n", e.what());
        }
      }
    });
  }

  int tcp_port() const { return tcp_port_; }
  const std::string& rundir() const { return rundir_; }
  Mailbox& mailbox() { return mailbox_; }
  asio::io_context& io() { return *io_; }
  std::atomic<int>& sessions() { return sessions_; }

  void add_route(const std::string& prefix) {
    std::lock_guard lock(routes_mutex_);
    if (std::find(lua_prefixes_.begin(), lua_prefixes_.end(), prefix) == lua_prefixes_.end()) {
      lua_prefixes_.push_back(prefix);
    }
  }
  Answer route_request(const std::string& method, const std::string& target) {
    std::vector<std::string> prefixes;
    {
      std::lock_guard lock(routes_mutex_);
      prefixes = lua_prefixes_;
    }
    return route(method, target, data_dir_, prefixes);
  }

 private:
  // Binds RUNDIR/control, through /proc/self/fd/N/control when the path is longer than a
  // sockaddr_un holds (108 bytes), then makes it 0600.
  void bind_unix() {
    std::string path = socket_path_;
    int dirfd = -1;
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
      dirfd = open(rundir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0) throw std::runtime_error(rundir_ + ": " + std::strerror(errno));
      path = "/proc/self/fd/" + std::to_string(dirfd) + "/control";
    }
    beast::error_code ec;
    unix_->bind(local::endpoint(path), ec);
    if (dirfd >= 0) close(dirfd);
    if (ec) throw std::runtime_error("control socket " + socket_path_ + ": " + ec.message());
    if (chmod(socket_path_.c_str(), 0600) != 0) {
      throw std::runtime_error("control socket " + socket_path_ + ": " + std::strerror(errno));
    }
  }

  template <typename Acceptor>
  void accept(Acceptor& acceptor) {
    acceptor.async_accept([this, &acceptor](beast::error_code ec, auto socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors (EMFILE) or memory: try again in 100 ms rather than spin.
        auto timer = std::make_shared<asio::steady_timer>(*io_, std::chrono::milliseconds(100));
        timer->async_wait([this, &acceptor, timer](beast::error_code) { accept(acceptor); });
        return;
      }
      using S = decltype(socket);
      const bool busy = sessions_.load() >= CONTROL_MAX_SESSIONS;
      std::make_shared<Session<S>>(std::move(socket), *this)->start(busy);
      accept(acceptor);
    });
  }

  std::string rundir_;
  std::string data_dir_;
  pid_t owner_;
  std::string socket_path_;
  int tcp_port_ = 0;
  Mailbox mailbox_;
  std::atomic<int> sessions_{0};
  std::mutex routes_mutex_;
  std::vector<std::string> lua_prefixes_;
  // Declared last, destroyed first: sessions (in its handlers) use the members above.
  std::unique_ptr<asio::io_context> io_;
  std::optional<local::acceptor> unix_;
  std::optional<tcp::acceptor> tcp_;
  std::unique_ptr<std::thread> thread_;
};

template <typename Socket>
Session<Socket>::Session(Socket socket, Server& server)
    : socket_(std::move(socket)), server_(server), timer_(server.io()) {
  server_.sessions()++;
}

template <typename Socket>
Session<Socket>::~Session() {
  server_.sessions()--;
  if (waiting_for_) server_.mailbox().cancel(waiting_for_);
}

// Why a peer may not use the server: on the Unix socket, a user other than ours (or root).
template <typename Socket>
std::optional<std::string> Session<Socket>::refusal() {
  if constexpr (std::is_same_v<Socket, local::socket>) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      return std::string("cannot tell who the peer is: ") + std::strerror(errno);
    }
    if (cred.uid != geteuid() && cred.uid != 0) {
      return "user " + std::to_string(cred.uid) + " may not control this instance (it runs as " +
             std::to_string(geteuid()) + ")";
    }
  }
  return std::nullopt;
}

template <typename Socket>
void Session<Socket>::start(bool busy) {
  if (busy) {
    write(answer(503, error_json("too many connections (" + std::to_string(CONTROL_MAX_SESSIONS) +
                                 " open)")),
          true);
  } else if (auto why = refusal()) {
    write(answer(403, error_json(*why)), true);
  } else {
    read();
  }
}

template <typename Socket>
void Session<Socket>::read() {
  parser_.emplace();
  parser_->header_limit(CONTROL_MAX_HEADER);
  parser_->body_limit(CONTROL_MAX_BODY);
  reading_ = true;
  timer_.expires_after(kReadTimeout);
  timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
    if (!ec && self->reading_) self->shut();  // a client that sends nothing, or too slowly
  });
  http::async_read(
      socket_, buffer_, *parser_,
      [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
}

template <typename Socket>
void Session<Socket>::on_read(beast::error_code ec) {
  reading_ = false;
  timer_.cancel();
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
      ec == http::error::partial_message || ec == asio::error::broken_pipe) {
    shut();  // gone, possibly mid-request: nothing to answer
    return;
  }
  if (ec) {
    write(parse_error(ec), true);
    return;
  }
  dispatch();
}

template <typename Socket>
void Session<Socket>::dispatch() {
  auto& req = parser_->get();
  const std::string method(req.method_string());
  const std::string target(req.target());
  Answer a = server_.route_request(method, target);
  if (!a.to_lua) {
    write(a, !req.keep_alive());
    return;
  }
  Waiting w;
  const size_t q = target.find('?');
  w.method = method;
  w.path = target.substr(0, q);
  w.query = q == std::string::npos ? "" : target.substr(q + 1);
  w.body = std::move(req.body());
  std::weak_ptr<Session> weak = this->shared_from_this();
  auto& io = server_.io();
  auto id = std::make_shared<uint64_t>(0);
  const uint64_t queued = server_.mailbox().push(std::move(w), [weak, &io, id](Answer answer) {
    asio::post(io, [weak, id, answer = std::move(answer)]() mutable {
      if (auto self = weak.lock()) self->from_lua(*id, std::move(answer));
    });
  });
  if (!queued) {
    write(answer(503, error_json("too many requests wait for the engine (" +
                                 std::to_string(CONTROL_MAX_WAITING) + ")")),
          true);
    return;
  }
  *id = waiting_for_ = queued;
  timer_.expires_after(kLuaTimeout);
  timer_.async_wait([self = this->shared_from_this(), queued](beast::error_code ec) {
    if (ec || self->waiting_for_ != queued) return;
    self->server_.mailbox().cancel(queued);
    self->waiting_for_ = 0;
    self->write(answer(503, error_json("the engine did not answer within 60 s")), true);
  });
}

template <typename Socket>
void Session<Socket>::from_lua(uint64_t id, Answer a) {
  if (id != waiting_for_) return;
  waiting_for_ = 0;
  timer_.cancel();
  write(a, !parser_->get().keep_alive());
}

template <typename Socket>
void Session<Socket>::write(const Answer& a, bool close) {
  close_after_ = close;
  const unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
  res_ = response_of(a, version, !close);
  http::async_write(socket_, res_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
    self->on_write(ec);
  });
}

template <typename Socket>
void Session<Socket>::on_write(beast::error_code ec) {
  if (ec || close_after_) {
    shut();
    return;
  }
  read();
}

template <typename Socket>
void Session<Socket>::shut() {
  beast::error_code ignored;
  timer_.cancel();
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
}

std::unique_ptr<Server> g_server;
std::atomic<int32_t> g_no_pending{0};

// ---------------------------------------------------------------------------------------------
// The client.

std::string describe_connect_error(const beast::error_code& ec, const std::string& path) {
  if (ec == asio::error::connection_refused) {
    return "connection refused (" + path + "): its control server is not running";
  }
  if (ec == asio::error::not_found || ec.value() == ENOENT) {
    return "no control socket " + path + " (the instance has no control server)";
  }
  if (ec == asio::error::access_denied) return "permission denied (" + path + ")";
  return ec.message() + " (" + path + ")";
}

struct ClientResult {
  int status;
  std::string body;
};

ClientResult client_request(const std::string& socket_path, const std::string& method,
                            const std::string& target, std::string body, int timeout_ms) {
  asio::io_context io;
  local::socket socket(io);
  std::string path = socket_path;
  int dirfd = -1;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    const auto slash = path.rfind('/');
    dirfd = open(path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    path = "/proc/self/fd/" + std::to_string(dirfd) + path.substr(slash);
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  if (req.method() == http::verb::unknown) req.method_string(method);
  req.set(http::field::host, "snabb");
  req.set(http::field::user_agent, "snabb");
  if (!body.empty() || method == "POST") {
    req.set(http::field::content_type, "text/plain");
    req.body() = std::move(body);
  }
  req.keep_alive(false);
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(uint64_t{1} << 30);
  std::string failure;
  socket.async_connect(local::endpoint(path), [&](beast::error_code ec) {
    if (ec) {
      failure = describe_connect_error(ec, socket_path);
      return;
    }
    http::async_write(socket, req, [&](beast::error_code ec, size_t) {
      if (ec) {
        failure = "sending the request: " + ec.message();
        return;
      }
      http::async_read(socket, buffer, parser, [&](beast::error_code ec, size_t) {
        if (ec) failure = "reading the answer: " + ec.message();
      });
    });
  });
  io.run_for(std::chrono::milliseconds(timeout_ms));
  if (dirfd >= 0) close(dirfd);
  if (!failure.empty()) throw std::runtime_error(failure);
  if (!parser.is_done()) {
    throw std::runtime_error("no answer within " +
                             std::to_string(timeout_ms / 1000.0).substr(0, 4) + " s (" +
                             socket_path + ")");
  }
  return {static_cast<int>(parser.get().result_int()), std::move(parser.get().body())};
}

}  // namespace

std::string json_string(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

Answer route(const std::string& method, const std::string& target, const std::string& rundir,
             const std::vector<std::string>& lua_prefixes) {
  const std::string path = target.substr(0, target.find('?'));
  const bool get = method == "GET";
  auto only_get = [&]() {
    Answer a = answer(405, error_json(method + " " + path + ": only GET"));
    a.allow = "GET";
    return a;
  };
  if (path == "/counters" || path == "/metrics") {
    if (!get) return only_get();
    try {
      const auto snapshot = recent_snapshot(rundir);
      if (path == "/counters") return answer(200, stats::to_json(snapshot));
      return answer(200, metrics_text(snapshot), "text/plain; version=0.0.4; charset=utf-8");
    } catch (const std::exception& e) {
      return answer(500, error_json(e.what()));
    }
  }
  if (path == "/profile") {
    if (!get) return only_get();
    return answer(200, profile_json(rundir));
  }
  // Lua's handlers may claim "/" too (snabb inspect's prefix "/" claims every path but the above).
  for (const auto& prefix : lua_prefixes) {
    if (path.compare(0, prefix.size(), prefix) == 0) {
      Answer a;
      a.to_lua = true;
      return a;
    }
  }
  if (path == "/") {
    if (!get) return only_get();
    return answer(200, "{\"endpoints\": " + json_string(kEndpoints) + "}\n");
  }
  return answer(404, error_json("no endpoint " + path + "; there are " + kEndpoints));
}

std::string answer_bytes(const char* data, size_t size, const std::string& rundir) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(CONTROL_MAX_HEADER);
  parser.body_limit(CONTROL_MAX_BODY);
  parser.eager(true);
  beast::error_code ec;
  size_t used = 0;
  while (!parser.is_done()) {
    const size_t n = parser.put(asio::buffer(data + used, size - used), ec);
    used += n;
    if (ec && ec != http::error::need_more) break;
    if (parser.is_done()) break;
    if (ec || n == 0 || used == size) {  // the input ends before the request does
      ec = {};
      parser.put_eof(ec);
      break;
    }
  }
  Answer a;
  unsigned version = 11;
  bool keep_alive = false;
  if (ec || !parser.is_done()) {
    a = parse_error(ec ? ec : beast::error_code(http::error::partial_message));
  } else {
    auto& req = parser.get();
    version = req.version(), keep_alive = req.keep_alive();
    a = route(std::string(req.method_string()), std::string(req.target()), rundir,
              {"/config", "/tap"});
    if (a.to_lua) a = answer(200, "{}\n");
  }
  auto res = response_of(a, version, keep_alive);
  return serialise(res);
}

}  // namespace snabb::control

using snabb::control::g_server;
using snabb::control::Server;
using snabb::runtime::c_call;

extern "C" int snabb_control_start(const char* rundir, const char* tcp_host, int tcp_port) {
  return snabb_control_start_for(rundir, rundir, tcp_host, tcp_port);
}

extern "C" int snabb_control_start_for(const char* rundir, const char* data_dir,
                                       const char* tcp_host, int tcp_port) {
  return c_call(-1, [&] {
    if (g_server) throw std::runtime_error("the control server is running already");
    auto server = std::make_unique<Server>(rundir, data_dir);
    server->start(tcp_host ? tcp_host : "127.0.0.1", tcp_port);
    g_server = std::move(server);
    // An exit() while it runs (os.exit in a config) stops it before Asio's statics, made at its
    // start, are destroyed.
    static const bool at_exit = std::atexit([] { g_server.reset(); }) == 0;
    (void)at_exit;
    return 0;
  });
}

extern "C" int snabb_control_tcp_port(void) { return g_server ? g_server->tcp_port() : 0; }

extern "C" void snabb_control_stop(void) { g_server.reset(); }

extern "C" volatile int32_t* snabb_control_pending(void) {
  auto* word = g_server ? g_server->mailbox().pending() : &snabb::control::g_no_pending;
  return reinterpret_cast<volatile int32_t*>(word);
}

extern "C" int snabb_control_take(struct snabb_control_request* r) {
  return g_server && g_server->mailbox().take(r) ? 1 : 0;
}

extern "C" void snabb_control_reply(uint64_t id, int status, const char* content_type,
                                    const char* body, uint64_t len) {
  if (!g_server) return;
  snabb::control::Answer a;
  a.status = status >= 100 && status <= 599 ? status : 500;
  if (content_type) a.content_type = content_type;
  a.body.assign(body ? body : "", body ? len : 0);
  g_server->mailbox().reply(id, std::move(a));
}

extern "C" void snabb_control_route(const char* prefix) {
  if (g_server && prefix) g_server->add_route(prefix);
}

extern "C" int snabb_control_call(const char* path, const char* method, const char* target,
                                  const char* body, uint64_t len, int timeout_ms, char** response,
                                  uint64_t* response_len) {
  return c_call(-1, [&] {
    auto r = snabb::control::client_request(
        path, method, target, std::string(body ? body : "", body ? len : 0), timeout_ms);
    // malloc'd for C (snabb_control_free), one byte more for a NUL.
    char* out = static_cast<char*>(std::malloc(r.body.size() + 1));
    if (!out) throw std::runtime_error("out of memory");
    std::memcpy(out, r.body.data(), r.body.size());
    out[r.body.size()] = 0;
    *response = out;
    *response_len = r.body.size();
    return r.status;
  });
}

extern "C" void snabb_control_free(char* p) { std::free(p); }
