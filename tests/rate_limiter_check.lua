-- snabb tests/rate_limiter_check.lua CAPTURE DIR: apps.rate_limiter's RateLimiter on a real capture
-- replayed at a known rate on a controlled clock (engine.now stubbed: each push is 1/64 s after
-- the previous, so the test is exact, not timed). The capture's frames are offered in order, over
-- and over, 24 a push; the offered and the passed frames are written to DIR as pcap files and read
-- back with tshark. Checks, for a byte rate and for a packet rate:
--  - tshark reads the passed file as the counters say (txpackets frames, txbytes bytes), and its
--    frames are the offered ones in order less the dropped (txdrop, txdropbytes);
--  - the token bucket's bounds: with an offered load above the rate at every push (each drops) and
--    a capacity that never clips (at least the largest frame plus a push's refill), what passed in
--    T seconds is initial + rate * T less what the bucket holds at the end, which is under one
--    frame's worth (the largest frame; for packets, under one packet): exact to that.
local ffi = require("ffi")
local pcap_records = dofile(arg[0]:gsub("[^/]*$", "") .. "pcap_records.lua") -- beside this script
local engine = require("core.engine")
local config = require("core.config")
local link = require("core.link")
local packet = require("core.packet")
local counter = require("core.counter")
local basic = require("apps.basic.basic_apps")
local rl = require("apps.rate_limiter.rate_limiter")

local capture, dir = ...
assert(capture and dir, "usage: rate_limiter_check.lua CAPTURE DIR")

local function check (ok, fmt, ...)
   if not ok then error("FAIL: " .. fmt:format(...), 0) end
end

-- The capture's frames as strings.
local function read_pcap (path)
   local frames = {}
   for i, r in ipairs(pcap_records(path)) do frames[i] = r.data end
   return frames
end

local function le32 (n)
   return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256,
                      math.floor(n / 16777216) % 256)
end

-- Writes frames (strings) as an Ethernet pcap, frame i at i ms.
local function write_pcap (path, frames)
   local f = assert(io.open(path, "wb"))
   f:write(le32(0xa1b2c3d4), "\2\0\4\0", le32(0), le32(0), le32(65535), le32(1))
   for i, frame in ipairs(frames) do
      f:write(le32(math.floor(i / 1000)), le32(i % 1000 * 1000), le32(#frame), le32(#frame), frame)
   end
   f:close()
end

-- tshark's reading of a pcap: the frames' lengths and MD5 hashes.
local function tshark (path)
   local cmd = ("HOME=%s tshark -r %s -o frame.generate_md5_hash:TRUE -T fields -e frame.len "
                .. "-e frame.md5_hash 2>&1"):format(dir, path)
   local p = assert(io.popen(cmd))
   local lens, hashes = {}, {}
   for line in p:lines() do
      local len, hash = line:match("^(%d+)\t(%x+)$")
      if len then
         lens[#lens + 1], hashes[#hashes + 1] = tonumber(len), hash
      elseif not line:match("^Running as user") then
         error("tshark on " .. path .. ": " .. line, 0)
      end
   end
   p:close()
   return lens, hashes
end

local frames = read_pcap(capture)
local largest = 0
local total = 0
for _, f in ipairs(frames) do largest, total = math.max(largest, #f), total + #f end
local dt, per_push, pushes = 1 / 64, 24, 641 -- 10 s of virtual time
local offered_Bps = total / #frames * per_push / dt
local offered_pps = per_push / dt

local real_now = engine.now
local clock = 0
engine.now = function () return clock end

local function run (name, conf)
   local c = config.new()
   config.app(c, "from", basic.Sink)
   config.app(c, "rl", rl.RateLimiter, conf)
   config.app(c, "to", basic.Sink)
   config.link(c, "from.output -> rl.input")
   config.link(c, "rl.output -> to.input")
   engine.configure(c)
   local app = engine.app_table.rl
   local i = engine.link_table["from.output -> rl.input"]
   local o = engine.link_table["rl.output -> to.input"]
   local offered, passed, n = {}, {}, 0
   clock = 0
   for _ = 1, pushes do
      local before = counter.read(app.shm.txdrop)
      for _ = 1, per_push do
         n = n % #frames + 1
         local f = frames[n]
         local p = packet.allocate()
         ffi.copy(packet.data(p), f, #f)
         p.length = #f
         link.transmit(i, p)
         offered[#offered + 1] = f
      end
      app:push()
      check(counter.read(app.shm.txdrop) > before, "%s: a push at %g s dropped nothing", name, clock)
      while not link.empty(o) do
         local p = link.receive(o)
         passed[#passed + 1] = ffi.string(packet.data(p), p.length)
         packet.free(p)
      end
      clock = clock + dt
   end
   local s = app.shm
   local r = {tx = tonumber(counter.read(s.txpackets)), txbytes = tonumber(counter.read(s.txbytes)),
              drop = tonumber(counter.read(s.txdrop)), dropbytes = tonumber(counter.read(s.txdropbytes)),
              T = (pushes - 1) * dt}
   engine.configure(config.new())
   local offered_file, passed_file = dir .. "/" .. name .. "-offered.pcap", dir .. "/" .. name .. "-passed.pcap"
   write_pcap(offered_file, offered)
   write_pcap(passed_file, passed)
   -- tshark's reading of both files against the counters.
   local in_lens, in_hashes = tshark(offered_file)
   local out_lens, out_hashes = tshark(passed_file)
   local in_bytes, out_bytes = 0, 0
   for _, l in ipairs(in_lens) do in_bytes = in_bytes + l end
   for _, l in ipairs(out_lens) do out_bytes = out_bytes + l end
   check(#in_lens == #offered, "%s: tshark reads %d offered frames of %d", name, #in_lens, #offered)
   check(#out_lens == r.tx and out_bytes == r.txbytes,
         "%s: tshark reads %d frames, %d bytes passed; counters txpackets %d, txbytes %d",
         name, #out_lens, out_bytes, r.tx, r.txbytes)
   check(#in_lens - #out_lens == r.drop and in_bytes - out_bytes == r.dropbytes,
         "%s: %d frames, %d bytes dropped per tshark; counters txdrop %d, txdropbytes %d",
         name, #in_lens - #out_lens, in_bytes - out_bytes, r.drop, r.dropbytes)
   local k = 1 -- passed frames are offered frames, in order
   for _, h in ipairs(in_hashes) do
      if out_hashes[k] == h then k = k + 1 end
   end
   check(k == #out_hashes + 1, "%s: passed frame %d is not among the offered in order", name, k)
   print(("%s: %d frames (%d bytes) offered in %g s, %d frames (%d bytes) passed, %d dropped"):format(
      name, #in_lens, in_bytes, r.T, r.tx, r.txbytes, r.drop))
   return r
end

-- Bytes: a quarter of the offered byte rate (a whole number of bytes/s).
local rate = math.floor(offered_Bps / 4)
local capacity = largest + rate * dt
local initial = largest
local r = run("bytes", {rate = rate, bucket_capacity = capacity, initial_capacity = initial})
local ceiling = initial + rate * r.T
check(r.txbytes <= ceiling and r.txbytes > ceiling - largest,
      "bytes: %d passed, the token bucket allows (%d, %d]", r.txbytes, ceiling - largest, ceiling)
print(("bytes: rate %d bytes/s, capacity %g: %d passed of the bucket's (%d, %d]; %.4f of the rate"):format(
   rate, capacity, r.txbytes, ceiling - largest, ceiling, (r.txbytes - initial) / r.T / rate))

-- Packets: a third of the offered packet rate, 1/64 s of refill a push (8 packets).
local pps = offered_pps / 3
r = run("packets", {pps = pps, packet_capacity = 1 + pps * dt, initial_packets = 2})
local allowed = 2 + pps * r.T
check(r.tx <= allowed and r.tx > allowed - 1,
      "packets: %d passed, the token bucket allows (%g, %g]", r.tx, allowed - 1, allowed)
print(("packets: %g pps: %d passed of the bucket's (%g, %g]"):format(pps, r.tx, allowed - 1, allowed))

engine.now = real_now
