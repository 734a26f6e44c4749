-- vm.safety: the Lua side of vm/safety.cc. install() arms the crash handlers and the watchdog
-- and keeps the C side's table of compiled traces up to date: each trace's machine code and the
-- source lines it was recorded from, which is what a signal handler can name for compiled code
-- (it cannot run Lua, and compiled code keeps no Lua frame to read).
local ffi = require("ffi")
require("vm.safety_cdefs")
local runtime = require("snabb.runtime")
local events = require("vm.events")
local util = require("jit.util")
local C = ffi.C

local M = {}

M.default_watchdog = 10 -- seconds one app call may run before it is reported

-- The trace being recorded: its functions in the order met, each with its lowest and highest pc.
local recording

local function on_record (_, func, pc)
   if not recording or pc < 0 then return end
   local r = recording[func]
   if not r then
      recording[func] = {pc, pc}
      recording[#recording+1] = func
   elseif pc < r[1] then r[1] = pc
   elseif pc > r[2] then r[2] = pc end
end

-- "file:12-14, runtime/link.lua:26-50": each function's lines at its lowest and highest pc in the
-- trace (two lookups per function: this runs at every trace stop).
local function lines_of (rec)
   local parts, seen = {}, {}
   for _, func in ipairs(rec) do
      local r = rec[func]
      local a, b = util.funcinfo(func, r[1]), util.funcinfo(func, r[2])
      local first, last = a.currentline or 0, b.currentline or 0
      if first > last then first, last = last, first end
      if last > 0 then
         -- A long path (Bazel's sandboxes give 200-character ones) keeps its end, so that the
         -- line numbers still fit the C side's buffer.
         local source = (a.source or "?"):gsub("^@", "")
         if #source > 80 then source = "..." .. source:sub(-77) end
         local part = (first == last or first == 0) and ("%s:%d"):format(source, last)
                                                    or ("%s:%d-%d"):format(source, first, last)
         if not seen[part] then seen[part] = true; parts[#parts+1] = part end
      end
   end
   return #parts > 0 and table.concat(parts, ", ") or "no Lua lines"
end

local function on_trace (what, tr)
   if what == "start" then
      recording = {}
   elseif what == "stop" then
      local mcode, address = util.tracemc(tr)
      if mcode and recording then C.snabb_safety_trace(tr, address, #mcode, lines_of(recording)) end
      recording = nil
   elseif what == "abort" then
      recording = nil
   elseif what == "flush" then
      C.snabb_safety_flush()
   end
end

-- They run inside JIT events, where compiled code must not run (see vm.events).
jit.off(on_record)
jit.off(lines_of)
jit.off(on_trace)

local installed = false

function M.install ()
   if installed then return end
   installed = true
   runtime.safety_install()
   runtime.set_watchdog(M.default_watchdog)
   events.subscribe("trace", on_trace)
   events.subscribe("record", on_record)
end

-- How long one app call may run before the watchdog names it (0: never).
function M.set_watchdog (seconds)
   runtime.set_watchdog(seconds)
end

return M
