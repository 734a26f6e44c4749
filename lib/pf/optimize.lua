-- lib.pf.optimize: the middle of the pcap-filter compiler (lib/pf/README.md). It turns expand's
-- boolean tree of tests (and/or/not over comparisons of packet loads) into a decision graph, as
-- libpcap's BPF is one, and simplifies it: every packet load gets its bounds test (a failed one
-- rejects the packet, as libpcap's interpreter does), the constant-offset bounds tests are hoisted
-- to where one test covers all the loads of every accepting path, and tests whose outcome is known
-- from the tests already passed on the way (the ethertype retested in `ip and tcp and port 80`, a
-- shorter bounds test after a longer one) are jumped over.
--
-- Graph nodes: {cond = C, t = node, f = node}; the two ends are optimize.ACCEPT and
-- optimize.REJECT. A condition C is {op, a, b} over expand's arithmetic (op "==", ">", ">=",
-- "&"), or {"caplen", x, n}: caplen >= x + n (x an arithmetic value or nil), the bounds test of a
-- load.

local bit = require("bit")

local M = {}

local ACCEPT = {term = true}
local REJECT = {term = false}
M.ACCEPT, M.REJECT = ACCEPT, REJECT

local U32 = 4294967295

-- A canonical text of an arithmetic value (the key of what is known about it).
local function key(a)
   local t = a[1]
   if t == "k" then return tostring(a[2])
   elseif t == "a0" then return "A0"
   elseif t == "len" then return "len"
   elseif t == "ld" then
      -- a[5]: a packet access with a constant index, which libpcap loads through X (BPF_IND)
      -- until its last passes, so its value is not the same as gencode's own loads' there.
      -- bound: a load narrowed by lib.pf.codegen from a word that ends there.
      return (a[5] and "ldx" or "ld") .. a[2] .. "[" .. (a[3] and key(a[3]) .. "+" or "") .. a[4]
         .. (a.bound and "<" .. a.bound or "") .. "]"
   elseif t == "neg" then return "-(" .. key(a[2]) .. ")"
   else return "(" .. key(a[3]) .. a[2] .. key(a[4]) .. ")" end
end
M.key = key

-- The bounds and division tests that must pass before a's value exists, in evaluation order
-- (libpcap evaluates the left operand, then the right; a load's offset before the load).
local function guards(a, out)
   local t = a[1]
   if t == "ld" then
      if a[3] then guards(a[3], out) end
      out[#out + 1] = {"caplen", a[3], a[4] + a[2]}
   elseif t == "neg" then guards(a[2], out)
   elseif t == "op" then
      guards(a[3], out)
      guards(a[4], out)
      if (a[2] == "/" or a[2] == "%") and (a[4][1] ~= "k" or a[4][2] == 0) then
         out[#out + 1] = {"==", a[4], {"k", 0}, divisor = true}
      end
   end
   return out
end

-- The tree as a graph of tests (bounds tests come later): build(node, T, F) is the entry of
-- node's tests, going on to T if node holds and to F if not.
local function build(node, T, F)
   local t = node[1]
   if t == "true" then return T
   elseif t == "false" then return F
   elseif t == "and" then return build(node[2], build(node[3], T, F), F)
   elseif t == "or" then return build(node[2], T, build(node[3], T, F))
   elseif t == "not" then return build(node[2], F, T)
   end
   if t == "pchain" then return {cond = {"pchain", node[2], node[3], node[4]}, t = T, f = F} end
   assert(t == "cmp", t)
   return {cond = {node[2], node[3], node[4]}, t = T, f = F}
end

-- Each test preceded by the bounds and division tests of its operands.
local function add_guards(nodes)
   for _, n in ipairs(nodes) do
      local c = n.cond
      -- protochain's walk checks its own loads (lib.pf.codegen).
      local g = c[1] == "pchain" and {} or guards(c[3], guards(c[2], {}))
      if #g > 0 then
         -- n becomes the first guard, so that every way into n now goes through the guards.
         local test = {cond = c, t = n.t, f = n.f}
         local next_ = test
         for i = #g, 1, -1 do
            local gc = g[i]
            if i == 1 then
               n.cond = gc
               if gc[1] == "caplen" then n.t, n.f = next_, REJECT else n.t, n.f = REJECT, next_ end
            elseif gc[1] == "caplen" then next_ = {cond = gc, t = next_, f = REJECT}
            else next_ = {cond = gc, t = REJECT, f = next_} end
         end
      end
   end
end

-- What a condition tests: the key of its left side, an operator among == > >= < <= and a
-- constant; or nil when neither side is a constant.
local function shape(c)
   if c.shape ~= nil then return c.shape end
   local s
   if c[1] == "pchain" then
      s = {"pchain:" .. tostring(c[2]) .. ":" .. c[3] .. ":" .. c[4], "==", 1}
      s.boolean = true
   elseif c[1] == "caplen" then
      s = {"caplen:" .. (c[2] and key(c[2]) or ""), ">=", c[3]}
   elseif c[1] == "&" then
      s = {key({"op", "&", c[2], c[3]}), "~=", 0}
   elseif c[3][1] == "k" then
      s = {key(c[2]), c[1], c[3][2]}
   elseif c[2][1] == "k" then
      local flip = {["=="] = "==", [">"] = "<", [">="] = "<="}
      s = {key(c[3]), flip[c[1]], c[2][2]}
   else
      s = {key(c[2]) .. c[1] .. key(c[3]), "==", 1}
      s.boolean = true
   end
   c.shape = s
   return s
end

-- Facts: key -> {lo, hi, ne}, the range a value is known to lie in and values it is known not
-- to be. decide(facts, cond) is true, false or nil (not known).
local function constant(c) -- the outcome of a test of two constants, or nil
   if c[1] == "caplen" or c[1] == "pchain" or c[2][1] ~= "k" or c[3][1] ~= "k" then return nil end
   local x, y = c[2][2], c[3][2]
   if c[1] == "==" then return x == y elseif c[1] == ">" then return x > y
   elseif c[1] == ">=" then return x >= y end
   return bit.band(x, y) ~= 0
end

local function decide(facts, c)
   local v = constant(c)
   if v ~= nil then return v end
   local s = shape(c)
   local f = facts[s[1]]
   if not f then return nil end
   local op, k, lo, hi = s[2], s[3], f.lo, f.hi
   if s.boolean then k = 1 end
   if op == "==" then
      if lo == hi then return lo == k end
      if k < lo or k > hi or f.ne[k] then return false end
   elseif op == "~=" then
      if lo == hi then return lo ~= k end
      if k < lo or k > hi or f.ne[k] then return true end
   elseif op == ">" then
      if lo > k then return true elseif hi <= k then return false end
   elseif op == ">=" then
      if lo >= k then return true elseif hi < k then return false end
   elseif op == "<" then
      if hi < k then return true elseif lo >= k then return false end
   elseif op == "<=" then
      if hi <= k then return true elseif lo > k then return false end
   end
   return nil
end

local function learn(facts, c, outcome)
   local s = shape(c)
   local old = facts[s[1]]
   local lo, hi, ne = 0, U32, {}
   if old then
      lo, hi = old.lo, old.hi
      for v in pairs(old.ne) do ne[v] = true end
   end
   local op, k = s[2], s[3]
   if op == "~=" then op, outcome = "==", not outcome end
   if op == "==" then
      if outcome then lo, hi = math.max(lo, k), math.min(hi, k)
      else
         ne[k] = true
         if k == lo then lo = lo + 1 end
         if k == hi then hi = hi - 1 end
      end
   elseif op == ">" then
      if outcome then lo = math.max(lo, k + 1) else hi = math.min(hi, k) end
   elseif op == ">=" then
      if outcome then lo = math.max(lo, k) else hi = math.min(hi, k - 1) end
   elseif op == "<" then
      if outcome then hi = math.min(hi, k - 1) else lo = math.max(lo, k) end
   elseif op == "<=" then
      if outcome then hi = math.min(hi, k) else lo = math.max(lo, k + 1) end
   end
   local new = {}
   for key_, v in pairs(facts) do new[key_] = v end
   new[s[1]] = {lo = lo, hi = hi, ne = ne}
   if lo > hi then new.dead = true end
   return new
end

-- What is known on every one of two ways in.
local function meet(a, b)
   if a == nil or a.dead then return b end
   if b.dead then return a end
   local out = {}
   for k, fa in pairs(a) do
      local fb = b[k]
      if fb then
         local ne = {}
         for v in pairs(fa.ne) do
            if fb.ne[v] or v < fb.lo or v > fb.hi then ne[v] = true end
         end
         for v in pairs(fb.ne) do
            if v < fa.lo or v > fa.hi then ne[v] = true end
         end
         out[k] = {lo = math.min(fa.lo, fb.lo), hi = math.max(fa.hi, fb.hi), ne = ne}
      end
   end
   return out
end

-- The nodes reachable from entry, each before its successors.
local function order(entry)
   local seen, post = {}, {}
   local function visit(n)
      if n.term ~= nil or seen[n] then return end
      seen[n] = true
      visit(n.f)
      visit(n.t)
      post[#post + 1] = n
   end
   visit(entry)
   local out = {}
   for i = #post, 1, -1 do out[#out + 1] = post[i] end
   return out
end
M.order = order

-- Hoisting: the bounds each way from n to ACCEPT needs (per offset base), the least over the
-- ways; a bounds test is raised to what every accepting way after it needs anyway, and one test
-- of the constant part goes first.
local function hoist(entry)
   local nodes = order(entry)
   local need = {[ACCEPT] = {}, [REJECT] = false}
   for i = #nodes, 1, -1 do
      local n = nodes[i]
      local c = n.cond
      if c[1] == "caplen" then
         local s = shape(c)[1]
         local nt = need[n.t]
         local r = {}
         if nt then for k, v in pairs(nt) do r[k] = v end end
         r[s] = math.max(c[3], r[s] or 0)
         if nt == false then r = false end
         need[n] = r
         if r then
            c[3] = r[s]
            c.shape = nil
         end
      else
         local a, b = need[n.t], need[n.f]
         if a == false then need[n] = b
         elseif b == false then need[n] = a
         else
            local r = {}
            for k, v in pairs(a) do
               if b[k] then r[k] = math.min(v, b[k]) end
            end
            need[n] = r
         end
      end
   end
   local r = need[entry]
   if r == false then return REJECT end
   if r and r["caplen:"] and r["caplen:"] > 0 then
      return {cond = {"caplen", nil, r["caplen:"]}, t = entry, f = REJECT}
   end
   return entry
end

-- Jump threading: each edge goes past the tests its facts decide.
-- The value a test leaves in BPF's accumulator (libpcap's val[A_ATOM]): what it compares.
-- What libpcap's optimizer knows (opt_j's fold_edge): the outcome of the very same test (same
-- jump, value and constant) on a way that dominates, and that a value equal to one constant is
-- not equal to another. Before the bounds tests exist, dropping a test drops its loads, so only
-- this much is used there; what a short packet meets stays what it meets under libpcap.
-- weak.shape(c) is {test, A, constant of a jeq or false, inverted}: the test as libpcap's BPF
-- ends up with it after its peephole (`x & m == 0` is `jset m` on x, inverted; a relation
-- between two values jeq X) and the value it leaves in the accumulator (val[A_ATOM]).
local weak = {}

-- The key of a value as libpcap's value numbers see it while it threads jumps: arithmetic that
-- lib.pf.expand folded (`0 / 1`, `x << 0`) is still the operation (not constant, not x).
local function wkey(a)
   if a.unfolded then a = a.unfolded end
   local t = a[1]
   if t == "op" then return "(" .. wkey(a[3]) .. a[2] .. wkey(a[4]) .. ")"
   elseif t == "neg" then return "-(" .. wkey(a[2]) .. ")" end
   return key(a)
end

function weak.shape(c)
   if c.wshape == nil then
      local code, a, k, invert = c[1], c[2], c[3], false
      local ks
      if code == "==" and k[1] == "k" and k[2] == 0 and not k.unfolded and a[1] == "op"
         and a[2] == "&" and a[4][1] == "k" and not a[4].unfolded and not a.unfolded then
         code, k, a, invert = "&", a[4], a[3], true
      end
      local plain = k[1] == "k" and not k.unfolded
      if plain then ks = tostring(k[2]) else ks = "x" .. wkey(k) end
      local av = wkey(a)
      c.wshape = {code .. "|" .. av .. "|" .. ks, av, code == "==" and plain and k[2], invert}
   end
   return c.wshape
end

-- The value a test leaves in BPF's accumulator (libpcap's val[A_ATOM]): what it compares.
local function aval(n) return weak.shape(n.cond)[2] end

-- Weak facts are the edges that dominate (libpcap's edom), each with the test it passed or
-- failed: what holds on every way in is only what one edge on all of them established.
function weak.decide(f, c)
   local s = weak.shape(c)
   for _, e in pairs(f) do
      if e.key == s[1] then
         if s[4] then return not e.outcome end
         return e.outcome
      end
      if s[3] and e.eq and e.aval == s[2] and e.eq ~= s[3] then return false end
   end
   return nil
end

function weak.learn(f, c, outcome, edge)
   local s = weak.shape(c)
   local out = {}
   for k, v in pairs(f) do out[k] = v end
   local o = outcome
   if s[4] then o = not outcome end
   out[edge] = {key = s[1], outcome = o, aval = s[2], eq = outcome and s[3] or nil}
   return out
end

function weak.meet(a, b)
   if a == nil then return b end
   local out = {}
   for k, v in pairs(a) do if b[k] then out[k] = v end end
   return out
end

local strong = {decide = decide, learn = learn, meet = meet}
function strong.empty() return {} end
function weak.empty() return {} end

local function thread(entry, mode)
   mode = mode or strong
   local nodes = order(entry)
   local facts = {[entry] = mode.empty()}
   for _, n in ipairs(nodes) do
      local fin = facts[n]
      if fin then
         for _, branch in ipairs({"t", "f"}) do
            local outcome = branch == "t"
            n.edges = n.edges or {t = {}, f = {}}
            local ef = mode.learn(fin, n.cond, outcome, n.edges[branch])
            local target = n[branch]
            if ef.dead then
               target = REJECT
            else
               while target.term == nil do
                  local d = mode.decide(ef, target.cond)
                  if d == nil then break end
                  target = d and target.t or target.f
               end
               if target.term == nil then facts[target] = mode.meet(facts[target], ef) end
            end
            n[branch] = target
         end
      end
   end
   -- Entry decided by nothing known is kept; a test both of whose ways meet is dropped.
   local function skip(n)
      -- (protochain's walk stays: it may reject the packet.)
      while n.term == nil and n.t == n.f and n.cond[1] ~= "pchain" do n = n.t end
      return n
   end
   nodes = order(entry)
   for i = #nodes, 1, -1 do
      local n = nodes[i]
      n.t, n.f = skip(n.t), skip(n.f)
   end
   -- libpcap never drops its first test's loads (opt_j moves edges, and the root has none;
   -- opt_root keeps the statements of the tests it skips): before the bounds tests exist, the
   -- entry stays.
   if mode == weak then return entry end
   return skip(entry)
end

-- libpcap's or_pullup and and_pullup (optimize.c), which its optimizer applies to every
-- expression, so they decide which loads a packet cut short reaches: in a chain of tests that
-- all go to one place when true (or), a later test of the value just compared moves up before
-- the tests of other values (`host a or host b` compares the source with a, then with b, then
-- loads the destination). The same on the false side (and). Levels, ways in and dominators are
-- computed once per pass, as libpcap does.
local function pullups(levels, maxlevel, dom)
   -- find_inedges: from the root level down, each edge put first in its child's list.
   local inedges = {}
   for l = maxlevel, 1, -1 do
      for _, b in ipairs(levels[l]) do
         for _, br in ipairs({"t", "f"}) do
            local c = b[br]
            if c.term == nil then
               inedges[c] = inedges[c] or {}
               table.insert(inedges[c], 1, {b, br})
            end
         end
      end
   end
   local changed = false
   local function pullup(b, same, other)
      -- same: the branch the chain follows ("f" for or); other: where all its tests go.
      local ins = inedges[b]
      if not ins then return end
      local val = aval(ins[1][1])
      for i = 2, #ins do
         if aval(ins[i][1]) ~= val then return end
      end
      local diff_n, diff_br = ins[1][1], ins[1][2]
      local at_top = true
      while true do
         local d = diff_n[diff_br]
         if d.term ~= nil or d[other] ~= b[other] or not (dom[d] and dom[d][b]) then return end
         if aval(d) ~= val then break end
         diff_n, diff_br = d, same
         at_top = false
      end
      local diff = diff_n[diff_br]
      local same_n = diff
      while true do
         local sm = same_n[same]
         if sm.term ~= nil or sm[other] ~= b[other] or not (dom[sm] and dom[sm][b]) then
            return
         end
         if aval(sm) == val then break end
         same_n = sm
      end
      local pull = same_n[same]
      same_n[same] = pull[same]
      pull[same] = diff
      if at_top then
         for _, e in ipairs(ins) do e[1][e[2]] = pull end
      else
         diff_n[diff_br] = pull
      end
      changed = true
   end
   for l = 1, maxlevel do
      for _, b in ipairs(levels[l]) do
         pullup(b, "f", "t")
         pullup(b, "t", "f")
      end
   end
   return changed
end

-- One pass of libpcap's optimizer over the jumps (opt_loop with do_stmts 0): levels,
-- dominators and dominating edges of the graph as it stands, then opt_j on every edge from the
-- lowest level up, then the pullups. Returns whether anything moved.
local function libpcap_pass(entry)
   local level, levels, maxlevel, seen = {}, {}, 0, {}
   local function visit(n)
      if n.term ~= nil then level[n] = 0; return end
      if seen[n] then return end
      seen[n] = true
      visit(n.t)
      visit(n.f)
      local l = math.max(level[n.t], level[n.f]) + 1
      level[n] = l
      levels[l] = levels[l] or {}
      table.insert(levels[l], 1, n)
      if l > maxlevel then maxlevel = l end
   end
   visit(entry)
   -- Dominators of nodes, and the edges that dominate each edge (with their facts).
   local dom, edom, nedom = {[entry] = {[entry] = true}}, {}, {[entry] = {}}
   for _, n in ipairs(order(entry)) do
      n.edges = n.edges or {t = {}, f = {}}
      for _, br in ipairs({"t", "f"}) do
         local e = weak.learn(nedom[n], n.cond, br == "t", n.edges[br])
         edom[n.edges[br]] = e
         local c = n[br]
         if c.term == nil then
            nedom[c] = weak.meet(nedom[c], e)
            if dom[c] == nil then
               local nd = {[c] = true}
               for x in pairs(dom[n]) do nd[x] = true end
               dom[c] = nd
            else
               for x in pairs(dom[c]) do
                  if x ~= c and not dom[n][x] then dom[c][x] = nil end
               end
            end
         end
      end
   end
   local changed = false
   for l = 1, maxlevel do
      for _, p in ipairs(levels[l]) do
         for _, br in ipairs({"t", "f"}) do
            local succ = p[br]
            if succ.term == nil and succ.t == succ.f then succ = succ.t end
            local facts = edom[p.edges[br]]
            while succ.term == nil do
               local d = weak.decide(facts, succ.cond)
               if d == nil then break end
               succ = d and succ.t or succ.f
            end
            if succ ~= p[br] then p[br], changed = succ, true end
         end
      end
   end
   if pullups(levels, maxlevel, dom) then changed = true end
   return changed
end

-- The whole middle: tree -> simplified graph (its entry node), or nil, a message and a column.
function M.graph(tree)
   local entry = build(tree, ACCEPT, REJECT)
   if tree.unoptimized then
      -- libpcap runs such a program as written: only bounds tests are raised and merged.
      if entry.term ~= nil then return entry end
      add_guards(order(entry))
      entry = hoist(entry)
      for _ = 1, 3 do
         if entry.term ~= nil then break end
         entry = thread(entry)
      end
      return entry
   end
   -- As libpcap's optimizer leaves it (its pullups decide which loads a short packet meets)...
   for _ = 1, 100 do
      if entry.term ~= nil or not libpcap_pass(entry) then break end
   end
   -- Errors libpcap's optimizer raises while folding constants, in code it keeps.
   local function err(a)
      if a.err then return a.err end
      for i = 2, #a do
         if type(a[i]) == "table" then
            local e = err(a[i])
            if e then return e end
         end
      end
   end
   for _, n in ipairs(order(entry)) do
      local e = err(n.cond)
      if e then return nil, e.message, e.col end
   end
   -- A root block of two numbers compared: opt_j threads its edge past every test whose
   -- ways meet, and their loads go with them.
   if tree.literal_root then
      while entry.term == nil and entry.t == entry.f do entry = entry.t end
   end
   -- libpcap refuses what its optimizer reduces to "reject" (pcap_compile's check, after
   -- opt_root has skipped the tests of constants at the root).
   local root = entry
   while root.term == nil and (root.t == root.f or constant(root.cond) ~= nil) do
      if root.t == root.f then root = root.t
      else root = constant(root.cond) and root.t or root.f end
   end
   if root == REJECT then return nil, "expression rejects all packets" end
   -- A root that ends in a return runs none of the skipped tests' loads (opt_root).
   if root.term ~= nil then return root end
   -- ...then each test with the bounds tests of its loads, raised and merged.
   add_guards(order(entry))
   entry = hoist(entry)
   for _ = 1, 3 do
      if entry.term ~= nil then break end
      entry = thread(entry)
   end
   return entry
end

function M.selftest()
   print("selftest: lib.pf.optimize")
   local function ld(size, off) return {"ld", size, nil, off} end
   local function eq(a, v) return {"cmp", "==", a, {"k", v}} end
   local ip = eq(ld(2, 12), 0x800)
   local tcp = {"and", ip, eq(ld(1, 23), 6)}
   -- ip and tcp: the ethertype is tested once, one bounds test covers both loads.
   local g = M.graph({"and", ip, tcp})
   local nodes = order(g)
   assert(#nodes == 3, #nodes)
   assert(nodes[1].cond[1] == "caplen" and nodes[1].cond[3] == 24)
   -- not (ip and tcp): no bounds test may be hoisted past the way out of the "not".
   g = M.graph({"not", {"and", ip, tcp}})
   assert(order(g)[1].cond[1] == "caplen" and order(g)[1].cond[3] == 14)
   -- A contradiction rejects everything.
   local _, err = M.graph({"and", ip, eq(ld(2, 12), 0x86dd)})
   assert(err == "expression rejects all packets")
   print("selftest: ok")
end

return M
