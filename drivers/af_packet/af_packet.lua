-- drivers.af_packet.af_packet: a Linux interface as an app (drivers/af_packet/af_packet.h).
--   config.app(c, "eth", af_packet.AfPacket, {ifname = "eth0", promisc = true})
--   config.app(c, "eth", af_packet.AfPacket, {ifname = "eth0", fanout = {group = 7, mode = "hash"}})
-- (one such app per worker process: the kernel spreads the interface's frames over the group)
-- Receives into `output`, sends what arrives on `input`. If the interface goes away, what is sent
-- meanwhile is counted (tx_errors) and dropped, and the port reopens when the interface is back.
-- Frames dropped for their size, either way, are counted and logged (rx_oversize, tx_oversize).
local ffi = require("ffi")
require("core.cdefs")
require("drivers.af_packet.cdefs")
local engine = require("core.engine")
local lib = require("core.lib")
local C = ffi.C

local M = {}

-- PACKET_FANOUT's modes (linux/if_packet.h): how the kernel picks a group member for a frame.
local FANOUT_MODES = {hash = 0, lb = 1, cpu = 2, rollover = 3, random = 4, qm = 5}

-- fanout: {group = ID, mode = M} or a group id alone (hash), as {group =, mode =}; nil if bad.
-- The id is 16 bits (the kernel would take 70000 as 4464, and -1 as none).
local function group_id (v)
   return type(v) == "number" and v == math.floor(v) and v >= 0 and v <= 65535 and v or nil
end
local function check_fanout (v)
   if type(v) ~= "table" then
      v = group_id(v)
      return v and {group = v, mode = "hash"}
   end
   for key in pairs(v) do if key ~= "group" and key ~= "mode" then return nil end end
   local mode = v.mode == nil and "hash" or v.mode
   if not (group_id(v.group) and v.group > 0 and FANOUT_MODES[mode]) then return nil end
   return {group = v.group, mode = mode}
end

-- Parameters are checked (`config`, core.lib.parse) before new() opens the socket.
local AfPacket = {
   inputs = {"input"}, outputs = {"output"},
   config = {ifname = {required = true, type = "string", allows = "an interface name (a string)"},
             promisc = {type = "boolean", default = false},
             fanout = {check = check_fanout, default = {group = 0, mode = "hash"},
                       allows = "a PACKET_FANOUT group, {group = ID, mode = MODE} (ID a whole "
                          .. "number from 1 to 65535, MODE \"hash\" (the default), \"lb\", \"cpu\", "
                          .. "\"qm\", \"rollover\" or \"random\"), or an ID alone from 0 to 65535 "
                          .. "(hash; 0: none)"}},
}
M.AfPacket = AfPacket

-- The port's counters (struct af_packet_stats) that become the app's counter files
-- (apps/NAME/X.counter, runtime/stats.h), copied twice a second by tick, never per packet.
local COUNTERS = {"rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_kernel_drops",
                  "rx_gso_frames", "rx_gso_segments", "rx_checksummed", "rx_oversize",
                  "rx_truncated", "tx_oversize", "tx_errors", "reopened", "down"}

function AfPacket:new (conf)
   -- As the engine checked it ({group =, mode =}); new() called directly may give the id alone.
   local fanout = conf.fanout
   if type(fanout) ~= "table" then fanout = check_fanout(fanout or 0) end
   if not fanout then error("fanout: " .. AfPacket.config.fanout.allows, 2) end
   local dev = C.snabb_af_packet_open(conf.ifname, conf.promisc and 1 or 0, fanout.group,
                                      FANOUT_MODES[fanout.mode])
   if dev == nil then lib.c_error(nil, 0) end
   local counter = require("core.counter")
   local shm = {}
   for _, name in ipairs(COUNTERS) do shm[name] = {counter} end
   return setmetatable({dev = ffi.gc(dev, C.snabb_af_packet_close), ifname = conf.ifname, up = true,
                        stats = ffi.new("struct af_packet_stats"), check_due = lib.throttle(0.5),
                        logged_rx_oversize = 0, logged_tx_oversize = 0, shm = shm},
                       {__index = AfPacket})
end

function AfPacket:pull ()
   local o = self.output.output
   if o and C.snabb_af_packet_rx(self.dev, o) < 0 then lib.c_error(nil, 0) end
end

function AfPacket:push ()
   if C.snabb_af_packet_tx(self.dev, self.input.input) < 0 then lib.c_error(nil, 0) end
end

-- Twice a second: is the interface still there (or back)? Also folds in the kernel's drop count.
function AfPacket:tick ()
   if not self.check_due() then return end
   local up = C.snabb_af_packet_check(self.dev) == 1
   if up ~= self.up then
      engine.log(("af_packet: interface %s %s"):format(self.ifname, up and "is back"
                  or "is gone; dropping what is sent to it until it returns"))
      self.up = up
   end
   self:log_drops()
   local counter, s = require("core.counter"), self:port_stats()
   for _, name in ipairs(COUNTERS) do counter.set(self.shm[name], s[name]) end
end

-- Frames dropped for their size since the last time, if any, in the log (the counts are totals).
function AfPacket:log_drops ()
   local s = self:port_stats()
   local rx, tx = tonumber(s.rx_oversize), tonumber(s.tx_oversize)
   if rx ~= self.logged_rx_oversize then
      engine.log(("af_packet: %s: %d frames larger than a packet (%d bytes) and not cut into "
                  .. "segments that fit were dropped (rx_oversize)"):format(
         self.ifname, rx, C.PACKET_PAYLOAD_SIZE))
      self.logged_rx_oversize = rx
   end
   if tx ~= self.logged_tx_oversize then
      engine.log(("af_packet: %s: %d frames larger than its MTU of %d bytes allows (%d bytes with "
                  .. "the Ethernet header, 4 more with a VLAN tag) were dropped (tx_oversize); the "
                  .. "largest was %d bytes"):format(
         self.ifname, tx, tonumber(s.mtu), tonumber(s.mtu) + 14, tonumber(s.tx_oversize_largest)))
      self.logged_tx_oversize = tx
   end
end

function AfPacket:port_stats ()
   C.snabb_af_packet_stats(self.dev, self.stats)
   return self.stats
end

function AfPacket:report ()
   local s = self:port_stats()
   local n = tonumber
   print(("%s: rx %d packets (%d segments of %d GSO frames, %d checksums completed; dropped: "
          .. "kernel %d, rx_oversize %d, rx_truncated %d), tx %d (dropped: tx_oversize %d, errors "
          .. "%d), MTU %d, reopened %d times%s"):format(
      self.ifname, n(s.rx_packets), n(s.rx_gso_segments), n(s.rx_gso_frames), n(s.rx_checksummed),
      n(s.rx_kernel_drops), n(s.rx_oversize), n(s.rx_truncated), n(s.tx_packets),
      n(s.tx_oversize), n(s.tx_errors), n(s.mtu), n(s.reopened), s.down == 1 and ", now gone" or ""))
end

function AfPacket:stop ()
   self:log_drops()
   C.snabb_af_packet_close(ffi.gc(self.dev, nil))
end

return M
