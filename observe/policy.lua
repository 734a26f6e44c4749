-- observe.policy: JIT settings for long-running dataplanes, and recovery of blacklisted code.
--
-- LuaJIT's defaults suit scripts: at most 1000 traces and 512 KB of machine code, then a flush
-- that throws every trace away. A dataplane runs many apps' loops for days, so it gets more room.
-- When the JIT aborts the same loop too often it blacklists it: that code stays interpreted, ten or
-- a hundred times slower, and nothing says so. check() finds blacklisted loops and functions in the
-- apps' code, reports them and turns the JIT back on for them (jit.on(f, true)), a few times each.
local engine = require("core.engine")
local util = require("jit.util")
local vmdef = require("jit.vmdef")
local band = bit.band

local M = {}

M.options = {
   "maxtrace=8000",    -- default 1000; many apps, each with several loops and side traces
   "maxrecord=16000",  -- default 4000 IR instructions: whole packet loops, inlined, fit in one trace
   "maxirconst=2000",  -- default 500
   "maxsnap=1000",     -- default 500
   "maxside=200",      -- default 100 side traces per trace: branchy packet handling
   "sizemcode=256",    -- default 32 KB areas: fewer, and traces that link stay close
   "maxmcode=262144",  -- default 512 KB in all: 256 MB, so code is never flushed for lack of room
}
M.max_recoveries = 3 -- times a blacklisted function is given back to the JIT before it is left alone

function M.apply ()
   jit.opt.start(unpack(M.options))
end

-- Bytecodes the JIT patches in when it blacklists (or is told to skip) a loop or function.
local BLACKLISTED = {ILOOP = true, IFORL = true, IITERL = true, IFUNCF = true, IFUNCV = true}

local function opname (ins)
   local op = band(ins, 0xff)
   return vmdef.bcnames:sub(op * 6 + 1, op * 6 + 6):gsub("%s+$", "")
end

-- Calls found(line, opname) for each blacklisted loop or function head in f and the functions
-- defined inside it.
local function scan (f, found)
   local info = util.funcinfo(f)
   if not info or not info.bytecodes then return end
   for pc = 0, info.bytecodes - 1 do
      local ins = util.funcbc(f, pc)
      if not ins then break end
      local name = opname(ins)
      if BLACKLISTED[name] then found(util.funcinfo(f, pc).currentline, name) end
   end
   if not info.children then return end
   local i = 1
   while true do -- negative indexes are the GC constants: strings, tables, child prototypes
      local k = util.funck(f, -i)
      if k == nil then break end
      if type(k) == "proto" then scan(k, found) end
      i = i + 1
   end
end

local recoveries = {} -- [function] = times re-enabled

-- Looks for blacklisted code in every app's methods; reports it with `log` (default engine.log)
-- and re-enables it while it has recoveries left. Returns what it found: {app=, method=, line=, op=}.
function M.check (log)
   log = log or engine.log
   local found = {}
   local c = engine.configuration
   local checked = {} -- classes: their apps share the methods (a scan per app: 0.18 s at 10,000)
   for name, spec in pairs(c and c.apps or {}) do
      for method, f in pairs(checked[spec.class] and {} or spec.class) do
         if type(f) == "function" and util.funcinfo(f).source then
            local hits = {}
            scan(f, function (line, op) hits[#hits+1] = {app = name, method = method, line = line, op = op} end)
            if #hits > 0 then
               local source = util.funcinfo(f).source:gsub("^@", "")
               local n = recoveries[f] or 0
               for _, h in ipairs(hits) do
                  h.source = source
                  found[#found+1] = h
                  log(("jit: app '%s' %s: %s at %s:%d is blacklisted (the JIT gave up on it after "
                       .. "repeated aborts; see snabb profile)%s"):format(
                     name, method, h.op:sub(2) == "FUNCF" and "function" or "loop", source, h.line,
                     n < M.max_recoveries and ("; re-enabled (%d of %d)"):format(n + 1, M.max_recoveries) or ""))
               end
               if n < M.max_recoveries then
                  recoveries[f] = n + 1
                  jit.on(f, true)
               end
            end
         end
      end
      checked[spec.class] = true
   end
   return found
end

function M.selftest ()
   print("selftest: observe.policy")
   local config = require("core.config")
   local basic = require("apps.basic.basic_apps")
   -- An app whose loop the JIT blacklists: a closure per packet (NYI bytecode FNEW), on line 5.
   local Closures = assert(loadstring([[
local link = require("core.link")
local Closures = {}
function Closures:push ()
   for _ = 1, link.nreadable(self.input.input) do
      local p = link.receive(self.input.input); local keep = function () return p end
      link.transmit(self.output.output, keep())
   end
end
return Closures]], "@closures.lua"))()
   Closures.new = function () return setmetatable({}, {__index = Closures}) end
   local c = config.new()
   config.app(c, "source", basic.Source)
   config.app(c, "closures", Closures)
   config.app(c, "sink", basic.Sink)
   config.link(c, "source.output -> closures.input")
   config.link(c, "closures.output -> sink.input")
   engine.configure(c)
   local messages = {}
   local function log (m) messages[#messages+1] = m end
   for round = 1, M.max_recoveries + 1 do
      engine.main({duration = 0.5, no_report = true})
      local found = M.check(log)
      assert(#found == 1 and found[1].app == "closures" and found[1].method == "push"
             and found[1].source == "closures.lua" and found[1].line == 4,
             ("round %d: %s"):format(round, messages[#messages] or "nothing found"))
      assert(messages[#messages]:match(round <= M.max_recoveries and "re%-enabled %(%d of %d%)$"
                                       or "snabb profile%)$"), messages[#messages])
      -- Re-enabled code is no longer marked until the JIT gives up on it again.
      if round <= M.max_recoveries then assert(#M.check(function () end) == 0) end
   end
   engine.stop()
   print("selftest: observe.policy ok")
end

return M
