// snabb: one binary with LuaJIT and every bundled Lua module inside. All commands are Lua programs
// (programs/*.lua); this only starts the VM and hands over the arguments.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "jit/vm.h"

int main(int argc, char** argv) {
  try {
    snabb::vm::LuaVm vm;
    return vm.call("programs.main", "main", std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "snabb: %s\n", e.what());
    return 1;
  }
}
