// Fuzz target: a module name and a file's text through the modules made of Snabb's sources and
// a timeline's event specs (vm/source_modules_fuzz.lua says what counts as a finding). One LuaJIT
// state with the whole snabb API serves every input; the files go to a private directory.
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "vm/runtime_binding.h"

namespace {

// A private directory on package.path for the input's files; removed at exit.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/source_modules_fuzz.XXXXXX";
    if (!mkdtemp(pattern.data())) {
      std::perror("source_modules_fuzz: temporary directory");
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
  static snabb::vm::LuaVm instance({snabb::vm::runtime_binding()});
  static const int ready = instance.call("vm.source_modules_fuzz", "init", {dir.path});
  (void)ready;
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (vm().call("vm.source_modules_fuzz", "one", {text}) != 0) std::abort();
  return 0;
}
