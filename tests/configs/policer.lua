-- A network function with a known limit (tests/find_limit_test.sh): it forwards at most RATE
-- packets per second (the config's first argument, default 100000) and frees the rest. Its
-- tokens accrue from when the bench source started (its schedule's origin: a stall between the
-- source's first pull and the policer's first push cost 113 packets at 82% of RATE), one to start
-- with, and at most half a second of them are kept: more than the 250 ms that the source catches
-- up after a stall (the process, source and policer alike, was descheduled). So a rate under RATE
-- loses nothing however the host schedules the process, and one above it loses (rate - RATE) a
-- second from the start.
local rate = tonumber((...)) or 100000
local Policer = {inputs = {"input"}, outputs = {"output"}}
function Policer:new () return setmetatable({tokens = 1}, {__index = Policer}) end
function Policer:push ()
   local i, o = self.input.input, self.output.output
   local now = engine.now()
   local source = engine.app_table.bench_source
   self.last = self.last or source and source.started or now
   self.tokens = math.min(self.tokens + (now - self.last) * rate, 0.5 * rate)
   self.last = now
   for _ = 1, link.nreadable(i) do
      local p = link.receive(i)
      if self.tokens >= 1 then
         self.tokens = self.tokens - 1
         link.transmit(o, p)
      else
         packet.free(p)
      end
   end
end
local c = config.new()
config.app(c, "policer", Policer)
return c
