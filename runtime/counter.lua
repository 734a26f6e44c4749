-- core.counter: named 64-bit counters, Snabb's core.counter API. Counters live in ordinary memory
-- for now; the names are kept so a shared-memory export can publish them as they are.
local ffi = require("ffi")

local M = {}

local counter_t = ffi.typeof("struct { uint64_t c; }")
local counters = {} -- name -> counter

function M.create (name, initval)
   if counters[name] then error(("counter '%s' already exists"):format(name), 2) end
   local c = counter_t()
   c.c = initval or 0
   counters[name] = c
   return c
end

function M.delete (name) counters[name] = nil end
function M.set (counter, value) counter.c = value end
function M.add (counter, value) counter.c = counter.c + (value or 1) end
function M.read (counter) return counter.c end
function M.open (name) return counters[name] end

-- name -> value, for reports.
function M.snapshot ()
   local values = {}
   for name, c in pairs(counters) do values[name] = c.c end
   return values
end

function M.selftest ()
   print("selftest: core.counter")
   local c = M.create("selftest/packets")
   M.add(c)
   M.add(c, 41)
   assert(M.read(c) == 42ULL and M.snapshot()["selftest/packets"] == 42ULL)
   assert(not pcall(M.create, "selftest/packets"))
   M.set(c, 0)
   assert(M.read(c) == 0ULL)
   M.delete("selftest/packets")
   assert(M.open("selftest/packets") == nil)
   print("selftest: core.counter ok")
end

return M
