-- duet.coroutines.sharedtable: SharedTable, a table every task sees.
-- Tasks switch only when they block, so each read or write is atomic by
-- construction; update() forbids blocking in its function to stay atomic.
--
-- The contents live in the object itself, so t[k], t[k] = v on a key that
-- exists, and #t are plain table accesses; the metatable checks new keys
-- (__newindex) and serves the methods (__index). A key named like a method
-- would hide it, so such keys sit in a side table instead: as with the C
-- object, t.incr is the method while pairs(t) and snapshot() show the key.
local check = require "duet.check"
local messages = require "duet.messages"
local S = require "duet.coroutines.scheduler"

local setmetatable, type, next, error, rawset, rawget, tostring =
  setmetatable, type, next, error, rawset, rawget, tostring
local format = string.format

local methods = {}
local SharedTable = { __name = "duet.SharedTable", __index = methods }
local hidden = setmetatable({}, { __mode = "k" })  -- [t] = {method-named keys}

local keytypes = { string = true, number = true, boolean = true }

local function check_key(fname, n, k)
  if not keytypes[type(k)] then
    check.argerror(fname, n, messages.key_type
      .. check.typename(k))
  end
  if k ~= k then check.argerror(fname, n, messages.key_nan) end
end

local function get(self, k)
  if methods[k] == nil then return rawget(self, k) end
  local h = hidden[self]
  return h and h[k]
end

local function set(self, k, v)
  if methods[k] == nil then return rawset(self, k, v) end
  local h = hidden[self]
  if not h then
    h = {}
    hidden[self] = h
  end
  h[k] = v
end

function SharedTable.__newindex(self, k, v)
  check_key("newindex", 2, k)
  set(self, k, v)
end

-- Iterates a copy: a loop body that blocks while others change the table
-- neither breaks next() nor sees a half-changed table.
function SharedTable.__pairs(self)
  return next, methods.snapshot(self), nil
end

-- "duet.SharedTable (size 2): 0x...", as on the threads runtime
function SharedTable.__tostring(self)
  local n = 0
  for _ in next, self do n = n + 1 end
  local h = hidden[self]
  if h then
    for _ in next, h do n = n + 1 end
  end
  return format("duet.SharedTable (size %d): %p", n, self)
end

local M = {}

function M.SharedTable(init)
  check.opt_table("SharedTable", 1, init)
  local self = setmetatable({}, SharedTable)
  if init then
    for k, v in next, init do
      check_key("SharedTable", 1, k)
      set(self, k, v)
    end
  end
  return self
end

function methods:incr(k, delta)
  check_key("incr", 1, k)
  delta = check.opt_number("incr", 2, delta, 1)
  local v = get(self, k)
  if v == nil then
    v = 0
  elseif type(v) ~= "number" then
    check.argerror("incr", 1, format(messages.not_a_number,
      tostring(k), check.typename(v)))
  end
  v = v + delta
  set(self, k, v)
  return v
end

function methods:update(k, fn)
  check_key("update", 1, k)
  check.func("update", 2, fn)
  local ok, v = S.atomic(fn, get(self, k))
  if not ok then error(v, 0) end
  set(self, k, v)
  return v
end

function methods:snapshot()
  local copy = {}
  for k, v in next, self do copy[k] = v end
  local h = hidden[self]
  if h then
    for k, v in next, h do copy[k] = v end
  end
  return copy
end

return M
