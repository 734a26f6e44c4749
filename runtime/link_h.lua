-- core.link_h: `struct link` as Snabb code expects after require("core.link_h"): ours
-- (runtime/link.h, declared by core.cdefs). Its ring and cursors are our own layout (tagged
-- entries, free-running cursors: runtime/README.md); core.link's functions are the way to use it.
require("core.cdefs")
return {}
