-- Graphs for N workers (snabb run workers.lua MODE N [CAPTURE] [FLAGS]), worker names w1..wN:
--   pcap    each worker reads CAPTURE into a Sink of its own (independent graphs; each ends when
--           its capture is read)
--   source  a Source of 64-byte packets into a Sink in each worker (until stopped)
--   chain   w1 reads CAPTURE (a Source when none) and sends it over interlink l1 to w2, which
--           sends it on over l2 ..., to wN's Sink: Source -> tx | rx -> tx | rx -> Sink
--   mixed   w1's Source sends over interlink l1 to w2's Sink; w3.. each a Source -> Sink
--   dispatch  w1 reads CAPTURE into a Dispatch (apps/dispatch) whose outputs send over
--           interlinks d2..dN to w2..wN, each into a Sink: flows spread over workers without RSS
--   held    a Source into an app that keeps the first 3,000 packets it receives and then takes
--           nothing from its input, in each worker: what a worker holds when it dies, in its apps'
--           hands and in its links (which stay full)
-- FLAGS: a directory whose files make a worker that starts (or restarts) fail: fail-NAME with a
-- Lua error as its graph loads, exit-NAME with os.exit(3). (The supervisor, which loads this file
-- once before any worker starts, sees none.)
local mode, n, capture, flags = ...
n = tonumber(n) or 2
local basic = require("apps.basic.basic_apps")

local function flag (name)
   local f = flags and io.open(flags .. "/" .. name)
   if f then f:close() end
   return f ~= nil
end

local function source (c)
   if capture and capture ~= "" then
      config.app(c, "source", require("apps.pcap.pcap").PcapReader, capture)
   else
      config.app(c, "source", basic.Source, {size = 64})
   end
end

-- An app that keeps the first 3,000 packets it receives, then reads no more.
local Hold = {}
function Hold.new () return setmetatable({kept = {}}, {__index = Hold}) end
function Hold:push ()
   local i = self.input.input
   while #self.kept < 3000 and not link.empty(i) do self.kept[#self.kept+1] = link.receive(i) end
end
function Hold:stop ()
   for _, p in ipairs(self.kept) do packet.free(p) end
end

local workers = {}
for i = 1, n do
   local name = "w" .. i
   if flag("fail-" .. name) then error("worker " .. name .. " told to fail") end
   if flag("exit-" .. name) then os.exit(3) end
   local c = config.new()
   if mode == "mixed" and i <= 2 then
      if i == 1 then config.app(c, "source", basic.Source, {size = 64}) else
         config.app(c, "source", require("apps.interlink.receiver"), {name = "l1"})
      end
      if i == 2 then config.app(c, "sink", basic.Sink) else
         config.app(c, "sink", require("apps.interlink.transmitter"), {name = "l1"})
      end
   elseif mode == "dispatch" then
      if i == 1 then
         source(c)
         config.app(c, "dispatch", require("apps.dispatch.dispatch").Dispatch)
         config.link(c, "source.output -> dispatch.input")
         for k = 2, n do
            config.app(c, "to_w" .. k, require("apps.interlink.transmitter"), {name = "d" .. k})
            config.link(c, ("dispatch.w%d -> to_w%d.input"):format(k, k))
         end
      else
         config.app(c, "source", require("apps.interlink.receiver"), {name = "d" .. i})
         config.app(c, "sink", basic.Sink)
         config.link(c, "source.output -> sink.input")
      end
   elseif mode == "chain" then
      if i == 1 then source(c) else
         config.app(c, "source", require("apps.interlink.receiver"), {name = "l" .. (i - 1)})
      end
      if i == n then config.app(c, "sink", basic.Sink) else
         config.app(c, "sink", require("apps.interlink.transmitter"), {name = "l" .. i})
      end
   else
      if mode == "pcap" then source(c) else config.app(c, "source", basic.Source, {size = 64}) end
      config.app(c, "sink", mode == "held" and Hold or basic.Sink)
   end
   if mode ~= "dispatch" then config.link(c, "source.output -> sink.input") end
   workers[name] = c
end
return {workers = workers}
