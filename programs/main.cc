// snabb: one binary with LuaJIT and every bundled Lua module inside. All commands are Lua programs
// (programs/NAME/NAME.lua, found by name); this only starts the VM and hands over the arguments.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "vm/runtime_binding.h"

int main(int argc, char** argv) {
  try {
    snabb::vm::LuaVm vm({snabb::vm::runtime_binding()});
    return vm.call("programs.main", "main", std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "snabb: %s\n", e.what());
    return 1;
  }
}
