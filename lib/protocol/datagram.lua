-- lib.protocol.datagram: Snabb's datagram, a packet seen as a stack of protocol headers that are
-- parsed, pushed and popped in place: new(p, class, options), parse_match(class, check),
-- parse(seq), parse_n(n), unparse(n), push(proto), push_raw(ptr, len), pop(n), pop_raw(len, ulp),
-- stack(), packet(), payload(mem, size), data(), commit().
--
-- Parsing never reads past p.length: each header is overlaid on what is left of the packet and
-- its class refuses (nil) a header that does not fit. Pushing and popping go through
-- core.packet's prepend/shiftleft, which move the packet's start within its headroom (the packet
-- pointer may change: take it back with dgram:packet()). In immediate-commit mode (the default)
-- push and pop change the packet at once and refuse while parsed headers are on the stack (moving
-- the data would leave them pointing at the wrong bytes); with {delayed_commit = true} pushes
-- gather in a 512-byte buffer and pops in an offset until commit() applies both.
--
-- Allocation: datagram:new() (on the class) makes a datagram object, its stack and buffers; a
-- packet loop makes one and renews it per packet with `dgram:new(p, ethernet)`, which gives the
-- headers parsed before back to their classes. parse*, unparse, pop, pop_raw, push_raw, payload,
-- data, packet and commit then allocate nothing (header objects come from their class's free
-- list); push(proto) needs a header object the caller made once. new() without a packet
-- allocates one from core.packet.
local ffi = require("ffi")
local packet = require("core.packet")
local subClass = require("lib.lua.class").subClass

local datagram = subClass(nil)
datagram._name = "datagram"
datagram.push_buffer_size = 512

local u8_ptr_t = ffi.typeof("uint8_t *")
local buffer_t = ffi.typeof("uint8_t[?]")
local box_t = ffi.typeof("struct packet *[1]")
local empty = {}

-- Gives the parsed headers back to their classes. Written out for the first 6 (a loop here would
-- be a trace of its own inside the caller's packet loop, and what is live across it allocated);
-- deeper stacks finish in a loop.
local function release (parse)
   local stack, n = parse.stack, parse.index
   parse.index = 0
   stack[1]:free(); stack[1] = nil
   if n < 2 then return end
   stack[2]:free(); stack[2] = nil
   if n < 3 then return end
   stack[3]:free(); stack[3] = nil
   if n < 4 then return end
   stack[4]:free(); stack[4] = nil
   if n < 5 then return end
   stack[5]:free(); stack[5] = nil
   if n < 6 then return end
   stack[6]:free(); stack[6] = nil
   for i = 7, n do
      stack[i]:free(); stack[i] = nil
   end
end

function datagram:new (p, class, options)
   options = options or empty
   local o = self
   -- An instance renewed (the per-packet call) does not go through the class library's new: one
   -- path here keeps that shared function's trace from branching per caller.
   if rawget(self, "_instance") then self._recycled = true else o = datagram:superClass().new(self) end
   if not o._recycled then
      o._parse = {stack = {}, index = 0, offset = 0}
      o._push = {buffer = buffer_t(datagram.push_buffer_size), offset = 0, size = 0}
      o._packet = box_t()
   elseif o._parse.index > 0 then
      release(o._parse)
   end
   o._offset = 0 -- bytes popped, not yet committed (delayed commit)
   o._parse.offset = 0
   o._parse.ulp = class
   o._push.offset = datagram.push_buffer_size
   o._push.size = 0
   o._delayed_commit = options.delayed_commit
   o._packet[0] = p or packet.allocate()
   return o
end

local function check_empty (self, what)
   if self._parse.index ~= 0 then
      error(("datagram:%s: %d parsed headers on the stack (pop them or use delayed_commit)"):format(
         what, self._parse.index), 3)
   end
end

function datagram:push (proto)
   self:push_raw(proto:header_ptr(), proto:sizeof())
end

function datagram:push_raw (data, length)
   if self._delayed_commit then
      local push = self._push
      if length > push.offset then
         error(("datagram:push_raw: %d bytes do not fit in the %d left of the push buffer"):format(
            length, push.offset), 2)
      end
      push.offset = push.offset - length
      push.size = push.size + length
      ffi.copy(push.buffer + push.offset, data, length)
   else
      check_empty(self, "push_raw")
      self._packet[0] = packet.prepend(self._packet[0], ffi.cast(u8_ptr_t, data), length)
      self._parse.offset = self._parse.offset + length
   end
end

-- Parses the next header as class (default: the upper layer of the last one parsed) and, when
-- check(proto) is given, keeps it only if check says true. The header, or nil (the packet and
-- stack unchanged).
function datagram:parse_match (class, check)
   local parse = self._parse
   class = class or parse.ulp
   if not class then return nil end
   local p = self._packet[0]
   local proto = class:new_from_mem(p.data + parse.offset, p.length - parse.offset)
   if proto == nil then return nil end
   if check and not check(proto) then
      proto:free()
      return nil
   end
   local index = parse.index + 1
   parse.stack[index] = proto
   parse.index = index
   parse.ulp = proto:upper_layer()
   parse.offset = parse.offset + proto:sizeof()
   return proto
end

-- seq: {{class, check}, ...} parsed in turn; the last header or nil. Without seq: parse_match().
function datagram:parse (seq)
   if not seq then return self:parse_match() end
   local proto
   for i = 1, #seq do
      proto = self:parse_match(seq[i][1], seq[i][2])
      if not proto then return nil end
   end
   return proto
end

-- The next n headers (default 1) by their upper layers; the last, or nil when fewer parse.
function datagram:parse_n (n)
   local proto
   for _ = 1, n or 1 do
      proto = self:parse_match()
      if not proto then return nil end
   end
   return proto
end

-- Undoes the last n parses: their headers go back to the payload.
function datagram:unparse (n)
   local parse = self._parse
   while n > 0 and parse.index > 0 do
      local proto = parse.stack[parse.index]
      parse.stack[parse.index] = nil
      parse.index = parse.index - 1
      parse.offset = parse.offset - proto:sizeof()
      parse.ulp = proto:class()
      proto:free()
      n = n - 1
   end
end

-- Removes the bottom n parsed headers from the packet.
function datagram:pop (n)
   local parse = self._parse
   if n > parse.index then
      error(("datagram:pop: %d headers asked, %d parsed"):format(n, parse.index), 2)
   end
   if not self._delayed_commit and n ~= parse.index then
      error(("datagram:pop: %d parsed headers on the stack above the %d popped (pop them all or"
             .. " use delayed_commit)"):format(parse.index - n, n), 2)
   end
   local bytes = 0
   local stack = parse.stack
   for i = 1, n do
      bytes = bytes + stack[i]:sizeof()
      stack[i]:free()
   end
   for i = 1, parse.index do stack[i] = stack[i + n] end
   parse.index = parse.index - n
   parse.offset = parse.offset - bytes
   if self._delayed_commit then
      self._offset = self._offset + bytes
      parse.offset = parse.offset + bytes
   else
      self._packet[0] = packet.shiftleft(self._packet[0], bytes)
   end
end

-- Removes length bytes from the start of the packet; ulp (a class) is what parses next.
function datagram:pop_raw (length, ulp)
   if self._delayed_commit then
      self._offset = self._offset + length
      self._parse.offset = self._parse.offset + length
   else
      check_empty(self, "pop_raw")
      self._packet[0] = packet.shiftleft(self._packet[0], length)
   end
   if ulp then self._parse.ulp = ulp end
end

-- The parsed headers, bottom first (the datagram's own table: read, do not keep).
function datagram:stack () return self._parse.stack end

function datagram:packet () return self._packet[0] end

-- Pointer to and length of what follows the parsed headers; with mem, appends size bytes of it
-- to the packet first.
function datagram:payload (mem, size)
   local p = self._packet[0]
   if mem then packet.append(p, ffi.cast(u8_ptr_t, mem), size) end
   return p.data + self._parse.offset, p.length - self._parse.offset
end

function datagram:data ()
   local p = self._packet[0]
   return p.data, p.length
end

-- Applies delayed pops and pushes to the packet (no parsed headers may be on the stack).
function datagram:commit ()
   if not self._delayed_commit then return end
   check_empty(self, "commit")
   local push, p = self._push, self._packet[0]
   if self._offset > 0 then p = packet.shiftleft(p, self._offset) end
   if push.size > 0 then p = packet.prepend(p, push.buffer + push.offset, push.size) end
   self._packet[0] = p
   self._parse.offset = self._parse.offset - self._offset + push.size
   self._offset = 0
   push.offset, push.size = datagram.push_buffer_size, 0
end

function datagram.selftest ()
   print("selftest: lib.protocol.datagram")
   local ethernet = require("lib.protocol.ethernet")
   local ipv6 = require("lib.protocol.ipv6")
   local udp = require("lib.protocol.udp")
   local eth = ethernet:new({src = ethernet:pton("02:00:00:00:00:01"),
                             dst = ethernet:pton("02:00:00:00:00:02"), type = 0x86dd})
   local ip = ipv6:new({src = ipv6:pton("2001:db8::1"), dst = ipv6:pton("2001:db8::2"),
                        next_header = 17, payload_length = 8 + 100})
   local u = udp:new({src_port = 1000, dst_port = 2000, length = 108})
   local data = ffi.new("uint8_t[100]")
   for i = 0, 99 do data[i] = i end

   -- Immediate commit: push from the innermost out, then parse them back.
   local d = datagram:new(packet.allocate())
   d:push(u); d:push(ip); d:push(eth)
   local _, n = d:payload(data, 100)
   assert(n == 100 and select(2, d:data()) == 14 + 40 + 8 + 100)
   local p = d:packet()
   d:new(p, ethernet)
   assert(d:parse():eq(eth) and d:parse():eq(ip) and d:parse():eq(u))
   local pl, pn = d:payload()
   assert(pn == 100 and pl[99] == 99 and #d:stack() == 3 and d:parse() == nil)
   -- parse with a check, unparse.
   d:new(p, ethernet)
   assert(d:parse({{ethernet}, {ipv6, function (h) return h:hop_limit() == 63 end}}) == nil)
   assert(d:parse_match(ipv6) and d:parse_n(1):dst_port() == 2000)
   d:unparse(2)
   assert(select(2, d:payload()) == 148 and d:parse_n(2):length() == 108)
   -- Popping with parsed headers above the popped ones is refused in immediate mode.
   local ok, err = pcall(d.pop, d, 1)
   assert(not ok and err:match("parsed headers on the stack") and #d:stack() == 3, err)
   d:unparse(1)
   d:pop(2)
   assert(select(2, d:data()) == 108 and d:parse_match(udp):src_port() == 1000)

   -- Delayed commit: swap the Ethernet header for another, pop IPv6/UDP is left as is.
   p = d:packet()
   local q = packet.allocate()
   d:new(q)
   d:push(u); d:push(ip); d:push(eth)
   q = d:packet()
   d:new(q, ethernet, {delayed_commit = true})
   local eth2 = ethernet:new({type = 0x86dd})
   d:push(eth2)
   assert(d:parse():eq(eth))
   d:pop(1)
   assert(d:parse():eq(ip))
   d:unparse(1)
   d:commit()
   assert(select(2, d:data()) == 14 + 40 + 8)
   d:new(d:packet(), ethernet)
   assert(d:parse():eq(eth2) and d:parse():eq(ip))
   packet.free(p)
   packet.free(d:packet())

   -- Renewing the datagram reuses its header objects: nothing allocated per packet.
   p = packet.allocate()
   d:new(p); d:push(u); d:push(ip); d:push(eth)
   p = d:packet()
   local function loop (times)
      local sum = 0
      for _ = 1, times do
         d:new(p, ethernet)
         d:parse_n(3)
         sum = sum + d:stack()[3]:dst_port()
      end
      return sum
   end
   loop(1000)
   collectgarbage("stop")
   local before = collectgarbage("count")
   assert(loop(100000) == 2000 * 100000)
   local grown = collectgarbage("count") - before
   collectgarbage("restart")
   -- The smallest GC object is 16 bytes, so one allocation per parse would show as 1.6 MB. Under
   -- 8 bytes per parse is only the JIT's own objects: a trace recompiled after an abort grew
   -- this by 83 KB in one CI run, which an absolute 64 KB limit failed on.
   assert(grown * 1024 < 8 * 100000, ("100,000 parses allocated %.0f KB"):format(grown))
   packet.free(p)
   print("selftest: ok")
end

return datagram
