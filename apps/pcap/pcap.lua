-- apps.pcap.pcap: capture files in and out of a graph.
--   PcapReader: the records of a pcap/pcapng file, once, with their capture timestamps.
--   PcapWriter: every packet it receives into a pcap file (flushed every second and on stop).
--   Replay:     a capture loaded once and sent over and over, optionally at a given rate.
-- The file work is C++ behind apps/pcap/pcap_file.h (reading through libpcap); a malformed capture
-- is refused when the app starts, with one message naming the file and the record.
local ffi = require("ffi")
require("core.cdefs")
require("apps.pcap.cdefs")
local packet = require("core.packet")
local link = require("core.link")
local engine = require("core.engine")
local lib = require("core.lib")
local latency = require("apps.basic.latency")
local wire_bits = require("lib.ethernet").wire_bits
local C = ffi.C

-- libc's clock_gettime under a name of ours (an asm label): FFI libraries declare it with their
-- own struct timespec (ljsyscall does), and the first declaration of a name wins in LuaJIT.
ffi.cdef[[
struct snabb_timespec { long tv_sec; long tv_nsec; };
int snabb_clock_gettime(int clock, struct snabb_timespec *ts) __asm__("clock_gettime");
]]

local receive, transmit = link.receive, link.transmit
local nreadable, nwritable = link.nreadable, link.nwritable
local clone, free = packet.clone, packet.free
-- How far down the free list Replay prefetches in a worker of a group (packet.prefetch_ahead):
-- through examples/pipeline.lua's two workers, 2 ahead 29.1 Mpps, 4 33.8, 16 36.9, 32 37.6 (none
-- 24.2); 16 keeps the lines it takes from other caches few. A constant in the loop's trace: as a
-- field's value the distance was reloaded from the stack each packet (two workers, 5 alternating
-- rounds, median 151.4 -> 153.0 Mpps).
local prefetch_ahead, PREFETCH_AHEAD = packet.prefetch_ahead, 16
local rdtsc, stamp_check, stamp_packet = latency.rdtsc, latency.check, latency.stamp
local min = math.min

local M = {}

local CLOCK_REALTIME = 0
local timespec = ffi.new("struct snabb_timespec")

local function wall_clock_ns ()
   C.snabb_clock_gettime(CLOCK_REALTIME, timespec)
   return ffi.cast("uint64_t", timespec.tv_sec) * 1000000000ULL + timespec.tv_nsec
end

-- Every app takes its file alone (Snabb's style: PcapReader("in.pcap")) or as {file = ...}.
local FILE = {required = true, type = "string", allows = "a file name", positional = true}

local function open_reader (file)
   local r = C.snabb_pcap_reader_open(file)
   if r == nil then lib.c_error(nil, 0) end
   return ffi.gc(r, C.snabb_pcap_reader_close)
end

local function close_reader (r)
   C.snabb_pcap_reader_close(ffi.gc(r, nil))
end

-- Why `file` cannot be replayed (a message naming it), or nil when it can: for a program to refuse
-- it before it builds a graph (Replay's new says the same).
function M.check_capture (file)
   local ok, reader = pcall(open_reader, file)
   if not ok then return reader end
   local records = C.snabb_pcap_reader_records(reader)
   close_reader(reader)
   if records == 0 then return ("%s: no packets to replay"):format(file) end
end

-- Parses a rate: a number (Mpps) or a string such as "5Mpps", "250kpps", "10Gbps", "100Mbit/s".
-- Returns the rate and its unit, "pps" or "bps" (bits on the wire, lib.ethernet).
function M.parse_rate (rate)
   if type(rate) == "number" then
      if rate > 0 and rate < math.huge then return rate * 1e6, "pps" end
   elseif type(rate) == "string" then
      local value, unit = rate:lower():gsub("%s", ""):match("^([%d.e+]+)(%a[%a/]*)$")
      value = tonumber(value)
      local scale = ({pps = {1, "pps"}, kpps = {1e3, "pps"}, mpps = {1e6, "pps"},
                      bps = {1, "bps"}, kbps = {1e3, "bps"}, mbps = {1e6, "bps"}, gbps = {1e9, "bps"},
                      ["bit/s"] = {1, "bps"}, ["kbit/s"] = {1e3, "bps"}, ["mbit/s"] = {1e6, "bps"},
                      ["gbit/s"] = {1e9, "bps"}})[unit or ""]
      if value and value > 0 and value < math.huge and scale then return value * scale[1], scale[2] end
   end
   error(("rate: expected a number of Mpps or a string like \"5Mpps\" or \"10Gbps\", got %s")
      :format(tostring(rate)), 0)
end

-- PcapReader: sends the file's records once, then sets self.done. Argument: a file name, or
-- {file = ...}. (The engine checks arguments against `config`, see core.lib.parse.)
local PcapReader = {config = {file = FILE}}
M.PcapReader = PcapReader

function PcapReader:new (conf)
   local file = conf.file
   local reader = open_reader(file)
   return setmetatable({reader = reader, file = file, done = false, records = 0},
                       {__index = PcapReader})
end

function PcapReader:pull ()
   local o = self.output.output or self.output[1] -- (a port of any name, as in Snabb)
   if self.done or not o then return end
   local reader = self.reader
   for _ = 1, min(engine.pull_burst, nwritable(o)) do
      local p = packet.allocate()
      local rc = C.snabb_pcap_reader_next(reader, p)
      if rc ~= 1 then
         free(p)
         self.done = true
         -- The file was checked at start, so only a file changed since then gets here.
         if rc < 0 then lib.c_error(nil, 0) end
         return
      end
      transmit(o, p)
      self.records = self.records + 1
   end
end

function PcapReader:stop ()
   close_reader(self.reader)
end

-- PcapWriter: writes what arrives on its input. Argument: a file name, or {file = ..., nanosecond =
-- true} for nanosecond timestamps (default: microseconds, as tcpdump writes). Packets carry their
-- capture timestamp when they have one (from PcapReader); others are stamped when written.
-- A process's first PcapWriter on a file starts it afresh; a later one on the same file (the
-- engine restarting a writer whose write failed, a reconfiguration) adds to it, so that what was
-- captured is never lost.
local PcapWriter = {config = {file = FILE, nanosecond = {type = "boolean", default = false}}}
M.PcapWriter = PcapWriter
local written_files = {} -- files this process's PcapWriters have started

function PcapWriter:new (conf)
   local append = written_files[conf.file] and 1 or 0
   local w = C.snabb_pcap_writer_open(conf.file, conf.nanosecond and 1 or 0, append)
   if w == nil then lib.c_error(nil, 0) end
   written_files[conf.file] = true
   return setmetatable({writer = w, file = conf.file, written = 0}, {__index = PcapWriter})
end

function PcapWriter:push ()
   local i = self.input.input or self.input[1] -- (a port of any name, as in Snabb)
   if not i then return end
   local w, n = self.writer, nreadable(i)
   local now = wall_clock_ns()
   for _ = 1, n do
      local p = receive(i)
      C.snabb_pcap_writer_write(w, p, now)
      free(p)
   end
   self.written = self.written + n
end

-- Once a second, so a reader of the file sees it grow and little is lost if the process dies. The
-- file only ever gets whole records (pcap_file.h), so it ends at a record boundary whatever happens.
function PcapWriter:tick ()
   local t = engine.now()
   if t < (self.next_flush or 0) then return end
   self.next_flush = t + 1
   if C.snabb_pcap_writer_flush(self.writer) ~= 0 then lib.c_error(nil, 0) end
end

function PcapWriter:stop ()
   local w = self.writer
   self.writer = nil
   if w and C.snabb_pcap_writer_close(w) ~= 0 then lib.c_error(nil, 0) end
end

-- Replay: loads a capture once and sends copies of its records in order, over and over.
-- Parameters: file (required); loops, packets or seconds to stop after (default: never); rate (see
-- parse_rate; default: as fast as the output takes them). Replayed packets carry no capture
-- timestamp (a PcapWriter stamps them as it writes them, as a capture of tcpreplay would).
-- latency = true stamps each packet with the TSC as it is sent, for apps.basic.latency's
-- LatencySink (one TSC read per batch; snabb bench turns it on).
-- self.done turns true when a limit is reached; self.sent counts packets sent; self.memory is the
-- bytes the loaded capture takes.
local Replay = {config = {file = FILE, loops = {integer = true, min = 0}, packets = {integer = true, min = 0},
                          seconds = {type = "number", min = 0, unit = "seconds"},
                          latency = {type = "boolean", default = false},
                          rate = {check = function (v) return pcall(M.parse_rate, v) and v or nil end,
                                  allows = "a number > 0 of Mpps or a rate with its unit (e.g. "
                                     .. "\"500kpps\", \"10Gbps\")"}}}
M.Replay = Replay

local packet_array_t = ffi.typeof("struct packet *[?]")
local packet_ptr_t = ffi.typeof("struct packet *")
local double_array_t = ffi.typeof("double[?]")
local bytes_t = ffi.typeof("uint8_t[?]")
-- A record is kept as the image of a packet (its 4-byte header, then its bytes) in one buffer for
-- the whole capture, so that sending it is packet.clone of the image: a 64-byte frame takes 72
-- bytes, not a 10,816-byte packet slot. Images start 8 bytes apart (ALIGN), and the buffer ends
-- with 64 spare bytes because clone copies a small packet as one 64-byte block.
local IMAGE_HEADER, ALIGN, SLACK = 4, 8, 64

-- The records of an open capture as packet images: images (the buffer), templates (a pointer to
-- each image), count.
local function load_images (reader, file)
   local count = tonumber(C.snabb_pcap_reader_records(reader))
   if count == 0 then error(("%s: no packets to replay"):format(file), 0) end
   local size = tonumber(C.snabb_pcap_reader_bytes(reader)) + count * (IMAGE_HEADER + ALIGN - 1) + SLACK
   local images, templates = bytes_t(size), packet_array_t(count)
   local scratch, offset = packet.allocate(), 0
   for k = 0, count - 1 do
      local rc = C.snabb_pcap_reader_next(reader, scratch)
      if rc ~= 1 then -- only for a file changed since it was checked
         free(scratch)
         if rc < 0 then lib.c_error(nil, 0) end
         error(("%s: fewer records than when it was checked"):format(file), 0)
      end
      local t = ffi.cast(packet_ptr_t, images + offset)
      t.length, t.headroom = scratch.length, packet.headroom
      ffi.copy(t.data, scratch.data, scratch.length)
      templates[k] = t
      offset = bit.band(offset + IMAGE_HEADER + scratch.length + ALIGN - 1, -ALIGN)
   end
   free(scratch)
   return images, templates, count, size
end

-- Pacing (with a rate): a clock schedule. Record k of the run is due `position_k / rate` seconds
-- after the first pull, where position_k is what the records before it cost (packets, or their bits
-- on the wire); each pull sends every record that is due by now. A big frame goes out when its
-- time comes (a token bucket sized by the first frame's cost never fitted a later 1514-byte frame
-- below ~12 Mbps on IMIX: 11 packets, then nothing). A process that was descheduled, or a graph
-- that did not take the packets, is behind the schedule: it catches up by sending what is due, but
-- never more than a burst (BURST_SECONDS of the rate, or pull_burst packets if that is more:
-- what one pull sends unthrottled anyway); older debt is given up (self.skipped, in seconds of the
-- schedule) and shows as an achieved rate below the requested one. Measured on a 2-core host with
-- load 4.5 to 11 (other builds and tests): over 10 s, stalls of more than 1 ms between two pulls
-- took 0.7 s (load 4.5) to 5.9 s (load 10), nearly all of 3-10 ms (time slices), the longest 26
-- and 76 ms; in `snabb bench`, the first 200 ms (the JIT compiling the graph's traces, the auditlog
-- recording them) left the schedule up to 140 ms behind, which a 50 ms bound gave up (3-10% of a
-- 2 s run at 100 kpps and 1 Mpps). 250 ms covers them.
local BURST_SECONDS = 0.25

-- Arguments are checked before the capture is loaded (`config`), and what new takes is given back
-- when it fails: the engine retries a failed app every restart_delay, for ever.
function Replay:new (conf)
   local rate, unit
   if conf.rate then rate, unit = M.parse_rate(conf.rate) end
   local reader = open_reader(conf.file)
   local ok, images, templates, count, size = pcall(load_images, reader, conf.file)
   close_reader(reader)
   if not ok then error(images, 0) end
   local capture_bits = 0 -- the whole capture's bits on the wire
   for k = 0, count - 1 do capture_bits = capture_bits + wire_bits(templates[k].length) end
   -- With a rate in bits: what each record costs of it.
   local cost, burst
   if unit == "bps" then
      cost = double_array_t(count)
      for k = 0, count - 1 do cost[k] = wire_bits(templates[k].length) end
      burst = math.max(rate * BURST_SECONDS, engine.pull_burst * capture_bits / count)
   elseif rate then
      burst = math.max(rate * BURST_SECONDS, engine.pull_burst)
   end
   local limit = math.huge
   if conf.loops then limit = min(limit, conf.loops * count) end
   if conf.packets then limit = min(limit, conf.packets) end
   return setmetatable({images = images, templates = templates, cost = cost, count = count,
                        memory = size + ffi.sizeof(templates) + (cost and ffi.sizeof(cost) or 0),
                        index = 0, sent = 0, limit = limit, seconds = conf.seconds,
                        rate = rate, unit = unit, burst = burst, position = 0, skipped = 0,
                        capture_bits = capture_bits, done = limit == 0, file = conf.file,
                        latency = conf.latency,
                        -- In a group of workers, slots come back from other workers' caches.
                        prefetch = (require("core.group").workers() or 1) > 1},
                       {__index = Replay})
end

-- How many of the next n records are due at time t (see BURST_SECONDS). Once `seconds` have
-- passed (ending), what was due before the end still goes (a stall just before the end took its
-- length off the run), for BURST_SECONDS at most from the first pull after the end; then it
-- returns the run's end as well.
function Replay:due (n, t, ending)
   local rate, position, started = self.rate, self.position, self.started
   local owed = ((ending and started + self.seconds - 1e-9 or t) - started) * rate
   if owed - position > self.burst then
      self.skipped = self.skipped + (owed - self.burst - position) / rate
      position = owed - self.burst
   end
   local cost, allowed = self.cost, 0
   if not cost then -- packets: one each
      allowed = math.max(0, min(n, math.floor(owed - position) + 1))
      position = position + allowed
   else
      local index, count = self.index, self.count
      while allowed < n and position <= owed do
         position = position + cost[index]
         allowed = allowed + 1
         index = index + 1
         if index == count then index = 0 end
      end
   end
   self.position = position
   if ending then
      self.ending_since = self.ending_since or t
      if allowed < n or t - self.ending_since >= BURST_SECONDS then return allowed, started + self.seconds end
   end
   return allowed
end

function Replay:pull ()
   local o = self.output.output or self.output[1] -- (a port of any name, as in Snabb)
   if self.done or not o then return end
   local t = engine.now()
   self.started, self.last_pull = self.started or t, t
   local ending = self.seconds and t - self.started >= self.seconds
   if ending and not self.rate then return self:finish(t) end
   local n = min(engine.pull_burst, nwritable(o), self.limit - self.sent)
   local stopped
   if self.rate then n, stopped = self:due(n, t, ending) end
   local templates, count, index = self.templates, self.count, self.index
   local stamp, tsc, check = self.latency, nil, nil
   if stamp then tsc = rdtsc(); check = stamp_check(tsc) end
   local prefetch = self.prefetch
   for _ = 1, n do
      if prefetch then prefetch_ahead(PREFETCH_AHEAD) end
      local p = clone(templates[index])
      if stamp then stamp_packet(p, tsc, check) end
      transmit(o, p)
      index = index + 1
      if index == count then index = 0 end
   end
   self.index = index
   self.sent = self.sent + n
   if stopped then
      self:finish(stopped)
   elseif self.sent >= self.limit then
      -- Paced, the run ends where the schedule does: when the next record would be due.
      self:finish(self.rate and self.started + self.position / self.rate or t)
   end
end

-- Done: `stopped` is when the run ended (see rates). Paced, what was still due then is given up.
function Replay:finish (stopped)
   if self.rate and self.sent < self.limit then
      local owed = (stopped - self.started) * self.rate
      self.skipped = self.skipped + math.max(0, owed - self.position) / self.rate
   end
   self.done, self.stopped = true, stopped
end

-- Bits on the wire of the first `sent` records of the run.
function Replay:wire_bits_sent ()
   local sent, count = self.sent, self.count
   local bits = math.floor(sent / count) * self.capture_bits
   for k = 0, sent % count - 1 do bits = bits + wire_bits(self.templates[k].length) end
   return bits
end

-- The requested and the achieved rate: {requested = {pps, bps, unit} or nil, achieved = {pps, bps},
-- seconds, skipped}. Achieved is what was sent over the run's time: from the first pull to the end
-- (to the last pull, while running). Paced, the run ends where the schedule does: after `seconds`,
-- or when the record after the last would be due; so achieved falls short of requested by the
-- share of the time given up (skipped). bps counts bits on the wire (lib.ethernet). A rate requested
-- in one unit is also given in the other, for this capture's mean frame.
function Replay:rates ()
   local seconds = self.started and (self.stopped or self.last_pull) - self.started or 0
   local bits = self:wire_bits_sent()
   local r = {seconds = seconds, skipped = self.skipped,
              achieved = {pps = seconds > 0 and self.sent / seconds or 0,
                          bps = seconds > 0 and bits / seconds or 0}}
   if self.rate then
      local mean_bits = self.capture_bits / self.count
      r.requested = {unit = self.unit, pps = self.unit == "pps" and self.rate or self.rate / mean_bits,
                     bps = self.unit == "bps" and self.rate or self.rate * mean_bits}
   end
   return r
end

-- For engine.report (snabb run --report): what was sent, and with a rate, requested and achieved.
function Replay:report ()
   local r = self:rates()
   local line = ("%s: sent %s packets in %.2f s: %.4f Mpps, %.4f Gbit/s on the wire"):format(
      self.file, lib.comma_value(self.sent), r.seconds, r.achieved.pps / 1e6, r.achieved.bps / 1e9)
   local req = r.requested
   if req then
      line = line .. ("; requested %s (%.2f%%), %.3f s of the schedule given up"):format(
         req.unit == "pps" and ("%.4f Mpps"):format(req.pps / 1e6) or ("%.4f Gbit/s"):format(req.bps / 1e9),
         100 * r.achieved[req.unit] / req[req.unit], r.skipped)
   end
   print(line)
end

function M.selftest ()
   print("selftest: apps.pcap.pcap")
   local config = require("core.config")
   local basic = require("apps.basic.basic_apps")
   local data = "tests/data/pcap/"
   local out = os.tmpname()
   local function run_until (done)
      engine.main({done = done, duration = 10})
   end
   local function sink_count ()
      return tonumber(link.stats(engine.link_table["replay.output -> sink.input"]).rxpackets)
   end

   -- Reader -> Writer: every record, then read back with the same bytes and timestamps.
   local c = config.new()
   config.app(c, "reader", PcapReader, data .. "v4.pcap")
   config.app(c, "writer", PcapWriter, {file = out, nanosecond = true})
   config.link(c, "reader.output -> writer.input")
   engine.configure(c)
   run_until(function () return engine.app_table.reader.done end)
   engine.main({duration = 0.01})
   assert(engine.app_table.writer.written == 43, engine.app_table.writer.written)
   engine.configure(config.new())
   local a, b = open_reader(data .. "v4.pcap"), open_reader(out)
   local pa, pb = packet.allocate(), packet.allocate()
   local records = 0
   while C.snabb_pcap_reader_next(a, pa) == 1 do
      assert(C.snabb_pcap_reader_next(b, pb) == 1)
      assert(packet.tostring(pa) == packet.tostring(pb))
      assert(packet.timestamp(pa) == packet.timestamp(pb))
      records = records + 1
   end
   assert(records == 43 and C.snabb_pcap_reader_next(b, pb) == 0)
   free(pa); free(pb)
   os.remove(out)

   -- Replay: loops and packet limits are exact.
   local function replay (conf)
      engine.configure(config.new()) -- a fresh link, counting from zero
      c = config.new()
      config.app(c, "replay", Replay, conf)
      config.app(c, "sink", basic.Sink)
      config.link(c, "replay.output -> sink.input")
      engine.configure(c)
      run_until(function () return engine.app_table.replay.done end)
      engine.main({duration = 0.01})
      return sink_count()
   end
   assert(replay({file = data .. "v4.pcap", loops = 3}) == 3 * 43)
   assert(replay({file = data .. "v6.pcap", packets = 1000}) == 1000)

   -- The schedule on a clock of our own (Replay:due(n, t)): no timing of this machine. v4.pcap
   -- has 54 to 1484-byte frames, its first 54 bytes; rates in bits below ~12 Mbps sent 11 packets
   -- and stopped (the token bucket was sized by the first frame).
   -- Pulls every `step` seconds for `seconds` (the last one just before the end), none while
   -- stalled; the graph takes every packet that is due.
   local function schedule (rate, step, seconds, stall_at, stall)
      local app = Replay:new({file = data .. "v4.pcap", rate = rate})
      app.started = 0
      local sent, bits, i = 0, 0, 0
      local function pull (t)
         local n = app:due(1e9, t)
         for _ = 1, n do
            bits = bits + wire_bits(app.templates[app.index].length)
            app.index = (app.index + 1) % app.count
         end
         sent = sent + n
      end
      while i * step < seconds do
         local t = i * step
         if not (stall_at and t > stall_at and t < stall_at + stall) then pull(t) end
         i = i + 1
      end
      pull(seconds - 1e-9)
      return sent, bits, app
   end
   for _, case in ipairs({{"1kpps", 1e3}, {"100kpps", 1e5}, {"1Mpps", 1e6}, {0.25, 2.5e5}}) do
      local sent = schedule(case[1], 1e-4, 1)
      -- Records are due at 0, 1/rate, ... < 1 s: exactly the rate.
      assert(sent == case[2], ("%s: %d packets due in 1 s"):format(case[1], sent))
   end
   for _, rate in ipairs({"1Mbps", "10Mbps", "100Mbps", "10Gbps"}) do
      local bps = M.parse_rate(rate)
      for _, step in ipairs({1e-6, 1e-3, 0.02}) do
         local sent, bits = schedule(rate, step, 1)
         -- Every frame goes when its time comes: what is sent by 1 s is within a frame of it.
         assert(bits >= bps * (1 - 1e-6) and bits < bps + wire_bits(1514),
                ("%s, pulls %g s apart: %d frames, %d bits in 1 s"):format(rate, step, sent, bits))
      end
   end
   -- After a stall (the process descheduled) it catches up, up to a burst of 250 ms of the rate
   -- (or one pull, 512 packets); beyond that it gives up the time and says so.
   local sent, _, app = schedule("100kpps", 1e-3, 1, 0.5, 0.2) -- 200 ms: caught up
   assert(sent == 1e5 and app.skipped == 0, ("%d sent, %g skipped"):format(sent, app.skipped))
   sent, _, app = schedule("100kpps", 1e-3, 1, 0.5, 0.4) -- 400 ms: 150 ms given up
   assert(math.abs(app.skipped - 0.15) < 1e-3 and math.abs(sent - 0.85e5) < 100,
          ("%d sent, %g s skipped"):format(sent, app.skipped))
   sent, _, app = schedule("1kpps", 1e-3, 2, 0.5, 0.4) -- 400 packets owed: within one pull
   assert(sent == 2000 and app.skipped == 0, ("%d sent, %g s skipped"):format(sent, app.skipped))

   -- In a real graph: what is sent over the run's time is the rate, less the time given up (only
   -- stalls longer than 250 ms give any up); the rates the app reports agree with the counters.
   for _, case in ipairs({{"200kpps", "pps"}, {"100Mbps", "bps"}}) do
      local n = replay({file = data .. "v4.pcap", rate = case[1], seconds = 0.3})
      local r = engine.app_table.replay:rates()
      local requested = r.requested[case[2]]
      assert(math.abs(r.seconds - 0.3) < 1e-9 and n == engine.app_table.replay.sent, r.seconds)
      assert(math.abs(r.achieved.pps - n / r.seconds) < 1e-6 * n)
      local expected = requested * (1 - r.skipped / r.seconds)
      assert(math.abs(r.achieved[case[2]] - expected) < 0.01 * expected,
             ("%s: achieved %g, expected %g (%g s skipped)"):format(case[1], r.achieved[case[2]], expected, r.skipped))
      -- snabb run --report: the same figures in one line.
      local saved_print, line = print, nil
      print = function (s) line = s end -- luacheck: ignore (print is global)
      engine.app_table.replay:report()
      print = saved_print -- luacheck: ignore
      assert(line:match("^tests/data/pcap/v4%.pcap: sent [%d,]+ packets in 0%.30 s: [%d.]+ Mpps, [%d.]+ Gbit/s "
                        .. "on the wire; requested [%d.]+ %a+/?s? %(%d+%.%d%d%%%)"), line)
   end
   engine.configure(config.new())

   -- A capture in memory takes about its size on disk (it took a 10,816-byte packet per record),
   -- and no packets from the pool.
   local in_use = packet.in_use()
   c = config.new()
   config.app(c, "replay", Replay, {file = data .. "v6.pcap"})
   engine.configure(c)
   local file = io.open(data .. "v6.pcap")
   local file_size = file:seek("end")
   file:close()
   local memory = engine.app_table.replay.memory
   assert(memory < 1.1 * file_size, ("v6.pcap: %d bytes in memory, %d on disk"):format(memory, file_size))
   assert(packet.in_use() == in_use, "Replay holds packets")
   engine.configure(config.new())

   -- Snapped records keep their wire length through a graph, clones too (Tee), and out into files.
   local function wire_lengths (path) -- orig_len of each record, read from the file itself
      local f = io.open(path, "rb")
      local bytes = f:read("*a")
      f:close()
      local lengths, offset = {}, 24
      while offset + 16 <= #bytes do
         local fields = ffi.cast("uint32_t *", ffi.cast("const char *", bytes) + offset)
         lengths[#lengths+1] = fields[3]
         offset = offset + 16 + fields[2]
      end
      return lengths
   end
   local out_b = os.tmpname()
   c = config.new()
   config.app(c, "reader", PcapReader, data .. "icmp-snapped.pcap")
   config.app(c, "tee", basic.Tee)
   config.app(c, "writer_a", PcapWriter, out)
   config.app(c, "writer_b", PcapWriter, out_b)
   config.link(c, "reader.output -> tee.input")
   config.link(c, "tee.a -> writer_a.input")
   config.link(c, "tee.b -> writer_b.input")
   engine.configure(c)
   run_until(function () return engine.app_table.reader.done end)
   engine.main({duration = 0.01})
   engine.configure(config.new())
   local snapped = table.concat(wire_lengths(data .. "icmp-snapped.pcap"), " ")
   assert(snapped == "1042 1042 1042 1042 1042 1042", snapped) -- tcpdump -e: "length 1042"
   assert(table.concat(wire_lengths(out), " ") == snapped, table.concat(wire_lengths(out), " "))
   assert(table.concat(wire_lengths(out_b), " ") == snapped, table.concat(wire_lengths(out_b), " "))
   os.remove(out); os.remove(out_b)

   -- A writer started again on a file of this process (a restart after a failed write, a
   -- reconfiguration) adds to it: nothing captured is lost. Another format is refused, untouched.
   local function write_v4 ()
      c = config.new()
      config.app(c, "reader", PcapReader, data .. "v4.pcap")
      config.app(c, "writer", PcapWriter, out)
      config.link(c, "reader.output -> writer.input")
      engine.configure(c)
      run_until(function () return engine.app_table.reader.done end)
      engine.main({duration = 0.01})
      engine.configure(config.new())
   end
   local function records_in (path)
      local r, p, count = open_reader(path), packet.allocate(), 0
      while C.snabb_pcap_reader_next(r, p) == 1 do count = count + 1 end
      free(p); close_reader(r)
      return count
   end
   write_v4()
   write_v4()
   assert(records_in(out) == 86, ("a restarted writer kept %d of 86 records"):format(records_in(out)))
   local ok_ns, err_ns = pcall(PcapWriter.new, PcapWriter, {file = out, nanosecond = true})
   assert(not ok_ns and err_ns:match("not appended to: it is not a pcap file of nanosecond"), err_ns)
   assert(records_in(out) == 86)
   os.remove(out)

   -- An app that cannot start is retried every restart_delay, for ever: each attempt gives back
   -- what it took (Replay loaded every packet before refusing its arguments; PcapReader kept the
   -- refused file open).
   ffi.cdef("int getpid(void);")
   local function open_files ()
      local ls, count = io.popen("ls /proc/" .. C.getpid() .. "/fd"), 0
      for _ in ls:lines() do count = count + 1 end
      ls:close()
      return count
   end
   local saved_log, saved_delay, attempts = engine.log, engine.restart_delay, 0
   engine.log = function (msg) if msg:match("could not be restarted") then attempts = attempts + 1 end end
   engine.restart_delay, engine.restart_on_error = 0.001, true
   in_use = packet.in_use()
   local files = open_files()
   c = config.new()
   config.app(c, "bad_file", PcapReader, data .. "loopback-sll.pcap")
   config.app(c, "bad_file2", PcapReader, data .. "loopback-sll.pcap")
   config.app(c, "bad_file3", PcapReader, data .. "loopback-sll.pcap")
   assert(not pcall(engine.configure, c))
   run_until(function () return attempts >= 3 * 20 end)
   engine.log, engine.restart_delay, engine.restart_on_error = saved_log, saved_delay, false
   engine.configure(config.new())
   collectgarbage()
   assert(attempts >= 60, attempts)
   assert(packet.in_use() == in_use,
          ("%d packets held after %d failed starts"):format(packet.in_use() - in_use, attempts))
   -- (A file the process's own observation opens for a moment, its count taken then, is no
   -- leak: a leak stays. Seen once under load: a count one off, none on the next look.)
   local open = open_files()
   for _ = 1, 100 do
      if open == files then break end
      C.usleep(10000)
      open = open_files()
   end
   assert(open == files, ("%d files open after %d failed starts"):format(open - files, attempts))

   -- Refusals name the file.
   local function refusal (class, arg)
      local ok, err = pcall(function () return class:new(lib.parse(arg, class.config)) end)
      assert(not ok)
      return err
   end
   assert(refusal(PcapReader, data .. "loopback-sll.pcap"):match("loopback%-sll%.pcap: link type LINUX_SLL2"))
   assert(refusal(Replay, {file = data .. "empty.pcap"}):match("empty%.pcap: no packets to replay"))
   assert(refusal(PcapReader, "/nonexistent.pcap"):match("/nonexistent%.pcap: No such file"))
   assert(not pcall(M.parse_rate, "fast"))
   assert(M.parse_rate("10Gbps") == 10e9 and select(2, M.parse_rate(2)) == "pps")

   -- Arguments: every documented form is taken (the file alone too, Replay's as well) ...
   local v4 = data .. "v4.pcap"
   c = config.new()
   config.app(c, "reader", PcapReader, v4)
   config.app(c, "reader_table", PcapReader, {file = v4})
   config.app(c, "writer", PcapWriter, out)
   config.app(c, "writer_ns", PcapWriter, {file = out_b, nanosecond = true})
   config.app(c, "replay", Replay, v4)
   config.app(c, "replay_mpps", Replay, {file = v4, rate = 0.5, loops = 2, packets = "100", seconds = 1.5})
   config.app(c, "replay_bps", Replay, {file = v4, rate = "10Gbps", loops = 0})
   config.app(c, "replay_kpps", Replay, {file = v4, rate = "500kpps"})
   engine.configure(c)
   assert(engine.app_table.writer_ns and engine.app_table.replay_mpps.limit == 86)
   engine.configure(config.new())
   os.remove(out); os.remove(out_b)
   -- ... and anything else is refused by the engine in one line naming the app, the parameter and
   -- what it allows (PcapReader(5) and PcapReader() ended in a traceback; misspelt keys and
   -- nanosecond = "no" were taken, loops = 1.5 and rate = inf ran).
   local allows_rate = [[a number > 0 of Mpps or a rate with its unit %(e%.g%. "500kpps", "10Gbps"%)]]
   for _, case in ipairs({
      {PcapReader, 5, "parameter 'file' must be a file name, got 5"},
      {PcapReader, nil, "missing required parameter 'file' %(a file name%)"},
      {PcapReader, {file = v4, loop = true}, "unknown parameter 'loop' %(known: file%)"},
      {PcapWriter, {file = out, nanosecnd = true}, "unknown parameter 'nanosecnd' %(known: file, nanosecond%)"},
      {PcapWriter, {file = out, nanosecond = "no"}, "parameter 'nanosecond' must be a boolean, got \"no\""},
      {PcapWriter, {}, "missing required parameter 'file' %(a file name%)"},
      {Replay, {file = v4, loops = 1.5}, "parameter 'loops' must be a whole number of at least 0, got 1%.5"},
      {Replay, {file = v4, loops = math.huge}, "parameter 'loops' must be a whole number of at least 0, got inf"},
      {Replay, {file = v4, packets = -1}, "parameter 'packets' must be a whole number of at least 0, got %-1"},
      {Replay, {file = v4, seconds = 0/0}, "parameter 'seconds' must be a number of seconds of at least 0, got nan"},
      {Replay, {file = v4, rate = math.huge}, "parameter 'rate' must be " .. allows_rate .. ", got inf"},
      {Replay, {file = v4, rate = "1e999Gbps"}, "parameter 'rate' must be " .. allows_rate .. ", got \"1e999Gbps\""},
      {Replay, {file = v4, rate = "fast"}, "parameter 'rate' must be " .. allows_rate .. ", got \"fast\""},
      {Replay, {file = v4, loops = 1, loop = 2},
       "unknown parameter 'loop' %(known: file, latency, loops, packets, rate, seconds%)"},
   }) do
      c = config.new()
      local ok, err = pcall(config.app, c, "app", case[1], case[2]) -- (checked there, as in Snabb)
      assert(not ok and err:match("^[^\n]*pcap%.lua:%d+: app 'app': " .. case[3] .. "$"), err)
   end
   assert(packet.in_use() == in_use and open_files() == files, "refused apps hold packets or files")
   print("selftest: apps.pcap.pcap ok")
end

return M
