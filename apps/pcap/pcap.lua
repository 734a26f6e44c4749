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
local latency = require("apps.basic.latency")
local C = ffi.C

ffi.cdef[[
struct snabb_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clock, struct snabb_timespec *ts);
]]

local receive, transmit = link.receive, link.transmit
local nreadable, nwritable = link.nreadable, link.nwritable
local clone, free = packet.clone, packet.free
local rdtsc, stamp_check, stamp_packet = latency.rdtsc, latency.check, latency.stamp
local min = math.min

local M = {}

local ERRLEN = 1024
local errbuf = ffi.new("char[?]", ERRLEN)
local CLOCK_REALTIME = 0
local timespec = ffi.new("struct snabb_timespec")

local function wall_clock_ns ()
   C.clock_gettime(CLOCK_REALTIME, timespec)
   return ffi.cast("uint64_t", timespec.tv_sec) * 1000000000ULL + timespec.tv_nsec
end

-- Every app takes its file alone (Snabb's style: PcapReader("in.pcap")) or as {file = ...}.
local FILE = {required = true, type = "string", allows = "a file name", positional = true}

local function open_reader (file)
   local r = C.snabb_pcap_reader_open(file, errbuf, ERRLEN)
   if r == nil then error(ffi.string(errbuf), 0) end
   return ffi.gc(r, C.snabb_pcap_reader_close)
end

local function close_reader (r)
   C.snabb_pcap_reader_close(ffi.gc(r, nil))
end

-- Bits a frame of `length` bytes (as captured: no FCS) takes on an Ethernet wire: the frame padded
-- to 60 bytes, FCS 4, preamble and start delimiter 8, inter-frame gap 12.
function M.wire_bits (length)
   return (math.max(length, 60) + 4 + 8 + 12) * 8
end

-- Layer 2 bits: the frame with its FCS.
function M.l2_bits (length)
   return (math.max(length, 60) + 4) * 8
end

-- Parses a rate: a number (Mpps) or a string such as "5Mpps", "250kpps", "10Gbps", "100Mbit/s".
-- Returns the rate and its unit, "pps" or "bps" (bits on the wire, see wire_bits).
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
local PcapReader = {inputs = {}, outputs = {"output"}, config = {file = FILE}}
M.PcapReader = PcapReader

function PcapReader:new (conf)
   local file = conf.file
   local reader = open_reader(file)
   return setmetatable({reader = reader, file = file, done = false, records = 0},
                       {__index = PcapReader})
end

function PcapReader:pull ()
   local o = self.output.output
   if self.done or not o then return end
   local reader = self.reader
   for _ = 1, min(engine.pull_npackets, nwritable(o)) do
      local p = packet.allocate()
      local rc = C.snabb_pcap_reader_next(reader, p, errbuf, ERRLEN)
      if rc ~= 1 then
         free(p)
         self.done = true
         -- The file was checked at start, so only a file changed since then gets here.
         if rc < 0 then error(ffi.string(errbuf), 0) end
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
local PcapWriter = {inputs = {"input"}, outputs = {},
                    config = {file = FILE, nanosecond = {type = "boolean", default = false}}}
M.PcapWriter = PcapWriter
local written_files = {} -- files this process's PcapWriters have started

function PcapWriter:new (conf)
   local append = written_files[conf.file] and 1 or 0
   local w = C.snabb_pcap_writer_open(conf.file, conf.nanosecond and 1 or 0, append, errbuf, ERRLEN)
   if w == nil then error(ffi.string(errbuf), 0) end
   written_files[conf.file] = true
   return setmetatable({writer = w, file = conf.file, written = 0}, {__index = PcapWriter})
end

function PcapWriter:push ()
   local i = self.input.input
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
   if C.snabb_pcap_writer_flush(self.writer, errbuf, ERRLEN) ~= 0 then error(ffi.string(errbuf), 0) end
end

function PcapWriter:stop ()
   local w = self.writer
   self.writer = nil
   if w and C.snabb_pcap_writer_close(w, errbuf, ERRLEN) ~= 0 then error(ffi.string(errbuf), 0) end
end

-- Replay: loads a capture once and sends copies of its records in order, over and over.
-- Parameters: file (required); loops, packets or seconds to stop after (default: never); rate (see
-- parse_rate; default: as fast as the output takes them). Replayed packets carry no capture
-- timestamp (a PcapWriter stamps them as it writes them, as a capture of tcpreplay would).
-- latency = true stamps each packet with the TSC as it is sent, for apps.basic.latency's
-- LatencySink (one TSC read per batch; snabb bench turns it on).
-- self.done turns true when a limit is reached; self.sent counts packets sent; self.memory is the
-- bytes the loaded capture takes.
local Replay = {inputs = {}, outputs = {"output"},
                config = {file = FILE, loops = {integer = true, min = 0}, packets = {integer = true, min = 0},
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
      local rc = C.snabb_pcap_reader_next(reader, scratch, errbuf, ERRLEN)
      if rc ~= 1 then -- only for a file changed since it was checked
         free(scratch)
         error(rc < 0 and ffi.string(errbuf) or ("%s: fewer records than when it was checked"):format(file), 0)
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

-- Arguments are checked before the capture is loaded (`config`), and what new takes is given back
-- when it fails: the engine retries a failed app every restart_delay, for ever.
function Replay:new (conf)
   local rate, unit
   if conf.rate then rate, unit = M.parse_rate(conf.rate) end
   local reader = open_reader(conf.file)
   local ok, images, templates, count, size = pcall(load_images, reader, conf.file)
   close_reader(reader)
   if not ok then error(images, 0) end
   -- With a rate: what each record costs of it (a packet, or its bits on the wire).
   local cost
   if rate then
      cost = double_array_t(count)
      for k = 0, count - 1 do cost[k] = unit == "bps" and M.wire_bits(templates[k].length) or 1 end
   end
   local limit = math.huge
   if conf.loops then limit = min(limit, conf.loops * count) end
   if conf.packets then limit = min(limit, conf.packets) end
   return setmetatable({images = images, templates = templates, cost = cost, count = count,
                        memory = size + ffi.sizeof(templates) + (cost and ffi.sizeof(cost) or 0),
                        index = 0, sent = 0, limit = limit, seconds = conf.seconds,
                        rate = rate, budget = 0, done = limit == 0, file = conf.file,
                        latency = conf.latency},
                       {__index = Replay})
end

-- How many packets the rate allows now (a token bucket that holds at most 1 ms of traffic).
function Replay:allowance (n)
   local t = engine.now()
   local rate, cost, count = self.rate, self.cost, self.count
   local burst = math.max(rate * 1e-3, cost[0])
   self.budget = min(self.budget + (t - (self.last or t)) * rate, burst)
   self.last = t
   local budget, index, allowed = self.budget, self.index, 0
   while allowed < n and budget >= cost[index] do
      budget = budget - cost[index]
      allowed = allowed + 1
      index = index + 1
      if index == count then index = 0 end
   end
   self.budget = budget
   return allowed
end

function Replay:pull ()
   local o = self.output.output
   if self.done or not o then return end
   self.started = self.started or engine.now()
   if self.seconds and engine.now() - self.started >= self.seconds then
      self.done = true
      return
   end
   local n = min(engine.pull_npackets, nwritable(o), self.limit - self.sent)
   if self.rate then n = self:allowance(n) end
   local templates, count, index = self.templates, self.count, self.index
   local stamp, tsc, check = self.latency, nil, nil
   if stamp then tsc = rdtsc(); check = stamp_check(tsc) end
   for _ = 1, n do
      local p = clone(templates[index])
      if stamp then stamp_packet(p, tsc, check) end
      transmit(o, p)
      index = index + 1
      if index == count then index = 0 end
   end
   self.index = index
   self.sent = self.sent + n
   if self.sent >= self.limit then self.done = true end
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
   while C.snabb_pcap_reader_next(a, pa, errbuf, ERRLEN) == 1 do
      assert(C.snabb_pcap_reader_next(b, pb, errbuf, ERRLEN) == 1)
      assert(packet.tostring(pa) == packet.tostring(pb))
      assert(packet.timestamp(pa) == packet.timestamp(pb))
      records = records + 1
   end
   assert(records == 43 and C.snabb_pcap_reader_next(b, pb, errbuf, ERRLEN) == 0)
   free(pa); free(pb)
   os.remove(out)

   -- Replay: loops and packet limits are exact; a rate is never exceeded (by more than 10%), and
   -- reached unless other processes take the CPU (tokens do not pile up beyond 1 ms of traffic, and
   -- tests run in parallel: hence the low floor).
   local function near_rate (n, expected, what)
      assert(n <= 1.1 * expected and n >= 0.2 * expected,
             ("%s: %d packets, expected %d"):format(what, n, expected))
   end
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
   near_rate(replay({file = data .. "v4.pcap", rate = "200kpps", seconds = 0.3}), 200e3 * 0.3, "200 kpps")
   local n = replay({file = data .. "v4.pcap", rate = "100Mbps", seconds = 0.3})
   local bits = 0
   for k = 0, 42 do bits = bits + M.wire_bits(engine.app_table.replay.templates[k].length) end
   local expected = 100e6 * 0.3 / (bits / 43)
   near_rate(n, expected, "100 Mbps")
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
      while C.snabb_pcap_reader_next(r, p, errbuf, ERRLEN) == 1 do count = count + 1 end
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
   engine.restart_delay = 0.001
   in_use = packet.in_use()
   local files = open_files()
   c = config.new()
   config.app(c, "bad_loops", Replay, {file = data .. "v4.pcap", loops = -1})
   config.app(c, "bad_rate", Replay, {file = data .. "v4.pcap", rate = "fast"})
   config.app(c, "bad_file", PcapReader, data .. "loopback-sll.pcap")
   assert(not pcall(engine.configure, c))
   run_until(function () return attempts >= 3 * 20 end)
   engine.log, engine.restart_delay = saved_log, saved_delay
   engine.configure(config.new())
   collectgarbage()
   assert(attempts >= 60, attempts)
   assert(packet.in_use() == in_use,
          ("%d packets held after %d failed starts"):format(packet.in_use() - in_use, attempts))
   assert(open_files() == files,
          ("%d files open after %d failed starts"):format(open_files() - files, attempts))

   -- Refusals name the file.
   local lib = require("core.lib")
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
      config.app(c, "app", case[1], case[2])
      local ok, err = pcall(engine.configure, c)
      assert(not ok and err:match("^[^\n]*pcap%.lua:%d+: app 'app': " .. case[3] .. "$"), err)
      engine.configure(config.new())
   end
   assert(packet.in_use() == in_use and open_files() == files, "refused apps hold packets or files")
   print("selftest: apps.pcap.pcap ok")
end

return M
