-- A small pool and an app that keeps every packet it makes: allocation fails in that app.
packet.set_max_packets(4000)
local Hoarder = {}
function Hoarder:new () return setmetatable({kept = {}}, {__index = Hoarder}) end
function Hoarder:pull ()
   for _ = 1, 100 do table.insert(self.kept, packet.allocate()) end
end
local c = config.new()
config.app(c, "hoarder", Hoarder)
engine.configure(c)
engine.restart_delay = 10
-- Until the hoarder has failed (40-100 ms; a fixed 0.2 s was too short on a loaded machine).
local start = engine.now()
engine.main({done = function ()
   return engine.app_stats()[1].errors > 0 or engine.now() - start > 10
end})
