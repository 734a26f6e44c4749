-- A plain script using the API: a packet through a link, checked byte for byte.
local l = link.new()
link.transmit(l, packet.from_string("hello"))
assert(link.nreadable(l) == 1)
local p = link.receive(l)
assert(packet.tostring(p) == "hello", "packet contents")
packet.free(p)
assert(link.stats(l).rxpackets == 1)
print("script ok", ...)
