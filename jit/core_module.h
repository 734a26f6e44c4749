// "snabb.core": the Lua C functions through which engine.lua drives the C++ engine.
#pragma once
#include <luajit-2.1/lua.hpp>

extern "C" int luaopen_snabb_core(lua_State* L);

namespace snabb::vm {
// Empties the engine's graph and releases every app; the VM calls this before closing its state.
void release_core_module_apps();
}  // namespace snabb::vm
