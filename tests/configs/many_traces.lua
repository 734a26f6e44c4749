-- A graph whose run's auditlog holds about a thousand traces, for snabb inspect's side-trace trees
-- (tests/inspect_views_test.sh): before the graph starts, N chunks each run a loop whose branch
-- turns its exits hot, a root trace and a few side traces each. The chunks are kept (LuaJIT frees
-- the traces of a collected function and reuses their numbers) and N stays below LuaJIT's
-- maxtrace (1,000 traces, then it flushes them all). Then Source -> Sink.
local basic = require("apps.basic.basic_apps")
local total, kept = 0, {}
for k = 1, 185 do
   local f = loadstring(([[
local s = 0
for i = 1, 300 do
   if i %% 3 == 0 then s = s + %d elseif i %% 5 == 0 then s = s - 1 else s = s + 2 end
end
return s]]):format(k), "=many" .. k)
   total = total + f()
   kept[k] = f
end
assert(total > 0)
package.loaded["many_traces.kept"] = kept
local c = config.new()
config.app(c, "source", basic.Source)
config.app(c, "sink", basic.Sink)
config.link(c, "source.output -> sink.input")
return c
