-- duet.coroutines.sharedtable: SharedTable, a table every task sees.
-- Tasks switch only when they block, so each read or write is atomic by
-- construction; update() forbids blocking in its function to stay atomic.
-- The contents live in a plain table behind the object, so every access
-- goes through the metamethods (and keys are checked like the C one does).
local check = require "duet.check"
local S = require "duet.coroutines.scheduler"

local setmetatable, type, next, error = setmetatable, type, next, error
local format = string.format

local DATA = {}     -- the object's key for its contents

local SharedTable = { __name = "duet.SharedTable" }
local methods = {}

local keytypes = { string = true, number = true, boolean = true }

local function check_key(fname, n, k)
  if not keytypes[type(k)] then
    check.argerror(fname, n, "string, number or boolean key expected, got "
      .. check.typename(k))
  end
  if k ~= k then check.argerror(fname, n, "key is NaN") end
end

-- Methods win over keys of the same name, as with the C object's methods.
function SharedTable.__index(self, k)
  local m = methods[k]
  if m ~= nil then return m end
  return self[DATA][k]
end

function SharedTable.__newindex(self, k, v)
  check_key("newindex", 2, k)
  self[DATA][k] = v
end

function SharedTable.__len(self)
  return #self[DATA]
end

-- Iterates a copy: a loop body that blocks while others change the table
-- neither breaks next() nor sees a half-changed table.
function SharedTable.__pairs(self)
  return next, methods.snapshot(self), nil
end

function SharedTable.__tostring(self)
  return format("duet.SharedTable: %p", self)
end

local M = {}

function M.SharedTable(init)
  check.opt_table("SharedTable", 1, init)
  local data = {}
  if init then
    for k, v in next, init do
      check_key("SharedTable", 1, k)
      data[k] = v
    end
  end
  return setmetatable({ [DATA] = data }, SharedTable)
end

function methods:incr(k, delta)
  check_key("incr", 1, k)
  delta = check.opt_number("incr", 2, delta, 1)
  local data = self[DATA]
  local v = data[k]
  if v == nil then
    v = 0
  elseif type(v) ~= "number" then
    check.argerror("incr", 1, format("value at key '%s' is a %s, not a number",
      tostring(k), check.typename(v)))
  end
  v = v + delta
  data[k] = v
  return v
end

function methods:update(k, fn)
  check_key("update", 1, k)
  check.func("update", 2, fn)
  local data = self[DATA]
  local ok, v = S.atomic(fn, data[k])
  if not ok then error(v, 0) end
  data[k] = v
  return v
end

function methods:snapshot()
  local copy = {}
  for k, v in next, self[DATA] do copy[k] = v end
  return copy
end

return M
