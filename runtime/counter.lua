-- core.counter: Snabb's counters, 64-bit unsigned, in shared memory (core.shm's type `counter`):
-- each is an 8-byte file in the run directory (NAME, e.g. apps/x/rxpackets.counter) in native
-- byte order, which another process maps (counter.open, shm.open) or reads (od -A none -t u8
-- FILE). As in Snabb, a counter made here is double-buffered: create() returns a private copy
-- that add/set update, and commit() copies every private copy to its file: a repeating core.timer
-- timer does it every millisecond (the engine runs timers between its slices of at most 1 ms, as
-- Snabb commits every 100 breaths), and main.exit does before exiting. (Each file's mapping is
-- page-aligned, so counters updated in place would all fall in the same cache sets: Snabb
-- measured the misses.) open() maps a counter read-only and reads it directly.
local ffi = require("ffi")
local shm = require("core.shm")
require("core.counter_h")

local timer = require("core.timer")

local M = {}

M.type = shm.register("counter", M)

local counter_t = ffi.typeof("struct counter")

-- shm's function f(...), its error raised as the caller's caller's (an app's line, not ours).
local function mapped (f, ...)
   local ok, p = pcall(f, ...)
   if not ok then error(tostring(p):gsub("^[^\n]-:%d+: ", ""), 3) end
   return p
end

local public, private = {}, {} -- counter number -> its file's mapping, the copy apps update
local numbers = {}             -- name -> counter number
local count = 0
local committer -- the timer that commits, activated with the first counter made here

-- Counter name (its file made if missing), set to initval (default 0), also in its file; a second
-- create of the same name returns the same counter as it is.
function M.create (name, initval)
   local n = numbers[name]
   if n then return private[n] end
   count = count + 1
   n = count
   public[n] = mapped(shm.create, name, counter_t)
   private[n] = counter_t()
   private[n].c = initval or 0
   public[n].c = private[n].c
   numbers[name] = n
   if not committer then
      committer = timer.new("counter.commit", M.commit, 1e6, "repeating")
      timer.activate(committer)
   end
   return private[n]
end

-- Counter name, made by this or another process, mapped read-only.
function M.open (name)
   local n = numbers[name]
   if n then return private[n] end
   count = count + 1
   n = count
   public[n] = mapped(shm.open, name, counter_t, "readonly")
   private[n] = public[n]
   numbers[name] = n
   return private[n]
end

-- Lets go of counter name: unmapped, and its file removed when it was made here.
function M.delete (name)
   local n = numbers[name]
   if not n then error(("counter.delete: no counter '%s'"):format(name), 2) end
   shm.unmap(public[n])
   if public[n] ~= private[n] then shm.unlink(name) end
   numbers[name], public[n], private[n] = nil, nil, nil
end

-- Copies the counters made here to their files.
function M.commit ()
   for n = 1, count do
      local p = public[n]
      if p and p ~= private[n] then p.c = private[n].c end
   end
end

function M.set (counter, value) counter.c = value end
function M.add (counter, value) counter.c = counter.c + (value or 1) end
-- A link's stats are plain 64-bit numbers here (runtime/link.h), counters in Snabb: Snabb code
-- reads them with counter.read (apps.test.npackets: l.stats.txpackets), so it takes those too.
local uint64_t = ffi.typeof("uint64_t")
function M.read (counter)
   if ffi.istype(uint64_t, counter) then return counter end
   return counter.c
end

-- name -> value of every counter open here, for reports.
function M.snapshot ()
   local values = {}
   for name, n in pairs(numbers) do values[name] = private[n].c end
   return values
end

ffi.metatype(counter_t, {__tostring = function (counter)
   return require("core.lib").comma_value(counter.c)
end})

function M.selftest ()
   print("selftest: core.counter")
   local a = M.create("core.counter/selftest/a")
   local b = M.create("core.counter/selftest/b", 43)
   assert(M.create("core.counter/selftest/a") == a)
   local file = shm.open("core.counter/selftest/a", counter_t, "readonly")
   M.set(a, 42)
   assert(M.read(a) == 42ULL and M.read(b) == 43ULL)
   local l = require("core.link").new("core.counter selftest")
   assert(M.read(l.stats.txpackets) == 0ULL, "a link's stats")
   require("core.link").free(l, "core.counter selftest")
   assert(file.c == 0ULL, "not public before commit")
   M.commit()
   assert(file.c == 42ULL)
   M.add(a)
   M.add(a, 10)
   assert(M.read(a) == 53ULL and file.c == 42ULL)
   M.commit()
   assert(file.c == 53ULL and tostring(a) == "53")
   assert(M.snapshot()["core.counter/selftest/a"] == 53ULL)
   -- The file holds the value in native byte order, 8 bytes.
   local f = assert(io.open(shm.path("core.counter/selftest/a"), "rb"))
   local bytes = f:read("*a")
   f:close()
   assert(#bytes == 8 and ffi.cast("uint64_t *", bytes)[0] == 53ULL)
   -- 64 bits whole.
   M.set(b, 0xffffffffffffffffULL)
   M.add(b)
   assert(M.read(b) == 0ULL)
   M.delete("core.counter/selftest/a")
   assert(not shm.exists("core.counter/selftest/a"))
   assert(not pcall(M.delete, "core.counter/selftest/a"))
   -- A counter made where a file is (another run's, in a --rundir kept) starts at initval or 0.
   local old = shm.create("core.counter/selftest/c", counter_t)
   old.c = 9
   assert(M.read(M.create("core.counter/selftest/c")) == 0ULL and old.c == 0ULL)
   assert(M.read(M.create("core.counter/selftest/c", 5)) == 0ULL, "a second create changes nothing")
   -- The engine's timers commit.
   local d = M.create("core.counter/selftest/d")
   M.add(d, 2)
   local view = shm.open("core.counter/selftest/d", counter_t, "readonly")
   assert(view.c == 0ULL)
   timer.run_to_time((timer.ticks + 2) * timer.ns_per_tick)
   assert(view.c == 2ULL)
   shm.unmap(file) shm.unmap(old) shm.unmap(view)
   shm.unlink("core.counter")
   print("selftest: core.counter ok")
end

return M
