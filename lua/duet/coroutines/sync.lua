-- duet.coroutines.sync: Lock, RLock, Semaphore, BoundedSemaphore,
-- Condition, Event and Barrier.
--
-- Releasing hands ownership straight to the first waiter (FIFO), so a woken
-- waiter never has to compete again, and a wait that times out or is
-- cancelled has taken nothing.
local core = require "duet.core"
local check = require "duet.check"
local messages = require "duet.messages"
local S = require "duet.coroutines.scheduler"
local NEXT <const> = 2   -- a wait list's first waiter (scheduler.lua)
local class = require "duet.coroutines.class"

local setmetatable, getmetatable, rawget, error, pcall = setmetatable,
  getmetatable, rawget, error, pcall
local cancelled, broken_barrier = core.cancelled, core.broken_barrier
local maxinteger = math.maxinteger
local list, block, suspend, deadline = S.list, S.block, S.suspend, S.deadline
local wake_first, wake_all, current = S.wake_first, S.wake_all, S.current
local WOKEN, TIMEDOUT = S.WOKEN, S.TIMEDOUT

local M = {}

------------------------------------------------- with() and guard() for all

local Guard = { __name = "duet.Guard", __newindex = class.refuse }
Guard.__index = Guard
function Guard:__close()
  self[1]:release()
end

-- Shared by every lock-like class: acquire, run fn, always release.
local function with_done(self, ok, ...)
  self:release()
  if ok then return ... end
  error((...), 0)
end

local function with(self, fn, ...)
  check.func("with", 1, fn)
  self:acquire()
  return with_done(self, pcall(fn, ...))
end

-- One guard per object, made on first use: guard() allocates nothing.
local function guard(self)
  self:acquire()
  local g = self._guard
  if not g then
    g = setmetatable({ self }, Guard)
    self._guard = g
  end
  return g
end

local function lockable(name, describe)
  local c = class.new(name, describe)
  c.with, c.guard = with, guard
  return c
end

-------------------------------------------------------------------- Lock

local Lock = lockable("duet.Lock", function(self)
  return self._locked and "locked" or "unlocked"
end)

function M.Lock()
  return setmetatable({ _locked = false, _waiters = list(), _guard = false }, Lock)
end

local function lock_wait(self, timeout)
  if timeout == 0 then return false end
  -- woken: handed the lock
  return block(self._waiters, deadline(timeout), self, "acquire")
end

function Lock:acquire(timeout)
  if timeout ~= nil then timeout = check.timeout("acquire", 1, timeout) end
  if not self._locked then
    self._locked = true
    return true
  end
  return lock_wait(self, timeout)
end

function Lock:release()
  if not self._locked then check.error(messages.release_unlocked) end
  -- with waiters the lock stays locked: it now belongs to the first one
  local waiters = self._waiters
  if waiters[NEXT] then wake_first(waiters) else self._locked = false end
end

function Lock:locked()
  return self._locked
end

-- For Condition: a plain Lock counts as owned by whoever sees it locked.
function Lock:_is_owned()
  return self._locked
end

function Lock:_release_save()
  self:release()
end

function Lock:_acquire_restore()
  if self._locked then S.suspend_nocancel(self._waiters)
  else self._locked = true end
end

-------------------------------------------------------------------- RLock

local RLock = lockable("duet.RLock", function(self)
  local owner = self._owner
  if not owner then return "unlocked" end
  return ("owner %d, count %d"):format(owner.ident, self._count)
end)

function M.RLock()
  return setmetatable({ _owner = false, _count = 0, _waiters = list(),
    _guard = false }, RLock)
end

function RLock:acquire(timeout)
  if timeout ~= nil then timeout = check.timeout("acquire", 1, timeout) end
  local me, owner = current(), self._owner
  if owner == me then
    self._count = self._count + 1
    return true
  end
  if not owner then
    self._owner = me
    self._count = 1
    return true
  end
  return lock_wait(self, timeout)
end

-- Give the lock to the first waiter with `count`, or free it.
local function rlock_pass(self, count)
  local th = wake_first(self._waiters)
  self._owner = th or false
  self._count = th and count or 0
end

function RLock:release()
  if self._owner ~= current() then check.error(messages.release_unowned) end
  local count = self._count - 1
  if count > 0 then self._count = count else rlock_pass(self, 1) end
end

function RLock:locked()
  return self._owner ~= false
end

function RLock:_is_owned()
  return self._owner == current()
end

function RLock:_release_save()
  local count = self._count
  rlock_pass(self, 1)
  return count
end

function RLock:_acquire_restore(count)
  if self._owner then
    S.suspend_nocancel(self._waiters)  -- handed over with count 1
  end
  self._owner = current()
  self._count = count
end

--------------------------------------------------------------- Semaphores

local function sem_describe(self)
  return "value " .. self._value
end
local Semaphore = lockable("duet.Semaphore", sem_describe)
local BoundedSemaphore = lockable("duet.BoundedSemaphore", sem_describe)

local function new_semaphore(fname, cls, value)
  value = check.opt_integer(fname, 1, value, 1)
  if value < 0 then check.argerror(fname, 1, messages.sem_negative) end
  return setmetatable({ _value = value, _initial = value, _waiters = list(),
    _guard = false }, cls)
end

function M.Semaphore(value)
  return new_semaphore("Semaphore", Semaphore, value)
end

function M.BoundedSemaphore(value)
  return new_semaphore("BoundedSemaphore", BoundedSemaphore, value)
end

local function sem_acquire(self, timeout)
  if timeout ~= nil then timeout = check.timeout("acquire", 1, timeout) end
  local v = self._value
  if v > 0 then
    self._value = v - 1
    return true
  end
  return lock_wait(self, timeout)
end

-- Hand permits to waiters first (each takes one), keep the rest. (While
-- there are waiters the value is 0, so the checks below hold either way.)
local function sem_release(self, n, bounded)
  n = check.opt_integer("release", 1, n, 1)
  if n < 1 then check.argerror("release", 1, messages.n_at_least_1) end
  local v = self._value
  if bounded then
    if n > self._initial - v then check.error(messages.sem_released) end
  elseif n > maxinteger - v then   -- v + n would wrap around
    check.error(messages.sem_overflow)
  end
  local waiters = self._waiters
  while n > 0 and wake_first(waiters) do n = n - 1 end
  self._value = self._value + n
end

Semaphore.acquire, BoundedSemaphore.acquire = sem_acquire, sem_acquire

function Semaphore:release(n)
  sem_release(self, n, false)
end

function BoundedSemaphore:release(n)
  sem_release(self, n, true)
end

-------------------------------------------------------------- Condition

local Condition = lockable("duet.Condition", function(self)
  return "waiters " .. S.waiters(self._waiters)
end)

function M.Condition(lock)
  local mt = getmetatable(lock)
  if lock == nil then
    lock = M.RLock()
  elseif mt ~= Lock and mt ~= RLock then
    check.argerror("Condition", 1, messages.lock_expected .. " expected, got "
      .. check.typename(lock))
  end
  return setmetatable({ _lock = lock, _waiters = list(), _guard = false },
    Condition)
end

function Condition:acquire(timeout)
  if timeout ~= nil then timeout = check.timeout("acquire", 1, timeout) end
  return self._lock:acquire(timeout)
end

function Condition:release()
  return self._lock:release()
end

function Condition:locked()
  return self._lock:locked()
end

function Condition:wait(timeout)
  timeout = check.timeout("wait", 1, timeout)
  local lock = self._lock
  if not lock:_is_owned() then check.error(messages.unowned:format("wait")) end
  if timeout == 0 then return false end
  S.check_block(self, "wait")
  local saved = lock:_release_save()
  local why = suspend(self._waiters, deadline(timeout))
  -- the lock is held again on every way out, as in Python
  lock:_acquire_restore(saved)
  if why == WOKEN then return true end
  if why == TIMEDOUT then return false end
  error(cancelled)
end

function Condition:wait_for(predicate, timeout)
  check.func("wait_for", 1, predicate)
  timeout = check.timeout("wait_for", 2, timeout)
  local result = predicate()
  if result then return result end
  local dl = deadline(timeout)
  while not result do
    local left
    if dl then
      left = dl - S.now()
      if left <= 0 then break end
    end
    self:wait(left)
    result = predicate()
  end
  return result
end

function Condition:notify(n)
  n = check.opt_integer("notify", 1, n, 1)
  if not self._lock:_is_owned() then check.error(messages.unowned:format("notify")) end
  local waiters = self._waiters
  while n > 0 and wake_first(waiters) do n = n - 1 end
end

function Condition:notify_all()
  if not self._lock:_is_owned() then check.error(messages.unowned:format("notify")) end
  wake_all(self._waiters)
end

------------------------------------------------------------------ Event

local Event = class.new("duet.Event", function(self)
  return self._flag and "set" or "unset"
end)

function M.Event()
  return setmetatable({ _flag = false, _waiters = list() }, Event)
end

function Event:set()
  self._flag = true
  wake_all(self._waiters)
end

function Event:clear()
  self._flag = false
end

function Event:is_set()
  return self._flag
end

function Event:wait(timeout)
  timeout = check.timeout("wait", 1, timeout)
  if self._flag then return true end
  if timeout == 0 then return false end
  return block(self._waiters, deadline(timeout), self, "wait")
end

----------------------------------------------------------------- Barrier

-- The read-only fields parties, n_waiting and broken are served from the
-- private _parties, _n_waiting and _broken, so that an assignment to them
-- reaches __newindex.
local Barrier = class.new("duet.Barrier", function(self)
  return ("%d/%d waiting%s"):format(self._n_waiting, self._parties,
    self._broken and ", broken" or "")
end)
Barrier.__fields = { parties = "_parties", n_waiting = "_n_waiting",
  broken = "_broken" }

function Barrier.__index(self, k)
  local private = Barrier.__fields[k]
  if private then return rawget(self, private) end
  return Barrier[k]
end

local BROKEN = {}   -- handed to waiters released by a break

function M.Barrier(parties, action)
  parties = check.integer("Barrier", 1, parties)
  if parties < 1 then check.argerror("Barrier", 1, messages.parties) end
  check.opt_func("Barrier", 2, action)
  return setmetatable({ _parties = parties, _n_waiting = 0, _broken = false,
    _action = action or false, _waiters = list() }, Barrier)
end

-- Release every waiter with broken_barrier; `broken` says what stays.
local function barrier_break(self, broken)
  self._broken = broken
  self._n_waiting = 0
  wake_all(self._waiters, BROKEN)
end

function Barrier:wait(timeout)
  timeout = check.timeout("wait", 1, timeout)
  if self._broken then error(broken_barrier) end
  local arrived = self._n_waiting + 1
  if arrived == self._parties then
    local action = self._action
    if action then
      local ok, err = pcall(action)
      if not ok then
        barrier_break(self, true)
        error(err, 0)
      end
    end
    -- arrival order gives the indexes: waiters 0.., this one parties-1
    local waiters, i = self._waiters, 0
    self._n_waiting = 0
    while wake_first(waiters, i) do i = i + 1 end
    return arrived - 1
  end
  if timeout == 0 then
    barrier_break(self, true)
    error(broken_barrier)
  end
  S.check_block(self, "wait")
  self._n_waiting = arrived
  local why = suspend(self._waiters, deadline(timeout))
  if why == WOKEN then
    local index = S.take_val()
    if index == BROKEN then error(broken_barrier) end
    return index
  end
  -- it left the list: the count drops with it
  self._n_waiting = self._n_waiting - 1
  if why == TIMEDOUT then
    barrier_break(self, true)
    error(broken_barrier)
  end
  error(cancelled)
end

function Barrier:reset()
  barrier_break(self, false)
end

function Barrier:abort()
  barrier_break(self, true)
end

return M
