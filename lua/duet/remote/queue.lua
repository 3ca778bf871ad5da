-- duet.remote.queue: rt.RemoteQueue{redis = url, name = s [, maxsize,
-- visibility_timeout]}, a FIFO queue that processes on any host share.
--   duet:{NAME}:items     stream of packed items, consumer group "getters"
--   duet:{NAME}:closed    set once closed
--   duet:{NAME}:getters   counter naming the getters
--   duet:{NAME}:dead      items no getter could read (bytes not made by
--                         the portable codec), with the reason
-- A get reads with XREADGROUP, then acknowledges and deletes what it read.
-- A getter that dies between the two leaves the item pending in the group,
-- and the next get anywhere takes it over once it has been pending for
-- visibility_timeout seconds (XAUTOCLAIM): nothing is lost. Puts are
-- checked against maxsize and the closed flag in one server-side script.
-- A get blocks in Redis (XREADGROUP BLOCK) in slices of at most half a
-- second, so that it notices a close made meanwhile.
local rc = require "duet.redis_core"
local check = require "duet.check"
local messages = require "duet.messages"
local P = require "duet.remote.protocol"

local rpack, runpack = rc.pack, rc.unpack
local unpack = table.unpack

local M = {}
local GROUP = "getters"

-- KEYS: items, closed; ARGV: maxsize, packed items. Returns "closed",
-- "full" or the number of items added.
M.PUT = [=[
if redis.call('EXISTS', KEYS[2]) == 1 then return 'closed' end
local max = tonumber(ARGV[1])
if max > 0 and redis.call('XLEN', KEYS[1]) + #ARGV - 1 > max then return 'full' end
for i = 2, #ARGV do redis.call('XADD', KEYS[1], '*', 'v', ARGV[i]) end
return #ARGV - 1
]=]

local RemoteQueue = { __name = "duet.RemoteQueue" }
local methods = {}
-- q.maxsize reads; no field can be assigned (as on every duet object)
function RemoteQueue.__index(q, k)
  if k == "maxsize" then return rawget(q, "_maxsize") end
  return methods[k]
end
function RemoteQueue.__newindex(_, k)
  check.error(messages.read_only:format(tostring(k)))
end

function M.RemoteQueue(rt, opts)
  check.table("RemoteQueue", 1, opts)
  local url = P.url_field("RemoteQueue", opts)
  local name = P.string_field("RemoteQueue", opts, "name")
  local maxsize = opts.maxsize or 0
  if math.type(maxsize) ~= "integer" then
    maxsize = check.integral(maxsize) or check.argerror("RemoteQueue", 1,
      "field 'maxsize': integer expected, got " .. check.typename(maxsize))
  end
  local vt = opts.visibility_timeout or 30
  if type(vt) ~= "number" or not (vt > 0) then
    check.argerror("RemoteQueue", 1, "field 'visibility_timeout': positive number expected")
  end
  local p = "duet:{" .. name .. "}:"
  local conn = P.connection(url, rt)
  local ok, err = pcall(conn.call, conn, "XGROUP", "CREATE", p .. "items", GROUP, "0", "MKSTREAM")
  if not ok and not tostring(err):find("BUSYGROUP", 1, true) then error(err, 0) end
  return setmetatable({
    _rt = rt, _url = url, _name = name, _maxsize = maxsize > 0 and maxsize or 0,
    _items = p .. "items", _closed = p .. "closed", _dead = p .. "dead",
    _vt_ms = math.ceil(vt * 1000),
    _consumer = "getter-" .. conn:call("INCR", p .. "getters"),
  }, RemoteQueue)
end

-- No size here: __tostring cannot wait for Redis (a coroutines task may
-- not suspend inside tostring).
function RemoteQueue:__tostring()
  return ("duet.RemoteQueue (%s%s): %s"):format(self._name,
    self._maxsize > 0 and ", maxsize " .. self._maxsize or "", self._url)
end

local function conn(self) return P.connection(self._url, self._rt) end

local function opt_timeout(fname, n, timeout)
  if timeout == nil then return nil end
  return check.timeout(fname, n, timeout)
end

-- Put packed items, waiting for room until deadline dl (nil: forever).
local function put_packed(self, packed, dl)
  local rt, delay = self._rt, 0.005
  local c = conn(self)
  while true do
    local r = c:eval(M.PUT, { self._items, self._closed }, { self._maxsize, unpack(packed) })
    if r == "closed" then check.error(messages.put_closed) end
    if r ~= "full" then return true end
    local now = rt.now()
    if dl and now >= dl then return nil, "full" end
    rt.sleep(dl and math.min(delay, dl - now) or delay)
    delay = math.min(delay * 2, 0.1)
  end
end

local function pack_item(fname, n, item)
  if item == nil then check.argerror(fname, n, messages.non_nil) end
  local ok, s = pcall(rpack, item)
  if not ok then check.argerror(fname, n, s) end
  return s
end

--- q:put(item [, timeout]) -> true, or nil, "full"
function methods:put(item, timeout)
  local s = pack_item("put", 1, item)
  timeout = opt_timeout("put", 2, timeout)
  return put_packed(self, { s }, timeout and self._rt.now() + timeout)
end

function methods:put_nowait(item)
  return self:put(item, 0)
end

--- q:put_many(list [, timeout]) -> true, or nil, "full" (all or nothing)
function methods:put_many(list, timeout)
  check.table("put_many", 1, list)
  timeout = opt_timeout("put_many", 2, timeout)
  local n = check.list_len("put_many", 1, list)
  if n == 0 then   -- nothing to put, but a closed queue refuses even that
    if conn(self):call("EXISTS", self._closed) == 1 then
      check.error(messages.put_closed)
    end
    return true
  end
  if self._maxsize > 0 and n > self._maxsize then
    check.argerror("put_many", 1, messages.over_maxsize)
  end
  local packed = {}
  for i = 1, n do
    if list[i] == nil then check.argerror("put_many", 1, messages.nil_item_at .. i) end
    packed[i] = pack_item("put_many", 1, list[i])
  end
  return put_packed(self, packed, timeout and self._rt.now() + timeout)
end

-- Take up to max entries: first any that a dead getter left pending, then
-- new ones, waiting until deadline dl. Acknowledged and deleted at once.
local function take(self, max, dl)
  local rt, c = self._rt, conn(self)
  while true do
    local r = c:call("XAUTOCLAIM", self._items, GROUP, self._consumer, self._vt_ms,
      "0-0", "COUNT", max)
    local entries = r[2]
    if #entries == 0 then
      local left = dl and dl - rt.now()
      local args = { "XREADGROUP", "GROUP", GROUP, self._consumer, "COUNT", max }
      if left == nil or left > 0 then
        args[#args + 1] = "BLOCK"
        args[#args + 1] = math.max(1, math.floor(math.min(left or 0.5, 0.5) * 1000))
      end
      args[#args + 1] = "STREAMS"
      args[#args + 1] = self._items
      args[#args + 1] = ">"
      local got = c:call(unpack(args))
      entries = got and got[1] and got[1][2] or {}
    end
    if #entries > 0 then
      local ids, items, cmds = {}, {}, {}
      for i, e in ipairs(entries) do
        ids[i] = e[1]
        local f = P.fields(e[2])
        local ok, v = pcall(runpack, f.v or "")
        if ok then
          items[#items + 1] = v
        else
          -- it would fail in every getter: set it aside, keep the queue going
          cmds[#cmds + 1] = { "XADD", self._dead, "*", "v", f.v or "",
            "error", tostring(v), "entry", e[1] }
        end
      end
      cmds[#cmds + 1] = { "XACK", self._items, GROUP, unpack(ids) }
      cmds[#cmds + 1] = { "XDEL", self._items, unpack(ids) }
      c:pipeline(cmds)
      if #items > 0 then return items end
    else
      if c:call("EXISTS", self._closed) == 1 and c:call("XLEN", self._items) == 0 then
        return nil, "closed"
      end
      if dl and rt.now() >= dl then return nil, "empty" end
    end
  end
end

--- q:get([timeout]) -> item, or nil, "empty" / nil, "closed"
function methods:get(timeout)
  timeout = opt_timeout("get", 1, timeout)
  local items, why = take(self, 1, timeout and self._rt.now() + timeout)
  if not items then return nil, why end
  return items[1]
end

function methods:get_nowait()
  return self:get(0)
end

--- q:get_many(max [, timeout]) -> list of 1..max items, or nil, reason
function methods:get_many(max, timeout)
  max = check.integer("get_many", 1, max)
  if max < 1 then check.argerror("get_many", 1, messages.max_at_least_1) end
  timeout = opt_timeout("get_many", 2, timeout)
  return take(self, max, timeout and self._rt.now() + timeout)
end

--- q:size() -> items waiting (and being handed over)
function methods:size()
  return conn(self):call("XLEN", self._items)
end

function methods:empty() return self:size() == 0 end

function methods:full()
  return self._maxsize > 0 and self:size() >= self._maxsize
end

--- q:close(): no more puts anywhere; getters drain, then get nil, "closed"
function methods:close()
  conn(self):call("SET", self._closed, "1")
end

--- for item in q:iter() do ... end
function methods:iter()
  return function()
    return (self:get())
  end
end

return M
