-- lib.protocol.header: the base class of the protocol headers (lib.protocol.*), with Snabb's
-- names and call shapes, so Snabb code that parses headers ports. A header object is a view: a
-- pointer to a C struct, either its own storage (`new`) or bytes in a packet (`new_from_mem`),
-- read and written through accessors in host byte order.
--
-- Allocation: a class makes its storage and pointer box once per object; `obj:free()` gives the
-- object back to its class and the next `new`/`new_from_mem` reuses it without allocating
-- (lib.lua.class's free list). lib.protocol.datagram frees the headers it parsed when it is
-- renewed, so `dgram:new(p, ethernet)` + `dgram:parse()` in a loop allocates nothing once warm.
--
-- A subclass calls `Class:init({ctype, ...})` with the variants of its header (the first is the
-- base, the one new_from_mem overlays first), sets `_name`, and `_ulp = {method = "type",
-- class_map = {[0x0800] = "lib.protocol.ipv4", ...}}` for upper_layer(). Variable-length headers
-- (IPv4 and TCP options, GRE's optional fields) set the object's size in their new_from_mem.
local ffi = require("ffi")
local subClass = require("lib.lua.class").subClass
local C = ffi.C
local cast, sizeof = ffi.cast, ffi.sizeof

local header = subClass(nil)
header._name = "header"
header._ulp = {}

-- Class method: the header's variants, base first.
function header:init (ctypes)
   assert(#ctypes > 0, "a header class needs at least its base ctype")
   local variants = {}
   for i, t in ipairs(ctypes) do
      variants[i] = {t = t, ptr_t = ffi.typeof("$*", t), box_t = ffi.typeof("$*[1]", t),
                     size = sizeof(t)}
   end
   self._variants = variants
   -- The class answers sizeof() and ctype() with its base header's.
   self._t, self._size = variants[1].t, variants[1].size
   self._ulp_classes = {}
end

-- An object with storage and a box for every variant (made once; recycled objects keep theirs).
local function instance (self)
   local o = header:superClass().new(self)
   if not o._recycled then
      local boxes, datas = {}, {}
      for i, v in ipairs(o._variants) do
         boxes[i], datas[i] = v.box_t(), v.t()
      end
      o._boxes, o._datas = boxes, datas
   end
   return o
end

-- Makes variant i the active one, at mem (nil: the object's own storage).
function header:_select (i, mem)
   local v = self._variants[i]
   local box = self._boxes[i]
   box[0] = cast(v.ptr_t, mem or self._datas[i])
   self._h, self._t, self._size, self._ptr_t = box, v.t, v.size, v.ptr_t
   return self
end

-- A header in the object's own storage, zeroed (subclasses fill it from their config).
function header:new ()
   local o = instance(self)
   ffi.fill(o._datas[1], o._variants[1].size)
   return o:_select(1)
end

-- A view of the header at mem, or nil when size bytes cannot hold the base header (subclasses
-- also refuse what they cannot parse: a bad IHL, a TCP offset past size...).
function header:new_from_mem (mem, size)
   local v = self._variants[1]
   if size < v.size then return nil end
   local o = instance(self)
   local box = o._boxes[1]
   box[0] = cast(v.ptr_t, mem)
   o._h, o._t, o._size, o._ptr_t = box, v.t, v.size, v.ptr_t
   return o
end

-- The header as a struct reference (fields in network order), and its pointer.
function header:header () return self._h[0][0] end
function header:header_ptr () return self._h[0] end
function header:ctype () return self._t end
-- Bytes the header takes (with its options, for IPv4, TCP and GRE).
function header:sizeof () return self._size end

function header:eq (other)
   local n = self:sizeof()
   return self:ctype() == other:ctype() and n == other:sizeof()
      and C.memcmp(self:header_ptr(), other:header_ptr(), n) == 0
end

-- Copies the header's bytes to dst; with relocate, the object then views dst.
function header:copy (dst, relocate)
   ffi.copy(dst, self:header_ptr(), self:sizeof())
   if relocate then self._h[0] = cast(self._ptr_t, dst) end
end

-- A copy in fresh storage of its own (allocates: not for a packet loop).
function header:clone ()
   local n = self:sizeof()
   local mem = ffi.new("uint8_t[?]", n)
   ffi.copy(mem, self:header_ptr(), n)
   local o = self:class():new_from_mem(mem, n)
   o._keep = mem -- keeps the storage alive as long as the object
   return o
end

-- The class of the protocol this header carries (by _ulp.method's value), or nil.
function header:upper_layer ()
   local ulp = self._ulp
   if not ulp.method then return nil end
   local key = self[ulp.method](self)
   local classes = self._ulp_classes
   local class = classes[key]
   if class == nil then
      local name = ulp.class_map[key] -- a module name, or the class itself
      if type(name) == "string" then name = require(name) end
      class = name or false
      classes[key] = class
   end
   return class or nil
end

-- The RFC 1071 checksum of n bytes at p, continuing `initial` (Snabb's lib.checksum.ipsum
-- semantics: pass bit.bnot(previous result) to continue a sum). Our C sum (lib/c_helpers.h).
local u8_ptr_t = ffi.typeof("uint8_t *")
function header.ipsum (p, n, initial)
   return C.cksum_generic(cast(u8_ptr_t, p), n, initial or 0)
end

function header.selftest ()
   print("selftest: lib.protocol.header")
   local h = subClass(header)
   h._name = "pair"
   h:init({ffi.typeof("struct { uint8_t a, b; }")})
   assert(h:sizeof() == 2)
   local mem = ffi.new("uint8_t[2]", 7, 9)
   assert(h:new_from_mem(mem, 1) == nil, "1 byte holds no 2-byte header")
   local o = h:new_from_mem(mem, 2)
   assert(o:header().a == 7 and o:header().b == 9 and o:sizeof() == 2)
   local n = h:new()
   assert(n:header().a == 0 and not n:eq(o))
   o:copy(n:header_ptr())
   assert(n:eq(o) and n:clone():eq(o))
   -- Freed, the object comes back from new_from_mem without new storage.
   o:free()
   local again = h:new_from_mem(mem + 0, 2)
   assert(again == o and again._recycled)
   assert(header.ipsum(ffi.new("uint8_t[2]", 0xff, 0xff), 2, 0) == 0)
   print("selftest: ok")
end

return header
