// Fuzz target: arbitrary bytes as a route file through lib.lpm.load (lib/lpm_fuzz.lua says what
// counts as a finding); the file goes to the target's private directory (vm/lua_fuzz_target.h).
#include "vm/lua_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static snabb::fuzz::LuaTarget target("lib.lpm_fuzz", false);
  target.one(data, size);
  return 0;
}
