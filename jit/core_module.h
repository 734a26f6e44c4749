// "snabb.core": the Lua C functions through which engine.lua drives the C++ engine.
#pragma once
#include <luajit-2.1/lua.hpp>

extern "C" int luaopen_snabb_core(lua_State* L);
