-- duet.coroutines.executor: Executor, Future, wait() and as_completed().
--
-- An executor runs its tasks on at most max_workers worker tasks. A worker
-- takes submitted work in order until there is none left, then ends; the
-- next submit starts workers again. So an idle executor holds no tasks and
-- never keeps rt.run from returning, and a burst of tiny tasks runs on one
-- coroutine per worker with no switch between them.
local core = require "duet.core"
local check = require "duet.check"
local messages = require "duet.messages"
local S = require "duet.coroutines.scheduler"
local class = require "duet.coroutines.class"
local options = require "duet.executor_options"

local setmetatable, getmetatable, rawget, rawset, select, unpack, type, error,
  xpcall, pcall = setmetatable, getmetatable, rawget, rawset, select,
  table.unpack, type, error, xpcall, pcall
local tostring, traceback, huge = tostring, debug.traceback, math.huge
local cancelled, timeout_err = core.cancelled, core.timeout
local list, block, deadline, wake_all, wake_first = S.list, S.block,
  S.deadline, S.wake_all, S.wake_first

local M = {}

------------------------------------------------------------------- Future

local PENDING, RUNNING, FINISHED, FAILED, CANCELLED = 0, 1, 2, 3, 4
local state_names = { [PENDING] = "pending", [RUNNING] = "running",
  [FINISHED] = "finished", [FAILED] = "finished", [CANCELLED] = "cancelled" }

-- One table per task: its array part holds fn and the arguments until it
-- runs (_n arguments), then the results (_n of them), so a submit costs a
-- single allocation. Other fields: _state; _err and _tb (the traceback)
-- once FAILED; _waiters (tasks in wait/result), _cbs (callbacks) and
-- _watch (the functions of rt.wait and rt.as_completed, in the order they
-- began watching, which a seeded run needs: they leave it when they are
-- done with the future), made when needed; _user for a
-- future made by rt.Future(), which its holders settle. Those, and array
-- slots that may be empty, are written with rawset, past __newindex (which
-- refuses the user's assignments).
local Future = class.new("duet.Future", function(self)
  return state_names[self._state]
end)
Future.__fields = { traceback = true }

-- A failed future's metatable: the one that serves fut.traceback, through a
-- function, so that only failed futures pay for one.
local FailedFuture = { __name = Future.__name, __tostring = Future.__tostring,
  __newindex = Future.__newindex, __fields = Future.__fields }
function FailedFuture.__index(fut, k)
  if k == "traceback" then return rawget(fut, "_tb") end
  return Future[k]
end

-- The traceback of the last error caught by handler().
local last_tb
local function handler(err)
  local msg = err
  if type(msg) ~= "string" then
    local ok, s = pcall(tostring, err)
    msg = ok and s or "(error object is not a string)"
  end
  last_tb = traceback(msg, 2)
  return err
end

-- Callbacks must not break whoever completes the future: report and go on.
local function call_back(fn, fut)
  local ok, err = xpcall(fn, handler, fut)
  if not ok then S.report(S.current(), err, last_tb) end
end

local function complete(fut, state)
  fut._state = state
  local w = fut._waiters
  if w then wake_all(w) end
  local watch = fut._watch
  if watch then
    fut._watch = nil
    for i = 1, #watch do watch[i](fut) end
  end
  local cbs = fut._cbs
  if cbs then
    fut._cbs = false
    for i = 1, #cbs do call_back(cbs[i], fut) end
  end
end

-- Replace fn and the arguments with the results (or the error).
local function settle(fut, ok, ...)
  local used = fut._n + 1
  local m = 0
  if ok then
    m = select("#", ...)
    if m == 1 then
      fut[1] = (...)   -- fn's slot
    elseif m > 1 then
      local r = { ... }
      for i = 1, m do rawset(fut, i, r[i]) end
    end
  else
    rawset(fut, "_err", (...))
    rawset(fut, "_tb", last_tb)
    setmetatable(fut, FailedFuture)
  end
  for i = m + 1, used do
    if fut[i] ~= nil then fut[i] = nil end   -- an empty slot is no key
  end
  fut._n = m
  complete(fut, ok and FINISHED or FAILED)
end

local function run(fut)
  fut._state = RUNNING
  local n = fut._n
  if n == 0 then return settle(fut, xpcall(fut[1], handler)) end
  if n == 1 then return settle(fut, xpcall(fut[1], handler, fut[2])) end
  return settle(fut, xpcall(fut[1], handler, unpack(fut, 2, n + 1)))
end

-- Wait until done; false on timeout.
local function await(fut, fname, timeout)
  if timeout ~= nil then timeout = check.timeout(fname, 1, timeout) end
  if fut._state >= FINISHED then return true end
  if timeout == 0 then return false end
  local w = fut._waiters
  if not w then w = list(); rawset(fut, "_waiters", w) end
  return block(w, deadline(timeout), fut, fname)
end

function Future:result(timeout)
  local state = self._state
  if state < FINISHED then
    if not await(self, "result", timeout) then error(timeout_err) end
    state = self._state
  elseif timeout ~= nil then
    check.timeout("result", 1, timeout)
  end
  if state == FINISHED then return unpack(self, 1, self._n) end
  if state == CANCELLED then error(cancelled) end
  error(self._err, 0)
end

function Future:exception(timeout)
  if not await(self, "exception", timeout) then error(timeout_err) end
  if self._state == CANCELLED then error(cancelled) end
  return self._err
end

function Future:wait(timeout)
  return await(self, "wait", timeout)
end

function Future:done()
  return self._state >= FINISHED
end

function Future:running()
  return self._state == RUNNING
end

function Future:cancelled()
  return self._state == CANCELLED
end

-- Only work that has not started can be cancelled (as in Python).
function Future:cancel()
  local state = self._state
  if state == PENDING then
    for i = 1, self._n + 1 do
      if self[i] ~= nil then self[i] = nil end
    end
    self._n = 0
    complete(self, CANCELLED)
    return true
  end
  return state == CANCELLED
end

function Future:add_done_callback(fn)
  check.func("add_done_callback", 1, fn)
  if self._state >= FINISHED then return call_back(fn, self) end
  local cbs = self._cbs
  if not cbs then cbs = {}; rawset(self, "_cbs", cbs) end
  cbs[#cbs + 1] = fn
end

------------------------------------------------- settled by the user

function M.Future()
  return setmetatable({ _state = PENDING, _n = 0, _user = true }, Future)
end

-- The "invalid state" error for a settle or start that fut refuses.
local function invalid_state(fut)
  check.error("invalid state: " .. (not fut._user
    and messages.future_of_executor
    or fut._state == CANCELLED and messages.future_cancelled
    or fut._state == RUNNING and messages.future_running
    or messages.future_finished))
end

local function settleable(fut)
  local state = fut._state
  return fut._user and (state == PENDING or state == RUNNING)
end

function Future:set_result(...)
  if not settleable(self) then invalid_state(self) end
  local m = select("#", ...)
  if m == 1 then rawset(self, 1, (...))
  elseif m > 1 then
    local r = { ... }
    for i = 1, m do rawset(self, i, r[i]) end
  end
  self._n = m
  complete(self, FINISHED)
end

-- As in the threads runtime: err is required (nil is not an error value);
-- traceback, a string, defaults to where set_exception was called.
function Future:set_exception(...)
  local err, tb = ...
  if err == nil then
    check.argerror("set_exception", 1, "error value expected, got "
      .. (select("#", ...) == 0 and "no value" or "nil"))
  end
  if tb ~= nil then
    if type(tb) == "number" then tb = tostring(tb)
    elseif type(tb) ~= "string" then
      check.argerror("set_exception", 2, "string expected, got "
        .. check.typename(tb))
    end
  end
  if not settleable(self) then invalid_state(self) end
  if tb == nil then
    local ok, msg = pcall(tostring, err)
    tb = traceback(ok and msg or "(error object is not a string)", 2)
  end
  rawset(self, "_err", err)
  rawset(self, "_tb", tb)
  setmetatable(self, FailedFuture)
  complete(self, FAILED)
end

-- PENDING -> RUNNING: true; false when it was cancelled.
function Future:set_running_or_notify_cancel()
  if self._user and self._state == PENDING then
    self._state = RUNNING
    return true
  end
  if self._user and self._state == CANCELLED then return false end
  invalid_state(self)
end

-- For duet.process's ProcessExecutor, whose tasks run elsewhere: a pending
-- future with nothing to run, its start, and its completion with what the
-- worker replied (results, or an error value and its traceback). Its
-- holders cannot settle it, as an Executor's. Not exported (init.lua skips
-- names that start with "_").
function M._future()
  return setmetatable({ _state = PENDING, _n = 0 }, Future)
end

function M._start(fut)
  if fut._state ~= PENDING then return false end
  fut._state = RUNNING
  return true
end

function M._settle(fut, ok, tb, ...)
  if ok then
    local m = select("#", ...)
    local r = { ... }
    for i = 1, m do rawset(fut, i, r[i]) end
    fut._n = m
    return complete(fut, FINISHED)
  end
  rawset(fut, "_err", (...))
  rawset(fut, "_tb", tb)
  setmetatable(fut, FailedFuture)
  complete(fut, FAILED)
end

----------------------------------------------------------------- Executor

-- Fields: max_workers (public, read-only, in the metatable: see
-- class.with_field); _work, _wh, _wt pending futures (FIFO);
-- _workers started and not ended; _busy running a task; _shutdown; _exit
-- wait list for shutdown{wait=true}; _opts (duet.executor_options);
-- _prefix, _k for worker names; _broken, the error of a raising
-- initializer.
-- "2 workers, 5 pending, shut down", as on the threads runtime
local Executor = class.new("duet.Executor", function(self)
  local n = self._workers
  return ("%d worker%s, %d pending%s"):format(n, n == 1 and "" or "s",
    self._wt - self._wh + 1, self._broken and ", broken"
    or self._shutdown and ", shut down" or "")
end)

function M.Executor(opts)
  local o = options.check("Executor", opts, 100)
  local prefix = o.thread_name_prefix
  if not prefix then
    prefix = "Executor-" .. S.number_executor()
  end
  return setmetatable({ _work = {}, _wh = 1, _wt = 0, _workers = 0,
    _busy = 0, _shutdown = false, _exit = list(), _opts = o,
    _prefix = prefix, _k = 0, _broken = false },
    class.with_field(Executor, "max_workers", o.max_workers))
end

local function take_work(ex)
  local h = ex._wh
  if h > ex._wt then return nil end
  local work = ex._work
  local fut = work[h]
  work[h] = nil
  if h == ex._wt then ex._wh, ex._wt = 1, 0 else ex._wh = h + 1 end
  return fut
end

-- A worker's bookkeeping, as a to-be-closed value so that it also holds
-- when the worker's coroutine is closed by rt.run giving up on it.
local Shift = { __name = "duet.ExecutorShift" }
Shift.__index = Shift

function Shift:__close()
  local ex = self[1]
  if self[2] then ex._busy = ex._busy - 1 end
  local n = ex._workers - 1
  ex._workers = n
  if n == 0 then wake_all(ex._exit) end
end

-- The initializer raised in a worker: fail what is queued, refuse more.
local function break_executor(ex, err, tb)
  local msg = options.broken(err)
  ex._broken = msg
  while true do
    local fut = take_work(ex)
    if not fut then break end
    if fut._state == PENDING then
      for i = 1, fut._n + 1 do
        if fut[i] ~= nil then fut[i] = nil end   -- an empty slot is no key
      end
      fut._n = 0
      rawset(fut, "_err", msg)
      rawset(fut, "_tb", tb)
      setmetatable(fut, FailedFuture)
      complete(fut, FAILED)
    end
  end
end

local function worker(ex)
  local shift <close> = setmetatable({ ex, false }, Shift)
  if ex._opts.initializer then
    local ok, err, tb = options.initialize(ex._opts)
    if not ok then
      if not ex._broken then break_executor(ex, err, tb) end
      return
    end
  end
  while true do
    local fut = take_work(ex)
    if not fut then break end
    if fut._state == PENDING then   -- else cancelled while queued
      ex._busy = ex._busy + 1
      shift[2] = true
      run(fut)
      shift[2] = false
      ex._busy = ex._busy - 1
    end
  end
end

function Executor:submit(fn, ...)
  if self._broken then check.error(self._broken) end
  if self._shutdown then check.error(messages.after_shutdown) end
  if type(fn) ~= "function" then check.func("submit", 1, fn) end
  local fut = setmetatable({ _state = PENDING, _n = select("#", ...), fn, ... },
    Future)
  local t = self._wt + 1
  self._wt = t
  self._work[t] = fut
  -- a new worker only when the idle ones cannot cover the queued work
  local workers = self._workers
  if workers < self.max_workers and t - self._wh + 1 > workers - self._busy then
    if not S.active() then
      self._work[t], self._wt = nil, t - 1
      check.error("duet.coroutines: cannot start a task outside rt.run")
    end
    self._workers = workers + 1
    local k = self._k
    self._k = k + 1
    S.spawn_named(self._prefix .. "_" .. k, worker, self)
  end
  return fut
end

function Executor:map(fn, items, timeout)
  check.func("map", 1, fn)
  check.table("map", 2, items)
  timeout = check.timeout("map", 3, timeout)
  local n = check.list_len("map", 2, items)
  -- map waits for the work it submits: refuse before submitting any
  if n > 0 then S.check_block(self, "map") end
  local futs = {}
  for i = 1, n do futs[i] = self:submit(fn, items[i]) end
  local dl = deadline(timeout)
  local out = {}
  for i = 1, n do
    local fut = futs[i]
    -- the waiting task may be cancelled: the tasks are given up on then too
    local waited, done = pcall(await, fut, "map", dl and math.max(dl - S.now(), 0))
    local ok, err = waited and done, nil
    if not waited then err = done
    elseif not ok then err = timeout_err
    elseif fut._state == CANCELLED then ok, err = false, cancelled
    elseif fut._state == FAILED then ok, err = false, fut._err end
    if not ok then   -- give up on those not started, the awaited one too
      for j = i, n do futs[j]:cancel() end
      error(err, 0)
    end
    out[i] = fut[1]
  end
  out.n = n   -- a nil result leaves a hole
  return out
end

function Executor:shutdown(opts)
  check.opt_table("shutdown", 1, opts)
  local wait, cancel_futures = true, false
  if opts then
    if opts.wait ~= nil then wait = opts.wait and true end
    cancel_futures = opts.cancel_futures and true or false
  end
  if wait and self._workers > 0 then S.check_block(self, "shutdown") end
  self._shutdown = true
  if cancel_futures then
    while true do
      local fut = take_work(self)
      if not fut then break end
      fut:cancel()
    end
  end
  if wait and self._workers > 0 then
    while self._workers > 0 do block(self._exit, nil, self, "shutdown") end
  end
end

function Executor:__close()
  self:shutdown()
end

---------------------------------------------------- wait and as_completed

local return_whens = { "ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION" }

local function unique_futures(fname, futures)
  check.table(fname, 1, futures)
  local seen, out = {}, {}
  for i = 1, #futures do
    local f = futures[i]
    local mt = getmetatable(f)
    if mt ~= Future and mt ~= FailedFuture then
      check.argerror(fname, 1, (messages.future_at)
        :format(i, check.typename(f)))
    end
    if not seen[f] then
      seen[f] = true
      out[#out + 1] = f
    end
  end
  return out
end

-- Call fn(f) when each pending future f of the set or list `futs` is done.
local function watch(futs, fn)
  for k, v in pairs(futs) do
    local f = v == true and k or v
    if f._state < FINISHED then
      local w = f._watch
      if not w then w = {}; rawset(f, "_watch", w) end
      w[#w + 1] = fn
    end
  end
end

local function unwatch(futs, fn)
  for k, v in pairs(futs) do
    local w = (v == true and k or v)._watch
    if w then
      for i = #w, 1, -1 do
        if w[i] == fn then table.remove(w, i) end
      end
    end
  end
end

-- Is the wait over, given the futures done so far?
local function satisfied(futs, return_when)
  local ndone, all = 0, #futs
  for i = 1, all do
    local f = futs[i]
    if f._state >= FINISHED then
      ndone = ndone + 1
      if return_when == "FIRST_COMPLETED" then return true end
      if return_when == "FIRST_EXCEPTION" and f._state == FAILED then
        return true
      end
    end
  end
  return ndone == all
end

function M.wait(futures, opts)
  local futs = unique_futures("wait", futures)
  check.opt_table("wait", 2, opts)
  local timeout = check.timeout("wait", 2, opts and opts.timeout)
  local return_when = check.option("wait", 2, opts and opts.return_when,
    return_whens, "ALL_COMPLETED")
  if not satisfied(futs, return_when) and timeout ~= 0 then
    S.check_block(nil, "wait")   -- before the callbacks go in
    -- completions re-test the condition and wake us when it holds
    local wl = list()
    local function on_done()
      if satisfied(futs, return_when) then wake_first(wl) end
    end
    watch(futs, on_done)
    local ok, err = pcall(block, wl, deadline(timeout))
    unwatch(futs, on_done)
    if not ok then error(err, 0) end
  end
  local done, not_done = {}, {}
  for i = 1, #futs do
    local f = futs[i]
    if f._state >= FINISHED then done[#done + 1] = f
    else not_done[#not_done + 1] = f end
  end
  return done, not_done
end

-- Yields futures as they complete (those already done first, in list
-- order); raises duet.timeout if the next one is not done by the deadline.
-- It holds only the futures not yielded yet: `finished` (done, to yield)
-- and `pending` (a set); leaving the loop (its to-be-closed value), a
-- timeout or the end takes it off the pending ones.
local Leave = { __name = "duet.AsCompleted", __close = function(self) self[1]() end }

function M.as_completed(futures, timeout)
  local futs = unique_futures("as_completed", futures)
  timeout = check.timeout("as_completed", 2, timeout)
  local dl = deadline(timeout) or huge
  local finished, head, tail, left = {}, 1, 0, #futs
  local pending = {}
  local wl = list()
  local function on_done(f)
    pending[f] = nil
    tail = tail + 1
    finished[tail] = f
    wake_first(wl)
  end
  for i = 1, #futs do
    local f = futs[i]
    if f._state >= FINISHED then
      tail = tail + 1
      finished[tail] = f
    else
      pending[f] = true
    end
  end
  futs = nil   -- luacheck: ignore 311 (the iterator must not keep the list)
  watch(pending, on_done)
  local function leave()
    unwatch(pending, on_done)
    pending, finished, head, tail, left = {}, {}, 1, 0, 0
  end
  return function()
    if left == 0 then return nil end
    while head > tail do
      local t = dl - S.now()
      if t <= 0 or not block(wl, dl < huge and dl or nil, nil, "as_completed") then
        leave()
        error(timeout_err)
      end
    end
    local f = finished[head]
    finished[head] = nil
    head = head + 1
    left = left - 1
    return f
  end, nil, nil, setmetatable({ leave }, Leave)
end

return M
