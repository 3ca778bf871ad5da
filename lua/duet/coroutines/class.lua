-- Metatables for the coroutines runtime's objects: a readable __name (shown
-- by argument errors, as for the C objects), a __tostring in the C style,
-- "duet.Queue (size 3/10): 0x55d0c8a1f2e0", and fields that cannot be
-- assigned, as on the threads runtime.
local check = require "duet.check"
local messages = require "duet.messages"

local format, tostring, getmetatable, rawget, next, setmetatable =
  string.format, tostring, getmetatable, rawget, next, setmetatable

local M = {}

-- Refuse obj[k] = v with the threads runtime's messages: a key that reads as
-- something (a field, a method), or that the metatable's __fields lists
-- (fields that read nil in some states), is a read-only field; any other
-- names no field. Objects keep their own state in fields made when they
-- are, so every assignment that reaches here is the user's.
function M.refuse(obj, k)
  local mt = getmetatable(obj)
  local fields = rawget(mt, "__fields")
  if (fields and fields[k]) or obj[k] ~= nil then
    check.error(format(messages.read_only, tostring(k)))
  end
  check.error(format(messages.no_field, tostring(k),
    rawget(mt, "__name")))
end
local refuse = M.refuse

-- For objects that are plain tables keeping their state in "_" fields,
-- some made after construction: those are stored; any other name is
-- refused as by refuse.
function M.refuse_public(obj, k, v)
  if type(k) == "string" and k:byte(1) == 95 then return rawset(obj, k, v) end
  refuse(obj, k)
end

-- A metatable named `name` that is also its own method table. `describe`,
-- if given, returns the text shown in parentheses.
function M.new(name, describe)
  local class = { __name = name, __newindex = refuse }
  class.__index = class
  if describe then
    function class.__tostring(self)
      return format("%s (%s): %p", name, describe(self), self)
    end
  else
    function class.__tostring(self)
      return format("%s: %p", name, self)
    end
  end
  return class
end

-- The metatable for the objects of `class` whose field `key` reads `value`
-- for ever (a queue's maxsize): a copy of `class` that also holds the field,
-- so it reads at the speed of a method and an assignment to it reaches
-- __newindex. One copy per value, kept while objects use it.
local copies = setmetatable({}, { __mode = "k" })  -- [class] = {[value] = mt}

function M.with_field(class, key, value)
  local byvalue = copies[class]
  if not byvalue then
    byvalue = setmetatable({}, { __mode = "v" })
    copies[class] = byvalue
  end
  local mt = byvalue[value]
  if not mt then
    mt = {}
    for k, v in next, class do mt[k] = v end
    mt.__index = mt
    mt[key] = value
    byvalue[value] = mt
  end
  return mt
end

return M
