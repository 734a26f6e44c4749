#!/usr/bin/env bash
# End-to-end: who wins a require, and what Snabb code loads besides its core (vm/README.md):
#   - a user's file on package.path wins over a module compiled into snabb (apps/basic/
#     basic_apps.lua), except the runtime's core.* and LuaJIT's jit.*; a core.X snabb does not
#     compile in is found on the path;
#   - modules made of a source tree, as Snabb's build makes them: X_h (ffi.cdef of X.h), X_inc,
#     X_yang, X_events (the file's text), X from X.dasl (through the dynasm.lua on the path), and
#     names that read `.` and `-` in file names as `_`;
#   - DynASM's encoder (dasm_*) in the binary assembles and runs machine code;
#   - require("syscall") is ljsyscall (loaded at start, after core.*; lseek and getcpu fixed by
#     third_party/lua/ljsyscall-fixes.patch), and it coexists with our C
#     declarations: PcapWriter copies a capture whole, ljsyscall's clock_gettime works (and the
#     calls Snabb's core/shm.lua makes), and every module compiled into snabb loads beside it.
. "$(dirname "$0")/prologue.sh"

tree=$tmp/tree
mkdir -p "$tree"/{apps/basic,core,jit,lib/yang,program/find-limit,x}
cd "$tree"

# --- The require rule.
cat >apps/basic/basic_apps.lua <<'EOF'
return {origin = "the user's file", name = ...}
EOF
for m in core/lib jit/bc; do echo "error('$m.lua on the path was loaded')" >$m.lua; done
echo 'return "core.mine from the path"' >core/mine.lua
cat >rule.lua <<'EOF'
local basic = require("apps.basic.basic_apps")
assert(basic.origin == "the user's file", "apps.basic.basic_apps is not the user's file")
assert(basic.name == "apps.basic.basic_apps")
package.loaded["core.lib"] = nil -- loaded at start-up: require it afresh
assert(type(require("core.lib").table_text) == "function", "core.lib is not snabb's")
assert(type(require("jit.bc").dump) == "function", "jit.bc is not LuaJIT's")
assert(require("core.mine") == "core.mine from the path")
print("rule ok")
EOF
out=$("$snabb" rule.lua 2>&1) || fail "the require rule: $out"
[ "$out" = "rule ok" ] || fail "the require rule: $out"

# --- Modules made of sources.
echo 'struct snabb_require_test { int a; double b; };' >lib/thing.h
echo 'struct snabb_require_test_bad { int a };' >lib/bad.h
echo 'struct snabb_require_test_other { int a; };' >lib/other.h
printf 'module my-types { namespace "urn:x"; }\n' >lib/yang/my-types.yang
printf 'Usage: find-limit\n' >program/find-limit/README.inc
printf 'the README of firehose.h\n' >x/firehose.h.inc
printf '1|app_started|app: started\n' >core/app.events
echo 'return {name = ...}' >x/has-dash.lua
# A stand-in for DynASM (Snabb's tree carries luapower's): assembler lines become comments.
cat >dynasm.lua <<'EOF'
return {translate_tostring = function (path, opt)
   assert(opt.lang == "lua", "not asked for Lua")
   return (assert(io.open(path)):read("*a"):gsub("\n|[^\n]*", "\n-- assembled"))
end}
EOF
cat >x/asm.dasl <<'EOF'
local name = ...
| mov eax, 42
| ret
return {name = name, line = debug.getinfo(1, "l").currentline}
EOF
cat >made.lua <<'EOF'
local ffi = require("ffi")
assert(type(require("lib.thing_h")) == "table")
assert(ffi.sizeof("struct snabb_require_test") == 16)
-- The header by its file name, as Snabb's lib.virtio.virtq_device requires lib.virtio.virtio.h.
assert(type(require("lib.other.h")) == "table")
assert(ffi.sizeof("struct snabb_require_test_other") == 4)
local ok, err = pcall(require, "lib.bad_h")
assert(not ok and err:match("lib/bad%.h: ") , "bad header: " .. tostring(err))
assert(require("lib.yang.my_types_yang") == 'module my-types { namespace "urn:x"; }\n')
assert(require("program.find_limit.README_inc") == "Usage: find-limit\n")
assert(require("x.firehose_h_inc") == "the README of firehose.h\n")
assert(require("core.app_events") == "1|app_started|app: started\n")
assert(require("x.has_dash").name == "x.has_dash")
local asm = require("x.asm")
assert(asm.name == "x.asm" and asm.line == 4, "x.asm: " .. tostring(asm.name) .. " " .. tostring(asm.line))
ok, err = pcall(require, "lib.missing_h")
assert(not ok and err:match("no file '%./lib/missing%.h'"), err)
print("made ok")
EOF
out=$("$snabb" made.lua 2>&1) || fail "modules made of sources: $out"
[ "$out" = "made ok" ] || fail "modules made of sources: $out"

# --- DynASM's encoder, declared as luapower's dasm.lua declares it: mov eax, imm32; ret.
cat >dasm.lua <<'EOF'
local ffi = require("ffi")
ffi.cdef[[
typedef struct dasm_State_Ref { struct dasm_State *p; } dasm_State_Ref;
void dasm_init(dasm_State_Ref *, int maxsection);
void dasm_free(dasm_State_Ref *);
void dasm_setupglobal(dasm_State_Ref *, void **gl, unsigned int maxgl);
void dasm_setup(dasm_State_Ref *, const void *actionlist);
void dasm_put(dasm_State_Ref *, int start, ...);
int dasm_link(dasm_State_Ref *, size_t *szp);
int dasm_encode(dasm_State_Ref *, void *buffer);
int dasm_checkstep(dasm_State_Ref *, int secmatch);
typedef int (*DASM_EXTERN_TYPE) (void *ctx, unsigned char *addr, int idx, int type);
DASM_EXTERN_TYPE DASM_EXTERN_FUNC;
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
]]
local C = ffi.C
local DASM_IMM_D, DASM_STOP = 237, 255
local actions = ffi.new("const uint8_t[4]", {0xB8, DASM_IMM_D, 0xC3, DASM_STOP})
local state = ffi.new("dasm_State_Ref")
local globals = ffi.new("void*[1]")
C.dasm_init(state, 1)
C.dasm_setupglobal(state, globals, 1)
C.dasm_setup(state, actions)
C.dasm_put(state, 0, ffi.new("int", 42))
assert(C.dasm_checkstep(state, -1) == 0)
local size = ffi.new("size_t[1]")
assert(C.dasm_link(state, size) == 0 and size[0] == 6, "size " .. tostring(size[0]))
local code = C.mmap(nil, 4096, 7, 0x22, -1, 0) -- read, write, execute; private, anonymous
assert(C.dasm_encode(state, code) == 0)
C.dasm_free(state)
assert(C.DASM_EXTERN_FUNC == nil)
print(ffi.cast("int (*)(void)", code)())
EOF
out=$("$snabb" dasm.lua 2>&1) || fail "DynASM's encoder: $out"
[ "$out" = 42 ] || fail "DynASM's encoder: $out"

# --- ljsyscall, and our C declarations beside it.
cd "$tmp"
cat >syscall_first.lua <<'EOF'
-- PcapReader -> PcapWriter with ljsyscall loaded first (as snabb does at start): snabb run
-- syscall_first.lua IN OUT
require("syscall")
local pcap = require("apps.pcap.pcap")
local input, output = ...
local c = config.new()
config.app(c, "reader", pcap.PcapReader, input)
config.app(c, "writer", pcap.PcapWriter, output)
config.link(c, "reader.output -> writer.input")
return c
EOF
"$snabb" run syscall_first.lua "$data/v4.pcap" "$tmp/v4.pcap" --duration 0.2 >"$tmp/run.out" 2>&1 ||
  fail "PcapWriter after ljsyscall: exited $?: $(head -3 "$tmp/run.out")"
grep -q "failed" "$tmp/run.out" && fail "PcapWriter after ljsyscall: $(head -3 "$tmp/run.out")"
records=$("$here/tcpdump.sh" -nn -r "$tmp/v4.pcap" 2>/dev/null | wc -l)
[ "$records" -eq 43 ] || fail "PcapWriter after ljsyscall wrote $records of v4.pcap's 43 packets"

cat >syscall_after.lua <<'EOF'
local ffi = require("ffi")
local main = require("programs.main")
require("apps.pcap.pcap")
local S = require("syscall")
ffi.cdef("int getpid(void);")
assert(S.getpid() == ffi.C.getpid(), "S.getpid")
local t = assert(S.clock_gettime("realtime"))
assert(math.abs(t.time - os.time()) < 5, "S.clock_gettime: " .. tostring(t.time))
-- As Snabb's core/shm.lua uses it: an object as a file, mapped shared, seen by a second mapping.
local dir = arg[1] .. "/shm"
assert(S.mkdir(dir, "rwxu"))
local fd = assert(S.open(dir .. "/obj", "creat, rdwr, excl", "rusr, wusr"))
assert(fd:ftruncate(64))
local mem = assert(S.mmap(nil, 64, "read, write", "shared", fd, 0))
fd:close()
ffi.cast("uint64_t *", mem)[0] = 42
assert(S.munmap(mem, 64))
assert(S.stat(dir .. "/obj").size == 64, "S.stat")
local again = assert(S.mmap(nil, 64, "read", "shared", assert(S.open(dir .. "/obj", "rdonly")), 0))
assert(ffi.cast("uint64_t *", again)[0] == 42, "the second mapping")
local names = S.util.dirtable(dir, true)
assert(#names == 1 and names[1] == "obj", "S.util.dirtable")
-- ljsyscall-fixes.patch: lseek back (a negative offset; lib.stream's seek) and getcpu's cpu
-- (lib.numa's bind_to_cpu), both wrong in Debian's ljsyscall.
local file = assert(S.open(dir .. "/obj", "rdonly"))
assert(file:lseek(10, "set") == 10 and file:lseek(-3, "cur") == 7, "S.lseek back")
file:close()
local cpus = S.sched_getaffinity()
local cpu
for c = 0, 1023 do if cpus:get(c) then cpu = c end end
assert(S.sched_setaffinity(0, {cpu}), "S.sched_setaffinity")
assert(S.getcpu().cpu == cpu, ("S.getcpu: cpu %s, bound to %d"):format(S.getcpu().cpu, cpu))
assert(S.unlink(dir .. "/obj") and S.rmdir(dir))
-- Every module compiled into snabb loads beside ljsyscall (no struct of ours named as its).
local i, n = 0, 0
while true do
   local name = main.embedded_module(i)
   if not name then break end
   if not name:match("^syscall") then require(name) n = n + 1 end
   i = i + 1
end
assert(n > 40, n)
print("syscall ok")
EOF
out=$("$snabb" syscall_after.lua "$tmp" 2>&1) || fail "ljsyscall beside ours: $out"
[ "$out" = "syscall ok" ] || fail "ljsyscall beside ours: $out"
echo "require_test: ok"
