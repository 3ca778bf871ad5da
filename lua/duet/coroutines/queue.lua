-- duet.coroutines.queue: Queue (FIFO), LifoQueue and PriorityQueue.
--
-- Hand-offs never switch tasks by themselves. A put that finds a getter
-- waiting (so the queue is empty) hands it the item and marks it ready; a
-- get that frees room moves the first waiting putter's items in and marks
-- it ready. Either way the caller keeps running until it has to block, so a
-- producer fills the queue for many items per switch. Waiters are served in
-- FIFO order and a waiter that times out or is cancelled has moved nothing.
local core = require "duet.core"
local check = require "duet.check"
local messages = require "duet.messages"
local S = require "duet.coroutines.scheduler"
local NEXT <const> = 2   -- a wait list's first waiter (scheduler.lua)
local class = require "duet.coroutines.class"

local setmetatable, type, error, huge = setmetatable, type, error, math.huge
local unpack = table.unpack
local cancelled = core.cancelled
local list, suspend, deadline, take_val = S.list, S.suspend, S.deadline,
  S.take_val
local wake_first, wake_all, wake, current = S.wake_first, S.wake_all, S.wake,
  S.current
local WOKEN, TIMEDOUT = S.WOKEN, S.TIMEDOUT
local s_get_wait = S.get_wait
local timeout_check, argerror = check.timeout, check.argerror

local CLOSED = {}   -- handed to waiters released by close()
local COMPACT = 4096

local M = {}

-- Items held: LifoQueue and PriorityQueue count them in _n; Queue has no
-- _n (one write less per put and get) and counts its live index range.
local function count(self)
  return self._n or self._t - self._h + 1
end

-- "size 3/10, putters 2, closed": waiters in line shown when there are any
local function describe(self)
  local n = count(self)
  local s = self.maxsize > 0 and ("size %d/%d"):format(n, self.maxsize)
    or ("size %d"):format(n)
  local getters, putters = S.waiters(self._getters), S.waiters(self._putters)
  if getters > 0 then s = s .. ", getters " .. getters end
  if putters > 0 then s = s .. ", putters " .. putters end
  return self._closed and s .. ", closed" or s
end

local Queue = class.new("duet.Queue", describe)
local LifoQueue = class.new("duet.LifoQueue", describe)
local PriorityQueue = class.new("duet.PriorityQueue", describe)

-- Fields: maxsize (public, read-only: it lives in the queue's metatable,
-- see class.with_field); _n items held (see count); _cap the limit puts check
-- (huge when unbounded, -1 once closed, so one comparison covers both);
-- _getters, _putters, _joiners wait lists; _unfinished for task_done/join.
local function new(fname, cls, maxsize, fields)
  maxsize = check.opt_integer(fname, 1, maxsize, 0)
  if maxsize < 0 then maxsize = 0 end
  fields._cap = maxsize > 0 and maxsize or huge
  fields._closed = false
  fields._unfinished = 0
  fields._getters = list()
  fields._putters = list()
  fields._joiners = list()
  return setmetatable(fields, class.with_field(cls, "maxsize", maxsize))
end

function M.Queue(maxsize)
  return new("Queue", Queue, maxsize, { _items = {}, _h = 1, _t = 0 })
end

function M.LifoQueue(maxsize)
  return new("LifoQueue", LifoQueue, maxsize, { _items = {}, _n = 0 })
end

function M.PriorityQueue(maxsize)
  return new("PriorityQueue", PriorityQueue, maxsize,
    { _items = {}, _keys = {}, _seqs = {}, _seq = 0, _n = 0 })
end

------------------------------------------------------------------ storage
-- Each class: _push(item) and _pop() on a queue known to have room / items.

-- FIFO: items[_h.._t]; indexes restart at 1 whenever it empties, and the
-- live part moves back to 1 when the dead prefix outgrows it, so the table
-- keeps its array part.
local function compact(self)
  local items, h, t = self._items, self._h, self._t
  table.move(items, h, t, 1)
  for i = h, t do items[i] = nil end   -- h > live count: no overlap
  self._h, self._t = 1, t - h + 1
end

function Queue:_push(item)
  local h, t = self._h, self._t + 1
  if t > COMPACT and h + h > t then
    compact(self)
    t = self._t + 1
  end
  self._t = t
  self._items[t] = item
end

function Queue:_pop()
  local h, items = self._h, self._items
  local item = items[h]
  items[h] = nil
  if h == self._t then self._h, self._t = 1, 0 else self._h = h + 1 end
  return item
end

function LifoQueue:_push(item)
  local n = self._n + 1
  self._n = n
  self._items[n] = item
end

function LifoQueue:_pop()
  local n, items = self._n, self._items
  local item = items[n]
  items[n] = nil
  self._n = n - 1
  return item
end

-- Priority: a binary heap over three parallel arrays (item, priority key,
-- arrival number); lowest key first, FIFO among equal keys. Numbers order
-- before strings, so mixed keys never raise mid-heap.
local function before(ka, sa, kb, sb)
  if ka == kb then return sa < sb end
  local ta, tb = type(ka), type(kb)
  if ta == tb then return ka < kb end
  return ta == "number"
end

local function keyof(item)
  if type(item) == "table" then return item[1] end
  return item
end

-- Refuse an item PriorityQueue cannot order (before anything changes).
local function check_priority(fname, n, item)
  local key, t = item, type(item)
  if t == "table" and check.is_plain_table(item) then
    key = item[1]
    t = type(key)
    if t ~= "number" and t ~= "string" then
      argerror(fname, n, "priority (item[1]) must be a number or a string, got "
        .. check.typename(key))
    end
  elseif t ~= "number" and t ~= "string" then
    argerror(fname, n, messages.priority_type
      .. check.typename(item))
  end
  if key ~= key then argerror(fname, n, messages.priority_nan) end
end

function PriorityQueue:_push(item)
  local items, keys, seqs = self._items, self._keys, self._seqs
  local key, seq = keyof(item), self._seq + 1
  local i = self._n + 1
  self._n, self._seq = i, seq
  while i > 1 do
    local p = i // 2
    if not before(key, seq, keys[p], seqs[p]) then break end
    items[i], keys[i], seqs[i] = items[p], keys[p], seqs[p]
    i = p
  end
  items[i], keys[i], seqs[i] = item, key, seq
end

function PriorityQueue:_pop()
  local items, keys, seqs = self._items, self._keys, self._seqs
  local n = self._n
  local top = items[1]
  local item, key, seq = items[n], keys[n], seqs[n]
  items[n], keys[n], seqs[n] = nil, nil, nil
  n = n - 1
  self._n = n
  if n > 0 then
    local i = 1
    while true do
      local c = i * 2
      if c > n then break end
      if c < n and before(keys[c + 1], seqs[c + 1], keys[c], seqs[c]) then
        c = c + 1
      end
      if not before(keys[c], seqs[c], key, seq) then break end
      items[i], keys[i], seqs[i] = items[c], keys[c], seqs[c]
      i = c
    end
    items[i], keys[i], seqs[i] = item, key, seq
  end
  return top
end

-------------------------------------------------------------- waiting

-- Move the first waiting putters' items in while they fit, in order.
local function refill(self)
  local putters = self._putters
  local th = putters[NEXT]
  while th do
    local need = th._need
    if count(self) + need > self._cap then return end
    local v = th._val
    if need == 1 then
      self:_push(v)
    else
      for i = 1, need do self:_push(v[i]) end
    end
    self._unfinished = self._unfinished + need
    wake(th, true)
    th = putters[NEXT]
  end
end

-- Wait for room for `need` items; `v` is the item, or the list of them.
-- (`fname` names the call, for the error when it cannot block here.)
local function put_wait(self, fname, v, need, timeout)
  if self._closed then check.error(messages.put_closed) end
  if timeout == 0 then return nil, "full" end
  S.check_block(self, fname)
  local th = current()
  th._val, th._need = v, need
  local why = suspend(self._putters, deadline(timeout))
  th._val = false
  if why == WOKEN then
    if take_val() == CLOSED then check.error(messages.put_closed) end
    return true
  end
  if why == TIMEDOUT then return nil, "full" end
  error(cancelled)
end

-- Wait for an item (handed over directly by a put).
-- (A tail call of S.get_wait: a blocked getter holds no frame of this.)
local function get_wait(self, fname, timeout)
  if self._closed then return nil, "closed" end
  if timeout == 0 then return nil, "empty" end
  return s_get_wait(self._getters, deadline(timeout), self, fname, CLOSED)
end

local function nil_item(fname)
  argerror(fname, 1, messages.non_nil)
end

---------------------------------------------------------------- put / get

-- The generic forms, over _push/_pop.
local function put(self, item, timeout)
  if item == nil then nil_item("put") end
  if timeout ~= nil then timeout = timeout_check("put", 2, timeout) end
  if self._n >= self._cap then return put_wait(self, "put", item, 1, timeout) end
  if not wake_first(self._getters, item) then self:_push(item) end
  self._unfinished = self._unfinished + 1
  return true
end

local function get(self, timeout)
  if timeout ~= nil then timeout = timeout_check("get", 1, timeout) end
  if self._n == 0 then return get_wait(self, "get", timeout) end
  local item = self:_pop()
  if self._putters[NEXT] then refill(self) end
  return item
end

LifoQueue.put, LifoQueue.get, PriorityQueue.get = put, get, get

function PriorityQueue:put(item, timeout)
  if item == nil then nil_item("put") end
  check_priority("put", 1, item)
  return put(self, item, timeout)
end

function PriorityQueue:put_nowait(item)
  if item == nil then nil_item("put_nowait") end
  check_priority("put_nowait", 1, item)
  return put(self, item, 0)
end

-- Queue's own put/get: the same, with the FIFO storage written inline. A
-- getter can only be waiting while the queue is empty, so a put into a
-- non-empty queue does not even look.
function Queue:put(item, timeout)
  if item == nil then nil_item("put") end
  if timeout ~= nil then timeout = timeout_check("put", 2, timeout) end
  local h, t = self._h, self._t
  local n = t - h + 1
  if n >= self._cap then return put_wait(self, "put", item, 1, timeout) end
  if n == 0 then
    local getters = self._getters
    if getters[NEXT] then
      wake_first(getters, item)
      self._unfinished = self._unfinished + 1
      return true
    end
  end
  t = t + 1
  if t > COMPACT and h > n then
    compact(self)
    t = self._t + 1
  end
  self._t = t
  self._items[t] = item
  self._unfinished = self._unfinished + 1
  return true
end

function Queue:get(timeout)
  if timeout ~= nil then timeout = timeout_check("get", 1, timeout) end
  local h, t = self._h, self._t
  if h > t then return get_wait(self, "get", timeout) end
  local items = self._items
  local item = items[h]
  items[h] = nil
  if h == t then self._h, self._t = 1, 0 else self._h = h + 1 end
  if self._putters[NEXT] then refill(self) end
  return item
end

------------------------------------------------------------ the rest, shared

local methods = {}

function methods:put_nowait(item)
  if item == nil then nil_item("put_nowait") end
  return self:put(item, 0)
end

function methods:get_nowait()
  return self:get(0)
end

-- put_many's checks, all before anything changes. Returns the count of
-- items and the timeout.
local function check_many(self, items, timeout)
  check.table("put_many", 1, items)
  timeout = timeout_check("put_many", 2, timeout)
  local n = check.list_len("put_many", 1, items)
  local prio = self._keys ~= nil   -- only a PriorityQueue has priority keys
  for i = 1, n do
    local item = items[i]
    if item == nil then argerror("put_many", 1, messages.nil_item_at .. i) end
    if prio then check_priority("put_many", 1, item) end
  end
  if self.maxsize > 0 and n > self.maxsize then
    argerror("put_many", 1, messages.over_maxsize)
  end
  if self._closed then check.error(messages.put_closed) end
  return n, timeout
end

-- put_many when there is no room yet (or others wait first).
local function put_many_wait(self, items, n, timeout)
  if n == 1 then return put_wait(self, "put_many", items[1], 1, timeout) end
  return put_wait(self, "put_many", { unpack(items, 1, n) }, n, timeout)
end

-- All or nothing: either every item goes in, in order, or none does.
function methods:put_many(items, timeout)
  local n
  n, timeout = check_many(self, items, timeout)
  if n == 0 then return true end
  if count(self) + n > self._cap or self._putters[NEXT] then
    return put_many_wait(self, items, n, timeout)
  end
  local getters, i = self._getters, 1
  while i <= n and wake_first(getters, items[i]) do i = i + 1 end
  for j = i, n do self:_push(items[j]) end
  self._unfinished = self._unfinished + n
  return true
end

-- 1..max items in queue order, waiting (up to timeout) only for the first.
function methods:get_many(max, timeout)
  max = check.integer("get_many", 1, max)
  if max < 1 then argerror("get_many", 1, messages.max_at_least_1) end
  timeout = timeout_check("get_many", 2, timeout)
  local out, k = {}, 0
  if count(self) == 0 then
    local item, why = get_wait(self, "get_many", timeout)
    if item == nil then return nil, why end
    out[1], k = item, 1
  end
  while k < max and count(self) > 0 do
    k = k + 1
    out[k] = self:_pop()
  end
  if self._putters[NEXT] then refill(self) end
  return out
end

-- Queue's own batches, with the FIFO storage written inline (plain loops:
-- table.move goes through the C API per item and is slower here).

function Queue:put_many(items, timeout)
  local n
  n, timeout = check_many(self, items, timeout)
  if n == 0 then return true end
  local h, t = self._h, self._t
  local held = t - h + 1
  if held + n > self._cap or self._putters[NEXT] then
    return put_many_wait(self, items, n, timeout)
  end
  local i = 1
  if held == 0 then
    local getters = self._getters
    while i <= n and wake_first(getters, items[i]) do i = i + 1 end
  end
  if i <= n then
    if t + n > COMPACT and h > held then
      compact(self)
      t = self._t
    end
    local dst = self._items
    for j = i, n do
      t = t + 1
      dst[t] = items[j]
    end
    self._t = t
  end
  self._unfinished = self._unfinished + n
  return true
end

function Queue:get_many(max, timeout)
  max = check.integer("get_many", 1, max)
  if max < 1 then argerror("get_many", 1, messages.max_at_least_1) end
  timeout = timeout_check("get_many", 2, timeout)
  local h, t = self._h, self._t
  local first
  if h > t then
    local why
    first, why = get_wait(self, "get_many", timeout)
    if first == nil then return nil, why end
    max = max - 1
    h, t = self._h, self._t
  end
  local k = t - h + 1
  if k > max then k = max end
  local out
  if k <= 0 then
    out = { first }
  else
    local items, last = self._items, h + k - 1
    if k > 4096 then     -- too many for unpack's stack
      out = { first }
      local o = #out
      for j = h, last do
        o = o + 1
        out[o] = items[j]
      end
    elseif first == nil then
      out = { unpack(items, h, last) }
    else
      out = { first, unpack(items, h, last) }
    end
    for j = h, last do items[j] = nil end
    if last == t then self._h, self._t = 1, 0 else self._h = last + 1 end
  end
  if self._putters[NEXT] then refill(self) end
  return out
end

function methods:size()
  return count(self)
end

function methods:empty()
  return count(self) == 0
end

function methods:full()
  return self.maxsize > 0 and count(self) >= self.maxsize
end

function methods:task_done()
  local u = self._unfinished
  if u <= 0 then check.error(messages.task_done) end
  self._unfinished = u - 1
  if u == 1 then wake_all(self._joiners) end
end

function methods:join(timeout)
  timeout = timeout_check("join", 1, timeout)
  if self._unfinished == 0 then return true end
  if timeout == 0 then return false end
  return S.block(self._joiners, deadline(timeout), self, "join")
end

-- No more puts. Waiting putters raise; waiting getters (the queue is empty,
-- or they would not wait) get nil, "closed"; later getters drain first.
function methods:close()
  if self._closed then return end
  self._closed = true
  self._cap = -1
  wake_all(self._getters, CLOSED)
  wake_all(self._putters, CLOSED)
end

-- close(); immediate also discards what is queued, each item counted as
-- done for join. (A getter handed an item already has it: no task switch
-- comes between a hand-off and the get that receives it.)
function methods:shutdown(immediate)
  if immediate ~= nil and type(immediate) ~= "boolean" then
    argerror("shutdown", 1, "boolean expected, got " .. check.typename(immediate))
  end
  self:close()
  if immediate then
    local n = count(self)
    while count(self) > 0 do self:_pop() end
    local u = self._unfinished
    if u > 0 and n > 0 then
      u = n < u and u - n or 0
      self._unfinished = u
      if u == 0 then wake_all(self._joiners) end
    end
  end
end

function methods:is_shutdown()
  return self._closed
end

local function next_item(self)
  return (self:get())
end

function methods:iter()
  return next_item, self
end

-- Shared methods, where a class has no faster one of its own.
for _, cls in ipairs({ Queue, LifoQueue, PriorityQueue }) do
  for k, f in pairs(methods) do
    if cls[k] == nil then cls[k] = f end
  end
end

return M
