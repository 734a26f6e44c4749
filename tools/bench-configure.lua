-- What engine.configure costs per app: graphs of N apps (tests/configs/many_apps.lua: a chain of
-- Joins, or a Split fanning out to Sinks) configured from nothing, configured again unchanged,
-- run for a few breaths, and stopped; without observation and observed (a vmprofile zone per app,
-- in a temporary run directory). Prints CPU and wall-clock milliseconds per app, the figures of
-- runtime/README.md.
-- Usage: bazel-bin/programs/snabb tools/bench-configure.lua [N...]   (default: 1000 10000)
local observe = require("observe.observe")
local here = arg[0]:match("^(.*)/[^/]+$") or "."
local make_graph = assert(loadfile(here .. "/../tests/configs/many_apps.lua"))

local sizes = {}
for i = 1, select("#", ...) do sizes[#sizes+1] = assert(tonumber((select(i, ...))), "N: a number") end
if #sizes == 0 then sizes = {1000, 10000} end

-- Runs fn and returns its CPU and wall-clock time in ms.
local function timed (fn)
   local cpu, wall = os.clock(), engine.now()
   fn()
   return (os.clock() - cpu) * 1e3, (engine.now() - wall) * 1e3
end

print(("%-7s %6s %-9s %21s %21s %21s %21s"):format("shape", "apps", "observed", "build config",
   "configure", "configure unchanged", "stop"))
print(("%-7s %6s %-9s %21s %21s %21s %21s"):format("", "", "", "ms/app cpu (wall)",
   "ms/app cpu (wall)", "ms/app cpu (wall)", "ms/app cpu (wall)"))
for _, n in ipairs(sizes) do
   for _, shape in ipairs({"chain", "fanout"}) do
      for _, observed in ipairs({false, true}) do
         local dir = observed and os.tmpname()
         if dir then
            os.remove(dir)
            observe.start({dir = dir, auditlog = false})
         end
         local c
         local row = {}
         local function add (cpu, wall) row[#row+1] = ("%8.4f (%8.4f)"):format(cpu / n, wall / n) end
         add(timed(function () c = make_graph(shape, n) end))
         add(timed(function () engine.configure(c) end))
         add(timed(function () engine.configure(c) end))
         engine.main({duration = 0.05})
         for _, l in ipairs(engine.link_stats()) do -- (a fan-out's split may not reach them all)
            assert(l.txpackets == l.rxpackets + l.queued + l.txdrop, l.link)
            assert(shape == "fanout" or l.rxpackets > 0, l.link)
         end
         add(timed(engine.stop))
         if dir then
            observe.stop()
            os.execute(("rm -rf '%s'"):format(dir))
         end
         print(("%-7s %6d %-9s %s"):format(shape, n, observed and "yes" or "no",
                                          table.concat(row, " ")))
      end
   end
end
