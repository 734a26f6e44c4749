-- core.packet_h: `struct packet` as Snabb code expects after require("core.packet_h"): ours
-- (runtime/packet.h, declared by core.cdefs), with length and data as Snabb's; headroom and the
-- slot around it are our own layout (runtime/README.md).
require("core.cdefs")
return {}
