-- A script (snabb FILE.lua; tests/run_test.sh, also under valgrind): a reconfiguration whose new
-- app's link() raises, while the link of the running graph is removed. The engine must run the new
-- graph without that app (never the old one, on the freed link), restart the app once link()
-- works, and every counter must add up.
local basic = require("apps.basic.basic_apps")

-- Forwards input to output; link() refuses the first two times (the configure, the first restart).
-- (Snabb calls link(direction, port) once per port: output first, so a refusal ends the attempt.)
local Picky = {}
local link_calls = 0
function Picky:new () return setmetatable({}, {__index = Picky}) end
function Picky:link ()
   link_calls = link_calls + 1
   if link_calls <= 2 then error("link refused") end
end
function Picky:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, math.min(link.nreadable(i), link.nwritable(o)) do link.transmit(o, link.receive(i)) end
end

local log = {}
engine.log = function (msg) log[#log+1] = msg end
engine.restart_on_error = true -- (a script's default is Snabb's: an app's error ends the run)
engine.restart_delay = 0.05

local old = config.new()
config.app(old, "source", basic.Source)
config.app(old, "sink", basic.Sink)
config.link(old, "source.output -> sink.input")
engine.configure(old)
engine.main({duration = 0.05})
local old_link = link.stats(engine.link_table["source.output -> sink.input"])
local old_rx = tonumber(old_link.rxpackets)
assert(old_rx > 0, "the first graph moved no packets")

local new = config.new()
config.app(new, "source2", basic.Source)
config.app(new, "picky", Picky)
config.app(new, "sink", basic.Sink)
config.app(new, "source3", basic.Source)
config.app(new, "sink3", basic.Sink)
config.link(new, "source2.output -> picky.input")
config.link(new, "picky.output -> sink.input")
config.link(new, "source3.output -> sink3.input")
local ok, err = pcall(engine.configure, new)
assert(not ok and err:match("^app 'picky': link failed: .*link_failure%.lua:14: link refused"), err)
assert(not err:match("engine%.lua"), "a traceback of the engine's own frames: " .. err)
assert(engine.link_table["source.output -> sink.input"] == nil, "the removed link is gone")
-- (1.5 s: under valgrind on a loaded host the two restarts took up to 0.5 s)
engine.main({duration = 1.5})

local text = table.concat(log, "\n")
assert(text:match("app 'picky' could not be restarted: app 'picky': link failed: .*link refused"), text)
assert(text:match("app 'picky' restarted"), text)
assert(link_calls == 4, "link() calls: " .. link_calls) -- refused twice, then output and input
local apps, links = {}, {}
for _, a in ipairs(engine.app_stats()) do apps[a.name] = a end
for _, l in ipairs(engine.link_stats()) do
   assert(l.txpackets == l.rxpackets + l.queued + l.txdrop, "unbalanced: " .. l.link)
   assert(l.txdrop == 0 and l.rxpackets > 0, "drops or no packets: " .. l.link)
   links[l.link] = l
end
assert(apps.picky.errors == 2, "picky's errors: " .. apps.picky.errors)
assert(apps.sink3.packets_in == links["source3.output -> sink3.input"].rxpackets)
assert(apps.picky.packets_out == links["picky.output -> sink.input"].txpackets)
-- The sink received what the old link and the new one delivered to it, and nothing else.
assert(apps.sink.packets_in == old_rx + links["picky.output -> sink.input"].rxpackets,
       ("sink: %d in, links: %d + %d"):format(apps.sink.packets_in, old_rx,
                                            links["picky.output -> sink.input"].rxpackets))
engine.stop()
print("link_failure ok")
