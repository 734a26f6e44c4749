// Safety nets for a running snabb: signals that stop it cleanly, a watchdog for an app stuck in one
// call, and a report for a crash (SIGSEGV, SIGBUS, SIGILL, SIGFPE) naming the app and the trace or
// Lua line. Signal handlers cannot run Lua, so what they print is kept ready for them: the engine's
// current app and method (runtime/engine.h) and, per compiled trace, its machine code's address
// range with the source lines it was recorded from (fed by jit/safety.lua from JIT events).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
#include <luajit-2.1/lua.hpp>
extern "C" {
#endif

// BEGIN FFI
/* A compiled trace: where its machine code is and the source lines it came from ("file:12-14"). */
void snabb_safety_trace(int trace, uint64_t address, uint32_t size, const char* lines);
/* jit.flush(): every trace is gone. */
void snabb_safety_flush(void);
// END FFI

#ifdef __cplusplus
}

namespace snabb::vm {
// Lua C functions of snabb.core (jit/core_module.cc), documented in safety.cc.
int safety_install(lua_State* L);
int catch_signals(lua_State* L);
int stop_requested(lua_State* L);
int stop_signal(lua_State* L);
int set_watchdog(lua_State* L);
}  // namespace snabb::vm
#endif
