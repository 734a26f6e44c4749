// DynASM's encoding engine for x86/x64 (LuaJIT's dynasm/dasm_x86.h, from the LuaJIT source the
// build unpacks), exported for ffi.C: Snabb's .dasl modules assemble machine code at run time
// through luapower's dasm.lua (Snabb's tree carries it), which declares and calls dasm_init,
// dasm_free, dasm_setupglobal, dasm_growpc, dasm_setup, dasm_put, dasm_link, dasm_encode,
// dasm_getpclabel, dasm_checkstep and the DASM_EXTERN_FUNC variable, under those names. The names
// are DynASM's, not ours (snabb_*), because that Lua calls them so. The action lists of its
// dasm_x86.lua (DynASM 1.4, "luamode") encode as this engine (1.5) reads them: the action codes
// are the same, and 1.5's additions (8-byte label addresses on x64) are not emitted by 1.4.
#include <cstdlib>
#include <cstring>

extern "C" {

// Set by dasm.lua before it encodes: resolves `extern` names to addresses (dasm.lua's own
// callback), as DynASM's DASM_EXTERN hook.
typedef int (*DASM_EXTERN_TYPE)(void* ctx, unsigned char* addr, int idx, int type);
DASM_EXTERN_TYPE DASM_EXTERN_FUNC = nullptr;

#define DASM_CHECKS  // dasm_checkstep, which dasm.lua's build() calls
#define DASM_EXTERN(ctx, addr, idx, type) DASM_EXTERN_FUNC(static_cast<void*>(ctx), addr, idx, type)
#include "dasm_proto.h"
#include "dasm_x86.h"
}
