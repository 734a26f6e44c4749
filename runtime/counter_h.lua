-- core.counter_h: `struct counter`, Snabb's 64-bit counter, the type of every core.counter object
-- (an 8-byte file in the run directory, native byte order).
require("ffi").cdef("struct counter { uint64_t c; };")
return {}
