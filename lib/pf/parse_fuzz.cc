// Fuzz target: arbitrary bytes as a pcap-filter expression through lib.pf.parse (lib/pf/
// parse_fuzz.lua says what counts as a finding).
#include "vm/lua_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static snabb::fuzz::LuaTarget target("lib.pf.parse_fuzz", false);
  target.one(data, size);
  return 0;
}
