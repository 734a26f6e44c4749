// Fuzz target: arbitrary bytes as a JIT auditlog, through what `snabb auditlog` does with a file
// (what counts as a finding: auditlog_fuzz.lua). One LuaJIT state serves every input; the seed is a
// log that snabb -a wrote of auditlog_fuzz_workload.lua at build time, so it is always of the
// current format.
#include <cstdlib>
#include <string>

#include "vm/runtime_binding.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static snabb::vm::LuaVm vm({snabb::vm::runtime_binding()});
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (vm.call("programs.auditlog.auditlog_fuzz", "one", {bytes}) != 0) std::abort();
  return 0;
}
