-- lib.lua.class: Snabb's small object system, which Snabb's protocol headers (lib.protocol.*),
-- hashes and shmem classes are built on: `subClass(base)` (a global, as Snabb sets it) makes a
-- class; `class:new()` makes an instance or recycles one that `instance:free()` gave back;
-- `instance:new()` reuses the instance itself. Our own, compiled in; programs/main.lua loads it
-- at start-up so the global is there before any module runs.
--
-- Semantics Snabb code relies on:
--   - an instance looks its methods up in its class, a class in its base (`__index` chains);
--   - a recycled instance (from the free list, or `instance:new()`) has `_recycled = true`, a
--     fresh one `_recycled = false`, so a constructor can skip what the instance already has;
--   - `class:class()` is the class a method was defined for, `class:superClass()` its base
--     (methods call the base's as `class:superClass().method(self, ...)`);
--   - `instance:name()` is the class's `_name`.
local M = {}

-- The root of every class: new, free and name. It has no instances of its own.
local root = {_name = "elementary class"}
M.elementaryClass = root

function root:new ()
   assert(self ~= root, "Can't instantiate abstract class elementaryClass")
   if rawget(self, "_instance") then -- an instance made new again
      self._recycled = true
      return self
   end
   local free = self._freelist
   if free.index > 0 then
      local instance = free.list[free.index]
      free.list[free.index] = nil
      free.index = free.index - 1
      instance._recycled = true
      return instance
   end
   return setmetatable({_recycled = false, _instance = true}, self._instance_mt)
end

function root:name ()
   return self._name
end

-- Gives the instance back to its class for a later new().
function root:free ()
   local free = self:class()._freelist
   free.index = free.index + 1
   free.list[free.index] = self
end

-- A class deriving from base (the root when nil).
function M.subClass (base)
   base = base or root
   local class = {_freelist = {index = 0, list = {}}}
   class._instance_mt = {__index = class}
   function class.class () return class end
   function class.superClass () return base end
   return setmetatable(class, {__index = base})
end

_G.subClass = M.subClass

function M.selftest ()
   print("selftest: lib.lua.class")
   local subClass = _G.subClass -- the global Snabb code calls
   assert(subClass == M.subClass)
   local ok, err = pcall(root.new, root)
   assert(not ok and err:match("abstract"), err)
   local shape = subClass()
   shape._name = "shape"
   function shape:new (sides)
      local o = shape:superClass().new(self)
      o.sides = sides
      return o
   end
   function shape:area () return 0 end
   local square = subClass(shape)
   square._name = "square"
   function square:new (side)
      local o = square:superClass().new(self, 4)
      o.side = side
      return o
   end
   function square:area () return self.side ^ 2 end
   assert(square:superClass() == shape and shape:superClass() == root and square:class() == square)
   local s = square:new(3)
   assert(s.sides == 4 and s:area() == 9 and s:name() == "square" and s._recycled == false)
   assert(s:class() == square and shape:new(5):area() == 0)
   -- Freed instances come back (last freed first), marked recycled; other classes keep theirs.
   local t = square:new(2)
   s:free(); t:free()
   local u = shape:new(3)
   assert(u ~= s and u ~= t and u._recycled == false)
   assert(square:new(7) == t and t._recycled and t.side == 7)
   assert(square:new(8) == s and square:new(1) ~= s)
   -- An instance's new() renews it in place.
   assert(s:new(5) == s and s._recycled and s.side == 5)
   print("selftest: lib.lua.class ok")
end

return M
