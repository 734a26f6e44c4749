// Lua modules compiled into the binary as LuaJIT bytecode (with debug info, so errors and profiles
// name file:line). Generated sources register themselves at start-up; see jit/lua_modules.bzl.
#pragma once
#include <cstddef>
#include <string_view>

namespace snabb::vm {

struct EmbeddedModule {
  const char* name;  // as given to require(), e.g. "core.packet"
  const unsigned char* bytecode;
  size_t size;
};

const EmbeddedModule* find_embedded_module(std::string_view name);

struct EmbeddedModuleRegistrar {
  EmbeddedModuleRegistrar(const char* name, const unsigned char* bytecode, size_t size);
};

}  // namespace snabb::vm

// For Lua (ffi.C): the index-th embedded module (0-based, in name order) as its name, or NULL
// after the last; *bytecode and *size give its bytecode (programs/selftest.lua declares it).
extern "C" const char* snabb_embedded_module(int index, const unsigned char** bytecode,
                                             size_t* size);
