-- lib.pf.parse_fuzz: one fuzz input as a pcap-filter expression through lib.pf.parse. It must
-- return a tree (lib/pf/AST.md: every node a table with a tag and a column inside the input) or
-- nil, a one-line message and a column from 1 to #input + 1; raising anything, or another
-- answer, is a finding. parse_fuzz.cc calls init once and one per input (0, or 1 for a finding).
local parse = require("lib.pf.parse")

local M = {}

function M.init () return 0 end

local function finding (input, what)
   io.stderr:write(("parse_fuzz: %q: %s\n"):format(input:sub(1, 200), what))
   return 1
end

-- The first fault of the tree x (nil if none): a node without a tag or with a column outside
-- 1..n, or a node seen twice.
local function fault (x, n, seen)
   if type(x.tag) ~= "string" then return "a node without a tag" end
   if type(x.col) ~= "number" or x.col % 1 ~= 0 or x.col < 1 or x.col > math.max(n, 1) then
      return ("node %s at column %s"):format(x.tag, tostring(x.col))
   end
   if seen[x] then return "a node twice in the tree" end
   seen[x] = true
   for k, v in pairs(x) do
      if type(v) == "table" and k ~= "bytes" then
         local f = fault(v, n, seen)
         if f then return f end
      end
   end
end

function M.one (input)
   local ok, tree, message, col = pcall(parse.parse, input)
   if not ok then return finding(input, "raised " .. tostring(tree)) end
   if tree ~= nil then
      if type(tree) ~= "table" then return finding(input, "returned " .. tostring(tree)) end
      local f = fault(tree, #input, {})
      if f then return finding(input, f) end
   elseif type(message) ~= "string" or message == "" or message:find("\n") then
      return finding(input, "message " .. tostring(message))
   elseif type(col) ~= "number" or col % 1 ~= 0 or col < 1 or col > #input + 1 then
      return finding(input, "column " .. tostring(col))
   end
   return 0
end

return M
