-- Tests entry-traces.patch in the LuaJIT that snabb links: an app method that the engine calls
-- from C on every breath, a prologue around a packet loop, gets a trace from its entry that links
-- into the loop's trace, so no part of it runs interpreted. Run as `snabb entry_traces_test.lua`.
local jutil = require("jit.util")
local vmdef = require("jit.vmdef")
local config = require("core.config")
local engine = require("core.engine")
local basic = require("apps.basic.basic_apps")

local started, stopped, aborts = {}, {}, {}
local function on_trace (what, tr, func, pc, otr)
   if what == "start" then
      started[tr] = {func = func, pc = pc}
   elseif what == "stop" then
      stopped[#stopped + 1] = tr
   elseif what == "abort" and func == basic.Sink.push then
      aborts[#aborts + 1] = ("line %d: %s"):format(jutil.funcinfo(func, pc).currentline,
                                                  vmdef.traceerr[otr] or otr)
   end
end

local c = config.new()
config.app(c, "source", basic.Source)
config.app(c, "sink", basic.Sink)
config.link(c, "source.tx -> sink.rx")
engine.configure(c)
jit.attach(on_trace, "trace")
engine.main({duration = 0.2})
jit.attach(on_trace)

-- Sink:push's entry trace: begun at its first instruction, linked to its loop's trace.
local push = basic.Sink.push
local entry
for _, tr in ipairs(stopped) do
   local s, info = started[tr], jutil.traceinfo(tr)
   local into_loop = info.linktype == "root" and started[info.link].func == push
   if s.func == push and s.pc == 0 and into_loop then entry = tr end
end
if not entry then
   error("no trace from Sink:push's entry into its loop; its aborts: " ..
         table.concat(aborts, "; "))
end
print(("entry traces: Sink:push's entry is trace %d, linked to trace %d"):format(
   entry, jutil.traceinfo(entry).link))
