// "snabb.runtime": the Lua C functions through which engine.lua drives the C++ engine (runtime/),
// the one binding between Snabb's core.* modules and snabb::runtime. It depends on the VM; the VM
// does not know it: its owner hands it over, LuaVm vm({snabb::vm::runtime_binding()}).
#pragma once
#include <luajit-2.1/lua.hpp>

#include "vm/vm.h"

extern "C" int luaopen_snabb_runtime(lua_State* L);

namespace snabb::vm {
// The binding as a VM preloads it: "snabb.runtime", and on close the engine's graph emptied and
// every app released (their references into the Lua state with them).
NativeModule runtime_binding();
}  // namespace snabb::vm
