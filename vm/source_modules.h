// Modules made at require time from source files on package.path, as Snabb's build makes them
// when it compiles its tree into its binary: X_h from X.h (the header's text fed to ffi.cdef),
// X_inc, X_yang and X_events from X.inc, X.yang and X.events (the file's text as a string),
// X from X.dasl (Lua with DynASM's assembler lines, translated by the tree's dynasm.lua), and any
// such name or a plain Lua module's matched to a file whose name reads the same with `.` and `-`
// as `_` (require("lib.yang.ietf_inet_types_yang") is lib/yang/ietf-inet-types.yang).
#pragma once
#include <luajit-2.1/lua.hpp>

namespace snabb::vm {

// A package.loaders searcher: require's name -> a loader, or a message saying what it tried.
int search_source_module(lua_State* L);

}  // namespace snabb::vm
