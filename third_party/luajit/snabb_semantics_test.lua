-- Tests the two ways our LuaJIT build follows Snabb's (RaptorJIT's) rather than stock LuaJIT 2.1,
-- both needed by Snabb code that runs unmodified (issue 17):
--  - LUAJIT_ENABLE_LUA52COMPAT, which Snabb builds with: `#` calls a table's __len, pairs() its
--    __pairs, table.pack/unpack exist (Snabb's lib.yang.list and lib.yang.util rely on __len);
--  - string-hash-seed.patch: pairs() visits string keys in the same order in every process
--    (Snabb's apps.bridge.learning builds its forwarding tables in pairs() order; stock 2.1 seeds
--    string hashes per process, which changed the order from run to run).
-- Run as `snabb snabb_semantics_test.lua`.
local ffi = require("ffi")

-- Lua 5.2 compatibility.
local sized = setmetatable({}, {__len = function () return 42 end})
assert(#sized == 42, ("#t ignores __len: %d"):format(#sized))
local visited = {}
for k in pairs(setmetatable({}, {__pairs = function () return next, {a = 1}, nil end})) do
   visited[#visited+1] = k
end
assert(#visited == 1 and visited[1] == "a", "pairs() ignores __pairs")
assert(table.unpack and table.pack, "no table.unpack/table.pack")
assert(select("#", table.unpack(table.pack(1, nil, 3), 1, 3)) == 3)

-- The order of string keys, one name a line.
local function order ()
   local t = {}
   for i = 1, 300 do t[("key%d_%s"):format(i, string.rep("x", i % 7))] = i end
   t.ucast, t.flood, t.discard = 1, 2, 3
   local names = {}
   for k in pairs(t) do names[#names+1] = k end
   return table.concat(names, "\n")
end

if arg[1] == "child" then io.write(order()) os.exit(0) end

ffi.cdef("long readlink(const char *path, char *buf, unsigned long size);")
local buf = ffi.new("char[4096]")
local n = ffi.C.readlink("/proc/self/exe", buf, 4096)
assert(n > 0, "readlink /proc/self/exe")
local exe = ffi.string(buf, n)
local mine = order()
for run = 1, 3 do
   local child = io.popen(("'%s' '%s' child"):format(exe, arg[0]))
   local theirs = child:read("*a")
   assert(child:close())
   assert(theirs == mine, ("process %d visited string keys in another order than this one"):format(run))
end
print("ok: __len, __pairs, table.pack/unpack; pairs() order the same in 4 processes")
