-- A small pool and an app that keeps every packet it makes: allocation fails in that app, and the
-- run stops with a message (it would stop there long before the duration).
packet.set_max_packets(4000)
local Hoarder = {}
function Hoarder:new () return setmetatable({kept = {}}, {__index = Hoarder}) end
function Hoarder:pull ()
   for _ = 1, 5000 do table.insert(self.kept, packet.allocate()) end -- more than the pool: fails in the first pull
end
local c = config.new()
config.app(c, "hoarder", Hoarder)
engine.configure(c)
engine.restart_delay = 10
engine.main({duration = 60})
