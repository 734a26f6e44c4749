-- Every C entry point that can fail, made to fail from Lua: its error must reach Lua as one readable
-- line in the caller's terms (runtime/error.h: the failure value and snabb_error(), raised by
-- core.lib's c_error), never a crash, "C++ exception" or a traceback from our internals.
--   snabb tests/c_errors_check.lua CASE     (CASE: core, dpdk_init, dpdk_port; run by c_errors_test.sh)
local ffi = require("ffi")
local C = ffi.C
local packet, link = require("core.packet"), require("core.link")
local case = ...
local here = debug.getinfo(1, "S").short_src

-- f(...) must fail with a message that matches `pattern` (a plain string), with nothing of our
-- internals in it; at = true: the message starts at this file's line that made the call.
local checked = 0
local function fails (what, pattern, at, f, ...)
   local args = {...}
   local ok, err = pcall(function () f(unpack(args)) end) -- a caller in this file (no tail call)
   assert(not ok, what .. ": did not fail")
   err = tostring(err)
   local problem
   if not err:find(pattern, 1, true) then problem = "does not say " .. pattern
   elseif err:find("\n") or err:find("traceback") then problem = "more than one line"
   elseif err:find("C++ exception", 1, true) then problem = "a C++ exception crossed into Lua"
   elseif at and err:sub(1, #here + 1) ~= here .. ":" then problem = "not at the caller's line"
   elseif not at and err:find("%.lua:%d+:") then problem = "names a line of our internals"
   end
   assert(not problem, ("%s: %s: %s"):format(what, problem or "", err))
   print(("ok: %s: %s"):format(what, err))
   checked = checked + 1
end

-- A direct C call: its failure value, and snabb_error() says why.
local function c_fails (what, pattern, failed)
   assert(failed, what .. ": did not return its failure value")
   local err = ffi.string(C.snabb_error())
   assert(err:find(pattern, 1, true), ("%s: snabb_error() says '%s'"):format(what, err))
   print(("ok: %s: %s"):format(what, err))
   checked = checked + 1
end

if case == "core" then
   -- snabb_packet_set_max: a capacity out of range, then one after packets are allocated.
   fails("packet.set_max_packets(0)", "packet.set_max_packets: 0 is not a capacity from 1 to 16777216",
         true, packet.set_max_packets, 0)
   packet.set_max_packets(3000) -- less than one mapping of the pool (~3100 packets)
   local p = packet.allocate()
   fails("packet.set_max_packets after allocation",
         "packet.set_max_packets: packets are already allocated", true, packet.set_max_packets, 10)
   -- snabb_link_delete: a packet still queued that was freed already (every packet is free then:
   -- the pool grows 256 packets at a time, so it is made to reach its cap first).
   local all = {}
   for i = 1, 2999 do all[i] = packet.allocate() end
   for _, q in ipairs(all) do packet.free(q) end
   local r = link.new()
   link.transmit(r, p)
   packet.free(p)
   fails("link.free of a link holding a freed packet",
         "link.free: more packets freed than allocated (freed twice?)", true, link.free, r)
   -- snabb_packet_grow at the cap: the message says what the cap is.
   local held = {}
   fails("packet.allocate at the cap", "packet pool exhausted: all 3000 packets", true, function ()
      for i = 1, 3001 do held[i] = packet.allocate() end
   end)
   for _, q in ipairs(held) do packet.free(q) end
   -- core.shm's files (snabb_shm_*): a missing object, a file where a directory must be, a name
   -- taken by an alias; core.memory: a pointer that is not DMA memory.
   local shm = require("core.shm")
   fails("shm.open of a missing object", "shm.open: " .. shm.path("c_errors/missing")
         .. ": No such file or directory", true, shm.open, "c_errors/missing", "int")
   local file = shm.create("c_errors/file", "int")
   fails("shm.create below a file", "shm.create: " .. shm.path("c_errors/file/x")
         .. ": Not a directory", true, shm.create, "c_errors/file/x", "int")
   fails("counter.open of a missing counter", "shm.open: " .. shm.path("c_errors/none.counter")
         .. ": No such file or directory", true, require("core.counter").open, "c_errors/none.counter")
   fails("shm.alias over an object", "shm.alias: " .. shm.path("c_errors/file") .. ": File exists",
         true, shm.alias, "c_errors/file", "c_errors/other")
   fails("shm.open bigger than the file", "holds 4 bytes, less than the 8 of the type", true,
         shm.open, "c_errors/file", "int64_t")
   shm.unmap(file)
   shm.unlink("c_errors")
   fails("memory.virtual_to_physical of ordinary memory", "is not DMA memory (memory.dma_alloc)",
         true, require("core.memory").virtual_to_physical, ffi.new("char[8]"))
   -- snabb_pcap_reader_open, snabb_pcap_writer_open (the header is written at once: a full disk
   -- fails there).
   local pcap = require("apps.pcap.pcap")
   local missing = "/nonexistent-snabb-c-errors/x.pcap"
   assert(pcap.check_capture(missing):find(missing, 1, true), "check_capture of a missing file")
   fails("Replay of a missing file", missing .. ": No such file or directory", false,
         pcap.Replay.new, pcap.Replay, {file = missing})
   fails("PcapWriter in a missing directory", missing .. ": No such file or directory", false,
         pcap.PcapWriter.new, pcap.PcapWriter, {file = missing, nanosecond = false})
   fails("PcapWriter on a full disk", "/dev/full: write failed: No space left on device", false,
         pcap.PcapWriter.new, pcap.PcapWriter, {file = "/dev/full", nanosecond = false})
   -- snabb_af_packet_open: an interface that is not there.
   local af_packet = require("drivers.af_packet.af_packet")
   fails("AfPacket on a missing interface", "af_packet: no interface 'nosuch0'", false,
         af_packet.AfPacket.new, af_packet.AfPacket, {ifname = "nosuch0", promisc = false, fanout = 0})
   -- snabb_rundir_open, snabb_rundir_gid: no Lua wrapper of their own here (observe/rundir.lua's).
   require("observe.rundir_cdefs")
   c_fails("snabb_rundir_open of a file", "/status: Not a directory",
           C.snabb_rundir_open("/proc/self/status", 448, -1, 0) < 0)
   c_fails("snabb_rundir_gid of an unknown group", "nosuchgroup",
           C.snabb_rundir_gid("nosuchgroup") < 0)
   -- snabb_stats_create, snabb_stats_move (core.stats's writer, relative to the run directory's
   -- descriptor), and core.stats's reader of a directory that is not a run's.
   require("core.stats_cdefs")
   local stats = require("core.stats")
   local dir = C.snabb_rundir_open("/proc", 448, -1, 0)
   c_fails("snabb_stats_create where nothing can be made", "engine: ",
           C.snabb_stats_create(dir, "engine/x/stats", 64, 448, 384, -1) == nil)
   c_fails("snabb_stats_move of a missing file", "none -> x: No such file or directory",
           C.snabb_stats_move(dir, "none", "x", 448, -1) < 0)
   C.close(dir)
   local read, err = stats.read("/proc/self")
   assert(not read and err == "/proc/self/engine/stats: No such file or directory (not the run "
          .. "directory of a snabb run, bench or basic1)", err)
elseif case == "dpdk_init" then
   -- snabb_dpdk_init with an option the EAL refuses.
   local dpdk = require("drivers.dpdk.dpdk")
   fails("dpdk.init with a bad EAL option", "dpdk: EAL initialisation failed", true, dpdk.init,
         {args = "--no-such-eal-option --no-pci"})
elseif case == "dpdk_port" then
   -- snabb_dpdk_port_open of a port no driver makes.
   local dpdk = require("drivers.dpdk.dpdk")
   dpdk.init({args = "-l 0 --no-pci --no-huge -m 512 --no-shconf --no-telemetry", mbufs = 2048})
   fails("DpdkPort of an unknown device", "dpdk: no port 'net_nosuch0'", false, dpdk.DpdkPort.new,
         dpdk.DpdkPort, {port = "net_nosuch0", queue = 0, rxqs = 1, txqs = 1, ring_size = 32,
                         rss = false})
else
   error("usage: snabb tests/c_errors_check.lua core|dpdk_init|dpdk_port", 0)
end
print(("%s: %d failing C entry points reached Lua as readable errors"):format(case, checked))
