-- jit.vmprofile: sampling profiles per zone (see jit/vmprofile.h). RaptorJIT's interface:
--   local vmprofile = require("jit.vmprofile")
--   vmprofile.open("script.vmprofile")   -- a zone in that file, selected, sampling started
-- and what the engine uses: zone(path, name, append), close_zone(zone), select(zone), start(hz),
-- stop(); read(path) parses a zone file (also one another process is writing).
local ffi = require("ffi")
require("jit.vmprofile_cdefs")
local C = ffi.C
local util = require("jit.util")
local events = require("jit.events")

local M = {}

-- State names, in the order of enum vmprofile_state.
M.states = {"loop", "head", "interp", "c", "gc", "exit", "record", "optimise", "assemble", "runtime"}
M.default_hz = 1000

local function check (ok)
   if not ok then error(ffi.string(C.snabb_vmprofile_error()), 3) end
end

local function add_trace (tr)
   local mcode, address, loop = util.tracemc(tr)
   if mcode then C.snabb_vmprofile_trace(tr, address, #mcode, loop or 0) end
end

-- Keeps the C side's map of trace machine code in step with the JIT.
local function on_trace (what, tr)
   if what == "stop" then add_trace(tr)
   elseif what == "flush" then C.snabb_vmprofile_flush() end
end

-- They run inside JIT events, where compiled code must not run (see jit.events).
jit.off(add_trace)
jit.off(on_trace)

local attached = false

function M.start (hz)
   if not attached then
      events.subscribe("trace", on_trace)
      attached = true
      for tr = 1, C.VMPROFILE_MAX_TRACE do
         if util.traceinfo(tr) then add_trace(tr) end
      end
   end
   check(C.snabb_vmprofile_start(hz or M.default_hz) == 0)
end

function M.stop ()
   C.snabb_vmprofile_stop()
end

-- Stops sampling and forgets every zone (their files stay).
function M.close ()
   if attached then events.unsubscribe("trace", on_trace) attached = false end
   C.snabb_vmprofile_close()
end

-- A new zone writing to `path` (truncated, or with `append` added to); returns its id.
function M.zone (path, name, append)
   local id = C.snabb_vmprofile_zone(path, name or path, append and 1 or 0)
   check(id > 0)
   return id
end

-- Unmaps a zone (its file stays); its id goes to the next new zone.
function M.close_zone (zone)
   C.snabb_vmprofile_zone_close(zone)
end

function M.select (zone)
   C.snabb_vmprofile_select(zone)
end

function M.open (path)
   local zone = M.zone(path, (path:match("([^/]+)%.vmprofile$") or path))
   M.select(zone)
   M.start()
   return zone
end

local file_t = ffi.typeof("struct vmprofile_file")
local file_ptr_t = ffi.typeof("struct vmprofile_file *")

-- A zone file as {zone=, hz=, samples=, traces = {[trace] = {[state name] = count}}, total =
-- {[state name] = count}}; trace 0 holds samples outside compiled code.
function M.read (path)
   local f, err = io.open(path, "rb")
   if not f then error(err, 2) end
   local bytes = f:read("*a")
   f:close()
   local header = ffi.offsetof(file_t, "counts")
   if #bytes < header or bytes:sub(1, 8) ~= "SNABBVMP" then
      error(("%s: not a vmprofile file"):format(path), 2)
   end
   local p = ffi.cast(file_ptr_t, bytes)
   if p.version ~= C.VMPROFILE_VERSION or p.states ~= C.VMPROFILE_STATES or #bytes < ffi.sizeof(file_t) then
      error(("%s: vmprofile version %d with %d states; this snabb reads version %d"):format(
         path, p.version, p.states, C.VMPROFILE_VERSION), 2)
   end
   local result = {zone = ffi.string(p.zone), hz = p.hz, samples = tonumber(p.samples), traces = {}, total = {}}
   for _, name in ipairs(M.states) do result.total[name] = 0 end
   for tr = 0, p.max_trace do
      local row
      for s = 0, C.VMPROFILE_STATES - 1 do
         local n = tonumber(p.counts[tr][s])
         if n > 0 then
            row = row or {}
            row[M.states[s + 1]] = n
            result.total[M.states[s + 1]] = result.total[M.states[s + 1]] + n
         end
      end
      result.traces[tr] = row
   end
   return result
end

function M.selftest ()
   print("selftest: jit.vmprofile")
   local state = ffi.new("int[1]")
   local function classify (address) return M.states[C.snabb_vmprofile_classify(address, state) + 1] end
   -- Symbols of the binary: the interpreter, the GC, our runtime, the JIT compiler.
   local function addr (name)
      local a = C.snabb_vmprofile_symbol(name)
      assert(a ~= 0, name)
      return a
   end
   assert(classify(addr("lj_BC_ADDVN")) == "interp")
   assert(classify(addr("lj_gc_step")) == "gc")
   assert(classify(addr("lj_record_call")) == "record")
   assert(classify(addr("lj_asm_trace")) == "assemble")
   assert(classify(addr("lj_opt_fold")) == "optimise")
   assert(classify(addr("lj_vm_exit_handler")) == "exit")
   assert(classify(addr("snabb_link_sync")) == "runtime")

   -- A hot loop in its own zone: nearly all samples land in its trace's loop.
   local path = os.tmpname()
   M.open(path)
   local function spin (n)
      local x = 0
      for i = 1, n do x = bit.bxor(x, i * 7) end
      return x
   end
   local deadline = os.clock() + 0.3
   while os.clock() < deadline do spin(1e6) end
   M.stop()
   local profile = M.read(path)
   assert(profile.samples > 100, "samples: " .. profile.samples)
   local loop = profile.total.loop
   assert(loop / profile.samples > 0.6, ("loop share %d/%d"):format(loop, profile.samples))
   local hottest, count = nil, 0
   for tr, row in pairs(profile.traces) do
      if tr > 0 and (row.loop or 0) > count then hottest, count = tr, row.loop end
   end
   local info = util.traceinfo(hottest)
   assert(info, "the hottest trace exists")

   -- A closed zone is unmapped, its file stays and its id goes to the next zone; a zone opened
   -- with append adds to the file's counts, one opened without starts afresh.
   local zone = M.zone(path, "again", true)
   M.select(zone)
   M.close_zone(zone)
   local path2 = os.tmpname()
   assert(M.zone(path2, "other") == zone, "the id is reused")
   local kept = M.read(path)
   assert(kept.samples == profile.samples and kept.zone == "again", "the file stays")
   local appended = M.zone(path, "again", true)
   assert(M.read(path).samples == profile.samples, "append keeps the counts")
   M.close_zone(appended)
   M.close_zone(M.zone(path, "fresh"))
   assert(M.read(path).samples == 0 and M.read(path).zone == "fresh", "without append: truncated")
   M.close()
   os.remove(path)
   os.remove(path2)
   assert(not pcall(M.read, "/nonexistent"))
   print("selftest: jit.vmprofile ok")
end

return M
