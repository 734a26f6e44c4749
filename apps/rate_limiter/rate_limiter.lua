-- apps.rate_limiter.rate_limiter: RateLimiter (Snabb's name and config), a token bucket that lets
-- through from `input` to `output` only what conforms to a rate and drops the rest, counted. A
-- byte bucket (rate in bytes/s, bucket_capacity bytes) as Snabb's, and a packet bucket (pps in
-- packets/s, packet_capacity packets) of ours: either or both (a packet passes when each
-- configured bucket holds its tokens, and takes from each). Buckets fill at each push by rate
-- times the engine time (engine.now) since the previous push, up to their capacity; the first
-- push starts the clock.
local engine = require("core.engine")
local link = require("core.link")
local packet = require("core.packet")
local counter = require("core.counter")

local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local free = packet.free
local min, huge = math.min, math.huge

local M = {}

local function positive (unit)
   return {type = "number", min = 0, unit = unit}
end

local RateLimiter = {
   config = {
      rate = positive("bytes/s"),
      bucket_capacity = positive("bytes"),
      initial_capacity = positive("bytes"),
      pps = positive("packets/s"),
      packet_capacity = positive("packets"),
      initial_packets = positive("packets"),
   },
   inputs = {"input"},
   outputs = {"output"},
}
M.RateLimiter = RateLimiter

-- A bucket's rate, capacity and initial content from its three parameters (the byte bucket's or
-- the packet bucket's); an unconfigured bucket is unlimited (always full, never empty).
local function bucket (conf, rate, capacity, initial, what)
   local r, c, i = conf[rate], conf[capacity], conf[initial]
   if r == nil and c == nil and i == nil then return 0, huge, huge end
   if r == nil or c == nil then
      error(("%s needs both '%s' and '%s'"):format(what, rate, capacity), 0)
   end
   if c <= 0 then error(("'%s' must be > 0 %s"):format(capacity, what), 0) end
   if i ~= nil and i > c then
      error(("'%s' (%s) must not exceed '%s' (%s)"):format(initial, i, capacity, c), 0)
   end
   return r, c, i or c
end

function RateLimiter:new (conf)
   local o = setmetatable({shm = {txpackets = {counter}, txbytes = {counter},
                                  txdrop = {counter}, txdropbytes = {counter}}},
                          {__index = RateLimiter})
   if conf.rate == nil and conf.bucket_capacity == nil and conf.pps == nil
      and conf.packet_capacity == nil then
      error("give 'rate' and 'bucket_capacity' (bytes/s, bytes), or 'pps' and 'packet_capacity' "
            .. "(packets/s, packets), or both", 0)
   end
   o.rate, o.bucket_capacity, o.bucket_content =
      bucket(conf, "rate", "bucket_capacity", "initial_capacity", "a byte rate")
   o.pps, o.packet_capacity, o.packet_content =
      bucket(conf, "pps", "packet_capacity", "initial_packets", "a packet rate")
   return o
end

-- Snabb's reset: new byte rate and capacity, the bucket filled to initial_capacity (default
-- full); the packet bucket is left as it is.
function RateLimiter:reset (rate, bucket_capacity, initial_capacity)
   assert(rate and bucket_capacity, "reset(rate, bucket_capacity[, initial_capacity])")
   self.rate, self.bucket_capacity = rate, bucket_capacity
   self.bucket_content = initial_capacity or bucket_capacity
end

function RateLimiter:push ()
   local i, o = self.input.input, self.output.output
   local t = engine.now()
   local elapsed = t - (self.last_time or t)
   self.last_time = t
   local bytes = min(self.bucket_content + self.rate * elapsed, self.bucket_capacity)
   local packets = min(self.packet_content + self.pps * elapsed, self.packet_capacity)
   local txpackets, txbytes, drops, dropbytes = 0, 0, 0, 0
   for _ = 1, nreadable(i) do
      local p = receive(i)
      local length = p.length
      if length <= bytes and packets >= 1 then
         bytes, packets = bytes - length, packets - 1
         txpackets, txbytes = txpackets + 1, txbytes + length
         transmit(o, p)
      else
         drops, dropbytes = drops + 1, dropbytes + length
         free(p)
      end
   end
   self.bucket_content, self.packet_content = bytes, packets
   local shm = self.shm
   counter.add(shm.txpackets, txpackets)
   counter.add(shm.txbytes, txbytes)
   counter.add(shm.txdrop, drops)
   counter.add(shm.txdropbytes, dropbytes)
end

-- Self-test: synthetic packets on a stubbed clock (the real captures and tshark:
-- tests/rate_limiter_test.sh). The bounds are the token bucket's (apps/rate_limiter/README.md).
function M.selftest ()
   print("selftest: apps.rate_limiter.rate_limiter")
   local config = require("core.config")
   local basic = require("apps.basic.basic_apps")
   local real_now = engine.now
   local clock = 0
   engine.now = function () return clock end
   local function run (conf, sizes, per_push, pushes, dt)
      local c = config.new()
      config.app(c, "from", basic.Sink)
      config.app(c, "rl", RateLimiter, conf)
      config.app(c, "to", basic.Sink)
      config.link(c, "from.output -> rl.input")
      config.link(c, "rl.output -> to.input")
      engine.configure(c)
      local rl = engine.app_table.rl
      local i, o = engine.link_table["from.output -> rl.input"], engine.link_table["rl.output -> to.input"]
      local offered, offered_bytes, n = 0, 0, 0
      for _ = 1, pushes do
         for _ = 1, per_push do
            n = n % #sizes + 1
            transmit(i, packet.resize(packet.allocate(), sizes[n]))
            offered, offered_bytes = offered + 1, offered_bytes + sizes[n]
         end
         rl:push()
         while not link.empty(o) do free(receive(o)) end
         clock = clock + dt
      end
      local s = rl.shm
      local r = {tx = tonumber(counter.read(s.txpackets)), txbytes = tonumber(counter.read(s.txbytes)),
                 drop = tonumber(counter.read(s.txdrop)), dropbytes = tonumber(counter.read(s.txdropbytes)),
                 T = (pushes - 1) * dt}
      assert(r.tx + r.drop == offered and r.txbytes + r.dropbytes == offered_bytes,
             "counters do not add up")
      engine.configure(config.new())
      return r
   end
   local sizes = {60, 1514, 590, 128, 1000}
   -- Bytes: 100 kB/s for 10 s (dt 1/64 s: 1,562.5 bytes a push), 20 packets offered a push
   -- (6,584 bytes), capacity 1514 + 1562.5 so the bucket never clips: initial + rate * T less
   -- what was left (under the largest packet, 1514) passed.
   local r = run({rate = 100000, bucket_capacity = 3077, initial_capacity = 0}, sizes, 20, 641, 1/64)
   local ceiling = 100000 * r.T
   assert(r.txbytes <= ceiling and r.txbytes > ceiling - 1514,
          ("bytes: %d passed in %g s at 100,000 bytes/s"):format(r.txbytes, r.T))
   -- Packets: 1,000 pps, 20 offered every 1/64 s (1,280 pps), capacity 20 >= 1 + 15.625: exactly
   -- initial + floor(pps * T).
   r = run({pps = 1000, packet_capacity = 20, initial_packets = 5}, sizes, 20, 641, 1/64)
   assert(r.tx == 5 + 1000 * 10, ("packets: %d passed, expected 10,005"):format(r.tx))
   -- Both: the tighter one decides (60-byte packets only: 1,000 pps is 60,000 bytes/s < 100,000).
   r = run({rate = 100000, bucket_capacity = 3077, pps = 1000, packet_capacity = 20,
            initial_capacity = 0, initial_packets = 0}, {60}, 20, 641, 1/64)
   assert(r.tx == 10000, ("both: %d passed, expected 10,000"):format(r.tx))
   -- Configuration errors.
   for _, bad in ipairs({{{}, "give 'rate'"}, {{rate = 1}, "needs both 'rate' and 'bucket_capacity'"},
                         {{pps = 1, packet_capacity = 0}, "'packet_capacity' must be > 0"},
                         {{rate = 1, bucket_capacity = 2, initial_capacity = 3}, "must not exceed"}}) do
      local ok, err = pcall(RateLimiter.new, RateLimiter, bad[1])
      assert(not ok and err:find(bad[2], 1, true), tostring(err))
   end
   engine.now = real_now
   print("selftest: ok")
end

return M
