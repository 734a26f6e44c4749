// Fuzz target: arbitrary text as a `snabb run` config file, through run.load_config, core.config's
// checks and engine.configure (programs/run/config_fuzz.lua says what counts as a finding and how
// the config's own code is bounded). One LuaJIT state with the whole snabb API serves every input.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "jit/vm.h"

namespace {

// A private directory, also the current one, so whatever a config writes lands there; removed at
// exit.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/config_fuzz.XXXXXX";
    if (!mkdtemp(pattern.data()) || chdir(pattern.c_str()) != 0) {
      std::perror("config_fuzz: temporary directory");
      std::exit(2);
    }
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

snabb::vm::LuaVm& vm() {
  static TempDir dir;
  static snabb::vm::LuaVm instance;
  static const int ready = instance.call("programs.run.config_fuzz", "init", {dir.path});
  (void)ready;
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (vm().call("programs.run.config_fuzz", "one", {text}) != 0) std::abort();
  return 0;
}
