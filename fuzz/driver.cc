// A mutation fuzzer for libFuzzer-style targets (LLVMFuzzerTestOneInput), linked into each fuzz
// target in the ordinary gcc build so that `bazel test //...` runs every target for a fixed number
// of inputs with a fixed seed: reproducible, no coverage feedback. With --config=fuzz (clang)
// the same targets link libFuzzer instead (tests/README.md). The flags are libFuzzer's, so one
// command line works with either engine:
//   TARGET [-runs=N] [-seed=S] [-max_len=L] [-timeout=S] [-max_total_time=S] [-dict=FILE]
//          [-artifact_prefix=DIR/] FILE_OR_DIR...
// Every file given (or found in a directory given) is run once as it is; then N mutants of them
// (with -max_total_time alone: as many as fit). A crash, a sanitizer report, an abort (a target's
// own check), an exit from inside the target, or an input running longer than -timeout seconds
// saves the input as ARTIFACT_PREFIX{crash,timeout}-N and fails.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));
// Present when a sanitizer runtime is linked: called when it reports an error and exits.
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace {

using Bytes = std::vector<uint8_t>;

// The input being run, for the handlers below (which may only make async-signal-safe calls).
const uint8_t* g_input = nullptr;
size_t g_input_size = 0;
bool g_running = false;
// Where the input is saved (prepared before each run): as a crash, or as a timeout.
char g_crash_path[4096];
char g_timeout_path[4096];

void write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = write(fd, c, n);
    if (w <= 0) return;
    c += w, n -= static_cast<size_t>(w);
  }
}
void say(const char* s) { write_all(2, s, strlen(s)); }

// Saves the running input; safe in a signal handler.
void save_input(const char* path) {
  if (!g_running) return;
  g_running = false;
  const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    write_all(fd, g_input, g_input_size);
    close(fd);
  }
  say(fd >= 0 ? "fuzz: finding; input saved to " : "fuzz: finding; could not save the input to ");
  say(path);
  say("\n");
}
void save_crash() { save_input(g_crash_path); }

void on_signal(int sig) {
  if (sig == SIGALRM) say("fuzz: an input ran longer than -timeout\n");
  save_input(sig == SIGALRM ? g_timeout_path : g_crash_path);
  signal(sig, SIG_DFL);
  raise(sig);
}

void exit_in_input() {
  if (!g_running) return;
  say("fuzz: the target called exit() (an input must return)\n");
  save_crash();
  _exit(1);
}

struct Options {
  long runs = -1;  // mutants; -1: none unless max_total_time is given
  uint64_t seed = 1;
  size_t max_len = 65536;
  unsigned timeout = 30;
  double max_total_time = 0;
  std::string dict;
  std::string artifact_prefix;
  std::vector<std::string> inputs;
};

bool flag(const std::string& arg, const char* name, std::string* value) {
  const std::string prefix = std::string("-") + name + "=";
  if (arg.rfind(prefix, 0) != 0) return false;
  *value = arg.substr(prefix.size());
  return true;
}

Options parse(int argc, char** argv) {
  Options o;
  const char* outputs = getenv("TEST_UNDECLARED_OUTPUTS_DIR");  // under bazel test
  if (outputs) o.artifact_prefix = std::string(outputs) + "/";
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    std::string v;
    if (flag(arg, "runs", &v)) {
      o.runs = std::stol(v);
    } else if (flag(arg, "seed", &v)) {
      o.seed = std::stoull(v);
    } else if (flag(arg, "max_len", &v)) {
      o.max_len = std::stoul(v);
    } else if (flag(arg, "timeout", &v)) {
      o.timeout = static_cast<unsigned>(std::stoul(v));
    } else if (flag(arg, "max_total_time", &v)) {
      o.max_total_time = std::stod(v);
    } else if (flag(arg, "dict", &v)) {
      o.dict = v;
    } else if (flag(arg, "artifact_prefix", &v)) {
      o.artifact_prefix = v;
    } else if (arg.size() > 1 && arg[0] == '-') {
      std::fprintf(stderr, "fuzz: unknown flag %s (ignored)\n", arg.c_str());
    } else {
      o.inputs.push_back(arg);
    }
  }
  return o;
}

Bytes read_file(const std::string& path, size_t max_len) {
  std::ifstream in(path, std::ios::binary);
  Bytes b((std::istreambuf_iterator<char>(in)), {});
  if (b.size() > max_len) b.resize(max_len);
  return b;
}

// The inputs named on the command line, directories expanded (sorted, for reproducibility).
std::vector<Bytes> load_corpus(const Options& o) {
  std::vector<std::string> files;
  for (const auto& path : o.inputs) {
    if (std::filesystem::is_directory(path)) {
      std::vector<std::string> in_dir;
      for (const auto& e : std::filesystem::recursive_directory_iterator(path)) {
        if (e.is_regular_file()) in_dir.push_back(e.path().string());
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (std::filesystem::exists(path)) {
      files.push_back(path);
    } else {
      std::fprintf(stderr, "fuzz: %s: no such file or directory\n", path.c_str());
      std::exit(2);
    }
  }
  std::vector<Bytes> corpus;
  for (const auto& f : files) corpus.push_back(read_file(f, o.max_len));
  return corpus;
}

// libFuzzer's dictionary format: one "token" per line (optionally name="token"), with \\, \" and
// \xNN escapes; # starts a comment.
std::vector<Bytes> load_dict(const std::string& path) {
  std::vector<Bytes> tokens;
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "fuzz: cannot read dictionary %s\n", path.c_str());
    std::exit(2);
  }
  std::string line;
  while (std::getline(in, line)) {
    const size_t open = line.find('"');
    if (line.empty() || line[0] == '#' || open == std::string::npos) continue;
    const size_t close = line.rfind('"');
    if (close <= open) continue;
    Bytes t;
    for (size_t i = open + 1; i < close; i++) {
      if (line[i] == '\\' && i + 1 < close) {
        if (line[i + 1] == 'x' && i + 3 < close) {
          t.push_back(static_cast<uint8_t>(std::stoi(line.substr(i + 2, 2), nullptr, 16)));
          i += 3;
        } else {
          t.push_back(static_cast<uint8_t>(line[++i]));
        }
      } else {
        t.push_back(static_cast<uint8_t>(line[i]));
      }
    }
    tokens.push_back(std::move(t));
  }
  return tokens;
}

class Mutator {
 public:
  Mutator(uint64_t seed, const std::vector<Bytes>& corpus, std::vector<Bytes> dict, size_t max_len)
      : rng_(seed), corpus_(corpus), dict_(std::move(dict)), max_len_(max_len) {}

  // A corpus input with 1 to 8 random edits.
  Bytes mutant() {
    Bytes b = corpus_[below(corpus_.size())];
    const size_t edits = 1 + below(8);
    for (size_t i = 0; i < edits; i++) edit(b);
    if (b.size() > max_len_) b.resize(max_len_);
    return b;
  }

 private:
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }

  // Values that sit on edges of lengths, counts and signedness, in both byte orders.
  uint32_t interesting() {
    static constexpr uint32_t kValues[] = {
        0,       1,          2,          0x7f,       0x80,  0xff,  0x100,  0x7fff, 0x8000, 0xffff,
        0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 10240, 10241, 262144, 65535,  1514,   60};
    const uint32_t v = kValues[below(std::size(kValues))];
    return below(2) ? v : __builtin_bswap32(v);
  }

  void edit(Bytes& b) {
    const size_t n = b.size();
    switch (below(dict_.empty() ? 10 : 12)) {
      case 0:  // flip a bit
        if (n) b[below(n)] ^= static_cast<uint8_t>(1u << below(8));
        break;
      case 1:  // a random byte
        if (n) b[below(n)] = static_cast<uint8_t>(rng_());
        break;
      case 2: {  // an interesting 8-, 16- or 32-bit value
        const size_t width = size_t{1} << below(3);
        if (n >= width) {
          const uint32_t v = interesting();
          std::memcpy(&b[below(n - width + 1)], &v, width);
        }
        break;
      }
      case 3: {  // a small step up or down in a 16- or 32-bit field
        const size_t width = below(2) ? 2 : 4;
        if (n >= width) {
          const size_t at = below(n - width + 1);
          uint32_t v = 0;
          std::memcpy(&v, &b[at], width);
          v += static_cast<uint32_t>(below(33)) - 16;
          std::memcpy(&b[at], &v, width);
        }
        break;
      }
      case 4:  // delete a range
        if (n) {
          const size_t at = below(n), len = 1 + below(std::min<size_t>(n - at, 64));
          b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
        }
        break;
      case 5: {  // insert random bytes
        const size_t len = 1 + below(16);
        Bytes r(len);
        for (auto& c : r) c = static_cast<uint8_t>(rng_());
        b.insert(b.begin() + static_cast<long>(below(n + 1)), r.begin(), r.end());
        break;
      }
      case 6:  // duplicate a range
        if (n) {
          const size_t at = below(n), len = 1 + below(std::min<size_t>(n - at, 256));
          Bytes r(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
          b.insert(b.begin() + static_cast<long>(below(n + 1)), r.begin(), r.end());
        }
        break;
      case 7:  // copy a range over another place
        if (n > 1) {
          const size_t from = below(n), to = below(n);
          const size_t len = 1 + below(std::min(n - from, n - to));
          std::memmove(&b[to], &b[from], len);
        }
        break;
      case 8: {  // splice: this input's head, another's tail
        const Bytes& other = corpus_[below(corpus_.size())];
        const size_t head = below(n + 1), tail = below(other.size() + 1);
        b.resize(head);
        b.insert(b.end(), other.begin() + static_cast<long>(tail), other.end());
        break;
      }
      case 9:  // cut the end off
        b.resize(below(n + 1));
        break;
      case 10: {  // insert a dictionary token
        const Bytes& t = dict_[below(dict_.size())];
        b.insert(b.begin() + static_cast<long>(below(n + 1)), t.begin(), t.end());
        break;
      }
      case 11: {  // overwrite with a dictionary token
        const Bytes& t = dict_[below(dict_.size())];
        const size_t at = below(n + 1);
        if (at + t.size() > n) b.resize(at + t.size());
        std::copy(t.begin(), t.end(), b.begin() + static_cast<long>(at));
        break;
      }
    }
  }

  std::mt19937_64 rng_;
  const std::vector<Bytes>& corpus_;
  std::vector<Bytes> dict_;
  size_t max_len_;
};

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  const Options o = parse(argc, argv);
  // Read before any input runs: a target may change the current directory.
  const std::vector<Bytes> corpus = load_corpus(o);
  std::vector<Bytes> dict = o.dict.empty() ? std::vector<Bytes>{} : load_dict(o.dict);
  if (corpus.empty()) {
    std::fprintf(stderr, "fuzz: no inputs; give seed files or directories\n");
    return 2;
  }
  if (__sanitizer_set_death_callback) {
    __sanitizer_set_death_callback(save_crash);
  } else {
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(sig, on_signal);
  }
  for (int sig : {SIGABRT, SIGALRM}) signal(sig, on_signal);
  std::atexit(exit_in_input);

  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  long done = 0;
  auto run = [&](const Bytes& input) {
    // An exact-size heap copy, so a read past the end is a sanitizer finding.
    const std::unique_ptr<uint8_t[]> copy(new uint8_t[std::max<size_t>(input.size(), 1)]);
    std::copy(input.begin(), input.end(), copy.get());
    std::snprintf(g_crash_path, sizeof g_crash_path, "%scrash-%ld", o.artifact_prefix.c_str(),
                  done);
    std::snprintf(g_timeout_path, sizeof g_timeout_path, "%stimeout-%ld", o.artifact_prefix.c_str(),
                  done);
    g_input = copy.get(), g_input_size = input.size(), g_running = true;
    alarm(o.timeout);
    LLVMFuzzerTestOneInput(copy.get(), input.size());
    alarm(0);
    g_running = false;
    done++;
  };
  for (const auto& input : corpus) run(input);
  const long seeds = done;
  long mutants = o.runs >= 0 ? o.runs : (o.max_total_time > 0 ? -1 : 0);
  Mutator mutator(o.seed, corpus, std::move(dict), o.max_len);
  double report_at = 10;
  for (long i = 0; mutants < 0 || i < mutants; i++) {
    if (o.max_total_time > 0 && elapsed() >= o.max_total_time) break;
    run(mutator.mutant());
    if (elapsed() >= report_at) {
      std::fprintf(stderr, "fuzz: %ld inputs, %.0f s\n", done, elapsed());
      report_at += o.max_total_time > 60 ? 60 : 10;
    }
  }
  std::fprintf(stderr,
               "fuzz: %ld inputs run (%ld seeds, %ld mutants, seed %llu) in %.1f s, no finding\n",
               done, seeds, done - seeds, static_cast<unsigned long long>(o.seed), elapsed());
  return 0;
}
