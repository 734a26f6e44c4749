-- The router app's own cost, apart from the engine and the bench harness: Router:push over 512
-- packets of a capture, called 2,000 times with the packets sent round again (TTL and checksum
-- restored between calls, outside the timing), timed with the TSC around each call. Prints the
-- best call's cycles per packet (the least disturbed by other processes: a figure that holds on a
-- loaded machine, where snabb bench's averages do not) and the median's.
-- Usage: bazel-bin/programs/snabb tools/bench-router-push.lua ROUTES CAPTURE
--   (tools/bench-router makes both: tools/gen-routes.lua and gen-pcap --dst 10.0.0.0/8*65536)
local ffi = require("ffi")
local lib = require("core.lib")
local shm = require("core.shm")
local checksum = require("lib.checksum")
local router = require("apps.router.router")
local C = ffi.C
local routes, capture = main.parameters[1], main.parameters[2]
if not (routes and capture) then
   io.stderr:write("usage: snabb tools/bench-router-push.lua ROUTES CAPTURE\n")
   os.exit(2)
end
local r = router.Router:new(lib.parse({
   ports = {p0 = "02:00:00:00:00:01", p1 = "02:00:00:00:00:02"}, routes = routes,
   neighbours = {["198.51.100.2"] = "02:00:00:00:02:02"}}, router.Router.config))
r.shm = shm.create_frame("apps/bench_router_push", r.shm)
r.input, r.output = {p0 = link.new("in")}, {p1 = link.new("out")}
r:link()
-- The first 512 records of the capture (tests/pcap_records.lua reads it).
local packets = {}
for k, rec in ipairs(dofile("tests/pcap_records.lua")(capture)) do
   if k > 512 then break end
   packets[k] = packet.from_string(rec.data)
end
local ttl = {}
for k, p in ipairs(packets) do ttl[k] = p.data[22]; link.transmit(r.input.p0, p) end
local per_packet = {}
for round = 1, 2000 do
   local t0 = C.snabb_rdtsc()
   r:push()
   local t1 = C.snabb_rdtsc()
   local n = link.nreadable(r.output.p1)
   assert(n == #packets, ("%d of %d packets forwarded (routes must cover the capture)"):format(n, #packets))
   per_packet[round] = tonumber(t1 - t0) / n
   for k = 1, n do
      local p = link.receive(r.output.p1)
      p.data[22] = ttl[k]
      checksum.ipv4_header(p.data + 14)
      link.transmit(r.input.p0, p)
   end
end
table.sort(per_packet)
print(("Router:push, %d packets a call, %d routes: best %.1f, median %.1f TSC cycles/packet")
      :format(#packets, r.routes4 + r.routes6, per_packet[1], per_packet[#per_packet / 2]))
shm.delete_frame(r.shm)
