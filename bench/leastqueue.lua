-- leastqueue: the least Lua queue class, for the floors of B2 and of
-- make bench-instr: put and get methods over _items/_h/_t in a metatable,
-- no waiting, no checks. What any Lua queue pays, a method call per put
-- and per get, and nothing else.
local Q = {}
Q.__index = Q

function Q:put(item)
  local t = self._t + 1
  self._t = t
  self._items[t] = item
  return true
end

function Q:get()
  local h, t, items = self._h, self._t, self._items
  local item = items[h]
  items[h] = nil
  if h == t then self._h, self._t = 1, 0 else self._h = h + 1 end
  return item
end

return function()
  return setmetatable({ _items = {}, _h = 1, _t = 0 }, Q)
end
