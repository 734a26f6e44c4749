-- programs.inspect.compare: two runs side by side, for `snabb inspect A B` (GET
-- /inspect/api/compare): each app's cycles per packet and each trace's samples in A and in B, with
-- the difference and the ratio, most impact first, so that an optimisation is checked at a glance
-- (RaptorJIT's benchmark suite compares branches; this compares runs of a network function).
-- Each run is read through programs.inspect.data, as the one-run views read it.
--
-- Apps are matched by name. Traces cannot be matched by number (LuaJIT numbers them in the order
-- it compiles them, which differs from run to run), so by what they are: where the trace starts
-- (source:line, the source's path normalised: "x/../" and "./" dropped), its link type, and for a
-- side trace its parent's identity (recursively) and the exit it leaves from. Traces of equal
-- identity in one run (the same loop compiled again after a flush) are told apart by their order.
-- A trace's share is its samples over all of its run's samples (runs of different lengths or
-- sampling rates compare by share; the samples are shown too).
local data = require("programs.inspect.data")

local M = {}

M.same = 0.02 -- a ratio within 2% of 1 is "same" (the page says so rather than better or worse)

-- A source path as written by one run or another: "@" and "./" dropped, "DIR/../" folded.
function M.normalise (source)
   source = (source or "?"):gsub("^@", "")
   local absolute, parts = source:sub(1, 1) == "/", {}
   for part in source:gmatch("[^/]+") do
      if part == ".." and #parts > 0 and parts[#parts] ~= ".." then
         parts[#parts] = nil
      elseif part ~= "." then
         parts[#parts+1] = part
      end
   end
   return (absolute and "/" or "") .. table.concat(parts, "/")
end

-- Each trace's identity (a string) by number, for one run's trace list (data.traces).
function M.identities (traces)
   local by_number, ids = {}, {}
   for _, t in ipairs(traces) do by_number[t.number] = t end
   local function id (t, depth)
      if ids[t.number] then return ids[t.number] end
      local start = t.start and M.normalise(t.start:match("^(.*):%d+$")) .. ":" .. t.start:match(":(%d+)$")
                    or "?"
      local key = start .. " " .. (t.linktype or "?")
      if t.parent and t.parent > 0 then
         local parent = by_number[t.parent]
         -- (A parent's number may have been reused after a flush: a cycle is cut, not followed.)
         local pid = parent and parent ~= t and depth < 64 and id(parent, depth + 1) or "trace ?"
         key = ("%s from [%s] exit %s"):format(key, pid, t.exit == -1 and "stitch" or tostring(t.exit))
      end
      if depth == 0 then ids[t.number] = key end
      return key
   end
   -- In order of number, so that the n-th trace of an identity is the n-th compiled.
   local sorted = {}
   for _, t in ipairs(traces) do sorted[#sorted+1] = t end
   table.sort(sorted, function (a, b) return a.number < b.number end)
   local seen, result = {}, {}
   for _, t in ipairs(sorted) do
      local key = id(t, 0)
      seen[key] = (seen[key] or 0) + 1
      result[t.number] = seen[key] > 1 and ("%s (#%d)"):format(key, seen[key]) or key
   end
   return result
end

local function ratio (a, b)
   if a and b and a > 0 then return b / a end
   return nil
end

-- "better", "worse" or "same" for a figure where less is better (cycles per packet); "new" or
-- "gone" for one run's alone.
local function verdict (a, b)
   if a == nil then return "only in B" end
   if b == nil then return "only in A" end
   local r = ratio(a, b)
   if not r then return b > 0 and "worse" or "same" end
   if r < 1 - M.same then return "better" end
   if r > 1 + M.same then return "worse" end
   return "same"
end

-- The VM states' shares of a run's samples (all zones: apps', engine's, or a file's one zone).
local function state_counts (apps)
   local counts, total = {}, 0
   local function add (states)
      for s, n in pairs(states or {}) do
         counts[s] = (counts[s] or 0) + n
         total = total + n
      end
   end
   for _, a in ipairs(apps.apps) do add(a.states) end
   add(apps.engine_states)
   if apps.zone then add(apps.zone.states) end
   return counts, total
end

local function side (run)
   local apps, traces = data.apps(run), data.traces(run)
   return {apps = apps, traces = traces.traces, auditlog = traces.auditlog}
end

-- The comparison of runs a and b (data runs): {a = {dir, program, samples, hz, ...}, b = ...,
-- apps = {...}, traces = {...}, states = {...}}, each list most impact first.
function M.compare (a, b)
   local A, B = side(a), side(b)
   local out = {}
   for name, s in pairs({a = A, b = B}) do
      out[name] = {dir = s.apps.dir, files = s.apps.files, program = s.apps.program, pid = s.apps.pid,
                   samples = s.apps.samples, hz = s.apps.hz, apps = #s.apps.apps,
                   traces = s.apps.traces, aborts = s.apps.aborts, auditlog = s.auditlog}
   end
   -- Apps by name: cycles per packet (the engine's, exact), share of engine time, samples.
   local apps, by_name = {}, {}
   local function app_row (name)
      if not by_name[name] then
         by_name[name] = {name = name}
         apps[#apps+1] = by_name[name]
      end
      return by_name[name]
   end
   for key, s in pairs({a = A, b = B}) do
      for _, x in ipairs(s.apps.apps) do
         app_row(x.name)[key] = {class = x.class, cycles_per_packet = x.cycles_per_packet,
                                 share = x.share, samples = x.samples, packets_in = x.packets_in,
                                 packets_out = x.packets_out}
      end
   end
   for _, r in ipairs(apps) do
      local ca, cb = r.a and r.a.cycles_per_packet, r.b and r.b.cycles_per_packet
      r.diff = (cb or 0) - (ca or 0)
      r.ratio = ratio(ca, cb)
      r.verdict = verdict(ca, cb)
      r.share_diff = (r.b and r.b.share or 0) - (r.a and r.a.share or 0)
   end
   table.sort(apps, function (x, y)
      local dx, dy = math.abs(x.diff), math.abs(y.diff)
      if dx ~= dy then return dx > dy end
      return x.name < y.name
   end)
   out.apps = apps
   -- Traces by identity: samples and share of the run's samples.
   local traces, by_id = {}, {}
   for key, s in pairs({a = A, b = B}) do
      local ids = M.identities(s.traces)
      local total = s.apps.samples or 0
      for _, t in ipairs(s.traces) do
         local id = ids[t.number]
         local r = by_id[id]
         if not r then
            r = {id = id, start = t.start, linktype = t.linktype}
            by_id[id] = r
            traces[#traces+1] = r
         end
         r[key] = {number = t.number, samples = t.samples, share = total > 0 and t.samples / total or 0,
                   span = t.span, parent = t.parent, exit = t.exit, app = t.app, tooling = t.tooling}
      end
   end
   for _, r in ipairs(traces) do
      r.only = not r.b and "a" or not r.a and "b" or nil
      local sa, sb = r.a and r.a.share or 0, r.b and r.b.share or 0
      r.diff = (r.b and r.b.samples or 0) - (r.a and r.a.samples or 0)
      r.share_diff = sb - sa
      r.ratio = r.a and r.b and ratio(sa, sb) or nil
   end
   table.sort(traces, function (x, y)
      local dx, dy = math.abs(x.share_diff), math.abs(y.share_diff)
      if dx ~= dy then return dx > dy end
      local mx = math.max(x.a and x.a.samples or 0, x.b and x.b.samples or 0)
      local my = math.max(y.a and y.a.samples or 0, y.b and y.b.samples or 0)
      if mx ~= my then return mx > my end
      return x.id < y.id
   end)
   out.traces = traces
   -- Where the time went, run against run.
   local ca, ta = state_counts(A.apps)
   local cb, tb = state_counts(B.apps)
   local states = {}
   for _, s in ipairs(A.apps.states) do
      local sa, sb = ta > 0 and (ca[s] or 0) / ta or 0, tb > 0 and (cb[s] or 0) / tb or 0
      states[#states+1] = {state = s, a = ca[s] or 0, b = cb[s] or 0, share_a = sa, share_b = sb,
                           share_diff = sb - sa}
   end
   out.states = states
   return out
end

function M.selftest ()
   print("selftest: programs.inspect.compare")
   assert(M.normalise("@/x/tests/configs/../../examples/forward.lua") == "/x/examples/forward.lua")
   assert(M.normalise("./a/./b.lua") == "a/b.lua")
   assert(M.normalise("../a/b.lua") == "../a/b.lua")
   local ids = M.identities({
      {number = 1, start = "f.lua:10", linktype = "loop"},
      {number = 2, start = "f.lua:12", linktype = "root", parent = 1, exit = 3},
      {number = 3, start = "f.lua:12", linktype = "root", parent = 2, exit = 0},
      {number = 4, start = "./f.lua:10", linktype = "loop"},
      {number = 5, start = "g.lua:1", linktype = "loop", parent = 9, exit = 1},
   })
   assert(ids[1] == "f.lua:10 loop", ids[1])
   assert(ids[2] == "f.lua:12 root from [f.lua:10 loop] exit 3", ids[2])
   assert(ids[3] == "f.lua:12 root from [f.lua:12 root from [f.lua:10 loop] exit 3] exit 0", ids[3])
   assert(ids[4] == "f.lua:10 loop (#2)", ids[4])
   assert(ids[5] == "g.lua:1 loop from [trace ?] exit 1", ids[5])
   assert(verdict(10, 5) == "better" and verdict(10, 20) == "worse" and verdict(10, 10.1) == "same")
   assert(verdict(nil, 3) == "only in B" and verdict(3, nil) == "only in A")
   print("selftest: ok")
end

return M
