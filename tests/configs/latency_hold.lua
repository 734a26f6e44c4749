-- snabb bench tests/configs/latency_hold.lua MICROSECONDS: one app, `hold`, that keeps each packet
-- for MICROSECONDS of TSC time (0: forwards it at once) before sending it on, in order. The latency
-- bench reports must then be at least that (tests/latency_test.sh).
local ffi = require("ffi")
local C = ffi.C
local microseconds = assert(tonumber((...)), "usage: latency_hold.lua MICROSECONDS")
local SIZE = 65536 -- packets held at most (more are dropped)

local Hold = {inputs = {"input"}, outputs = {"output"}}

function Hold:new ()
   return setmetatable({packets = ffi.new("struct packet *[?]", SIZE), due = ffi.new("double[?]", SIZE),
                        head = 0, tail = 0, cycles = microseconds * 1e-6 * C.snabb_tsc_hz()},
                       {__index = Hold})
end

-- Takes what arrives, stamped with when it may leave.
function Hold:push ()
   local i, due = self.input.input, tonumber(C.snabb_rdtsc()) + self.cycles
   for _ = 1, link.nreadable(i) do
      local p = link.receive(i)
      if self.tail - self.head == SIZE then
         packet.free(p)
      else
         self.packets[self.tail % SIZE], self.due[self.tail % SIZE] = p, due
         self.tail = self.tail + 1
      end
   end
   self:pull()
end

-- Sends what is due.
function Hold:pull ()
   local o, now = self.output.output, tonumber(C.snabb_rdtsc())
   while self.head < self.tail and self.due[self.head % SIZE] <= now and not link.full(o) do
      link.transmit(o, self.packets[self.head % SIZE])
      self.head = self.head + 1
   end
end

local c = config.new()
config.app(c, "hold", Hold)
return c
