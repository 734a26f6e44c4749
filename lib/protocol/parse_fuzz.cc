// Fuzz target: one input as a frame through every parser of lib.protocol (parse_fuzz.lua says what
// counts as a finding; a read past the input's end crashes on the page behind it).
#include "vm/lua_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static snabb::fuzz::LuaTarget target("lib.protocol.parse_fuzz", false);
  target.one(data, size);
  return 0;
}
