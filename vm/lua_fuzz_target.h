// What the fuzz targets whose harness is Lua share (programs/run/config_fuzz.cc,
// vm/source_modules_fuzz.cc): one LuaJIT state with the whole snabb API serving every input, and a
// private temporary directory for what an input writes, removed at exit. The harness module has
// init(dir), called once, and one(input), which returns 0, or 1 for a finding.
#ifndef SNABB_VM_LUA_FUZZ_TARGET_H_
#define SNABB_VM_LUA_FUZZ_TARGET_H_

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "vm/runtime_binding.h"

namespace snabb::fuzz {

class LuaTarget {
 public:
  // module: the harness; enter_dir: make the directory the current one as well.
  LuaTarget(const char* module, bool enter_dir) : module_(module) {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/" + module + ".XXXXXX";
    if (!mkdtemp(pattern.data()) || (enter_dir && chdir(pattern.c_str()) != 0)) {
      std::perror("fuzz: temporary directory");
      std::exit(2);
    }
    dir_ = pattern;
    vm_.call(module_, "init", {dir_});
  }
  ~LuaTarget() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // One input; a finding aborts, as libFuzzer expects.
  void one(const uint8_t* data, size_t size) {
    if (vm_.call(module_, "one", {std::string(reinterpret_cast<const char*>(data), size)}) != 0) {
      std::abort();
    }
  }

 private:
  const char* module_;
  std::string dir_;
  snabb::vm::LuaVm vm_{{snabb::vm::runtime_binding()}};
};

}  // namespace snabb::fuzz

#endif  // SNABB_VM_LUA_FUZZ_TARGET_H_
