// Fuzz target: arbitrary text as a `snabb run` config file, through run.load_config, core.config's
// checks and engine.configure (programs/run/config_fuzz.lua says what counts as a finding and how
// the config's own code is bounded). The target's private directory is also the current one, so
// whatever a config writes lands there (vm/lua_fuzz_target.h).
#include "vm/lua_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static snabb::fuzz::LuaTarget target("programs.run.config_fuzz", true);
  target.one(data, size);
  return 0;
}
