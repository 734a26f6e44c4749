-- A script (snabb FILE.lua DIR; tests/run_test.sh): one observed process whose graph is replaced
-- 12 times by chains of 100 apps with new names, 1,200 names in all (the 1,022nd used to end in
-- "vmprofile: more than 1023 zones"). Every round moves packets with counters that add up; the
-- zones of apps that left are unmapped (only the running graph's are mapped) and their files stay,
-- so apps.json and vmprofile/ cover every app that ran.
local observe = require("observe.observe")
local json = require("dkjson")
local dir = assert(..., "usage: churn.lua RUNDIR")
local here = arg[0]:match("^(.*)/[^/]+$") or "."
local make_graph = assert(loadfile(here .. "/many_apps.lua"))
local rounds, apps_per_round = 12, 100

local function mapped_zones ()
   local n = 0
   for line in io.lines("/proc/self/maps") do
      if line:match("%.vmprofile$") then n = n + 1 end
   end
   return n
end

observe.start({dir = dir, program = "churn"})
for round = 1, rounds do
   engine.configure(make_graph("chain", apps_per_round, ("r%d_"):format(round)))
   engine.main({duration = 0.01})
   for _, l in ipairs(engine.link_stats()) do
      assert(l.txpackets == l.rxpackets + l.queued + l.txdrop and l.rxpackets > 0,
             ("round %d: %s: tx %d rx %d queued %d drop %d"):format(
                round, l.link, l.txpackets, l.rxpackets, l.queued, l.txdrop))
   end
   -- this graph's apps and the engine's zone; none of the earlier rounds'
   assert(mapped_zones() == apps_per_round + 1, ("round %d: %d zones mapped"):format(
             round, mapped_zones()))
end
engine.stop()
observe.stop()

local doc = json.decode(io.open(dir .. "/apps.json"):read("*a"))
local names = {}
for _, a in ipairs(doc.apps) do names[a.name] = a end
for round = 1, rounds do
   for i = 1, apps_per_round - 2 do
      local name = ("r%d_%d"):format(round, i)
      assert(names[name] and names[name].packets_in > 0, "apps.json lacks " .. name)
      local f = io.open(("%s/vmprofile/%s.vmprofile"):format(dir, name))
      assert(f, "no zone file for " .. name)
      f:close()
   end
end
print(("churn ok: %d app names, %d apps in apps.json"):format(rounds * (apps_per_round - 2) + 2,
                                                            #doc.apps))
