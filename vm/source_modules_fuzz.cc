// Fuzz target: a module name and a file's text through the modules made of Snabb's sources and
// a timeline's event specs (vm/source_modules_fuzz.lua says what counts as a finding); the files
// go to the target's private directory (vm/lua_fuzz_target.h).
#include "vm/lua_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static snabb::fuzz::LuaTarget target("vm.source_modules_fuzz", false);
  target.one(data, size);
  return 0;
}
