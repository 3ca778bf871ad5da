-- duet.process: rt.ProcessExecutor, the Executor whose workers are child
-- Lua interpreters, for both runtimes.
--
-- csrc/process.c starts each child with posix_spawn and frames messages on
-- its socket; lua/duet/procworker.lua is the child's body. A submit encodes
-- the task for another process at once (so a task that cannot move fails
-- there) and queues it; a feeder per child sends it one task at a time and
-- settles the task's future with the reply:
--   threads     a daemon duet Thread per child, blocked in a queue get or
--               in a poll of its child's socket (never spinning); the pool
--               counts as a live thread while tasks are queued or running
--   coroutines  a task per busy child, started when queued work outnumbers
--               the feeders free to take it and ended when there is none, as
--               the Executor's workers; an idle child waits on a list. The
--               sockets join the scheduler's one poll.
-- A child that dies fails only the future it was running, with a
-- duet.broken_process error naming how it ended; its feeder starts a
-- replacement for the next task. A raising initializer (or a worker that
-- cannot start) breaks the pool as it breaks an Executor: the task that met
-- it and every queued one fail with "broken executor: ...", and submit
-- raises it from then on, so no worker is restarted in a loop.
local core = require "duet.core"
local check = require "duet.check"
local options = require "duet.executor_options"
local messages = require "duet.messages"
-- assignments refused as on every duet object ("field 'max_workers' is
-- read-only"); the pool's own fields all exist from the start
local class = require "duet.coroutines.class"
local refuse = class.refuse

local pack, unpack_msg, spawn = core.process_pack, core.process_unpack,
  core.process_spawn
local type, pcall, tostring, setmetatable, format = type, pcall, tostring,
  setmetatable, string.format
local mathtype, now = math.type, core.now

local M = {}

local MAX_WORKERS = 4096
local QUIT_GRACE = 5    -- seconds a closed worker gets to exit before SIGKILL

------------------------------------------------------------------ options

local function field_error(name, want, v)
  check.argerror("ProcessExecutor", 1, format(messages.field_type,
    name, want, mathtype(v) == "float" and "float" or check.typename(v)))
end

-- The worker command line and messages, checked and made once: a table of
-- plain values, moved as it is into the threads runtime's feeders. The
-- options an Executor has too are checked by duet.executor_options.
local function config(opts, runtime)
  local pid, ncpu, exe = core.process_self()
  local o = options.check("ProcessExecutor", opts, ncpu, MAX_WORKERS)
  opts = opts or {}
  local per_child, lua = opts.max_tasks_per_child, opts.lua
  if per_child ~= nil then
    per_child = check.integral(per_child)
      or field_error("max_tasks_per_child", "integer", per_child)
    if per_child < 1 then
      check.argerror("ProcessExecutor", 1,
        "max_tasks_per_child must be at least 1")
    end
  end
  if lua ~= nil and type(lua) ~= "string" then field_error("lua", "string", lua) end
  if o.thread_name_prefix ~= nil then   -- as ProcessPoolExecutor: no threads
    check.argerror("ProcessExecutor", 1,
      "field 'thread_name_prefix': a process pool has no threads to name")
  end
  -- the interpreter running this one, unless it is a program embedding Lua
  local search = false
  if not lua then
    if exe and exe:match("/lua[^/]*$") then lua = exe
    else lua, search = "lua5.4", true end
  elseif not lua:find("/", 1, true) then
    search = true
  end
  local code = format("package.path=%q package.cpath=%q "
    .. "require('duet.procworker')(%d,%q)", package.path, package.cpath,
    pid, runtime)
  local args = o.initargs
  local ok, init = pcall(pack, "initializer", o.initializer or false,
    "initargs", table.unpack(args or {}, 1, args and args.n or 0))
  if not ok then check.error(init) end
  return {
    max_workers = o.max_workers,
    per_child = per_child or false,
    argv = { lua, "-E", "-e", code },
    search = search,
    init = init,
  }
end

------------------------------------------------------------- one worker

-- A pool is broken, as an Executor is, by an initializer that raised
-- (options.broken(err): messages.broken_executor .. ...) or
-- by a worker that cannot start: broke(msg, traceback) records it, the
-- task that met it and every later one fail with msg, and submit raises it.
local function no_start(err)
  return "broken executor: cannot start a worker: " .. tostring(err)
end

-- `io` holds the runtime's waits: readable(x [, timeout]), writable(x).

-- All of `body` to worker process p; nil once it is gone.
local function send(io, p, body)
  local sent = p:send(body)
  while sent == false do
    io.writable(p)
    sent = p:flush()
  end
  return sent
end

-- The next message from p; nil at end of file.
local function receive(io, p)
  while true do
    local body, why = p:recv()
    if body then return body end
    if why then return nil end
    io.readable(p)
  end
end

-- Close p's channel, wait for p to end (QUIT_GRACE seconds, then
-- SIGKILL), reap it, and return its duet.broken_process error.
local function reap(io, p)
  p:close()
  if not p:status() then
    local efd = p:exitfd()
    if efd then io.readable(efd, QUIT_GRACE) end
    if not p:status() then p:kill() end
  end
  p:wait()
  return p:broken()
end

-- A new worker: its process, sent the initializer.
local function start_worker(io, cfg)
  local ok, p = pcall(spawn, cfg.argv, cfg.search)
  if not ok then error(p, 0) end
  send(io, p, cfg.init)
  return { proc = p, tasks = 0 }
end

-- Let worker w go: its channel closed, it ends; reaped when `wait` (else
-- when the process object is collected).
local function stop_worker(io, w, wait)
  if wait then reap(io, w.proc) else w.proc:close() end
end

-- Settle fut with worker's reply (a decoded one: ok, status, values...).
-- An initializer that raised breaks the pool first, so that nobody sees
-- the failed future and still gets to submit.
local function deliver(settle, broke, fut, ok, status, ...)
  if not ok then                        -- a reply the parent refuses
    local msg = "cannot take a worker's results: "
      .. tostring(status):gsub(" %(pass {functions = true} to decode it%)", "")
    settle(fut, false, msg, msg)
  elseif status == "ok" then
    settle(fut, true, nil, ...)
  else
    local err, tb = ...
    if status == "init" then
      err = options.broken(err)
      broke(err, tb)
    end
    settle(fut, false, tb, err)
    return status
  end
  return "ok"
end

-- Run task `body` of running future fut on worker w (started if nil).
-- Returns the worker to go on with (nil: none).
local function run_task(io, settle, broke, cfg, w, fut, body)
  if not w then
    local ok, made = pcall(start_worker, io, cfg)
    if not ok then                      -- cannot start: as an initializer
      local msg = no_start(made)
      broke(msg, msg)
      settle(fut, false, msg, msg)
      return nil
    end
    w = made
  end
  local p = w.proc
  -- a worker whose initializer raised replies and ends without reading
  -- the task: its reply is still to be read when the write failed
  send(io, p, body)
  local reply = receive(io, p)
  if not reply then                     -- it died: fail only this task
    local err = reap(io, p)
    settle(fut, false, tostring(err), err)
    return nil
  end
  if deliver(settle, broke, fut, pcall(unpack_msg, reply)) == "init" then
    reap(io, p)
    return nil
  end
  w.tasks = w.tasks + 1
  if cfg.per_child and w.tasks >= cfg.per_child then
    stop_worker(io, w, true)
    return nil
  end
  return w
end

------------------------------------------------------------ shared parts

-- The task fn(...) encoded for a worker, after the checks submit makes;
-- what cannot move raises at the caller's line, as on the Executor.
local function task_body(self, fn, ...)
  local st = rawget(self, "_st")
  if self._shutdown or st and st.shutdown then
    check.error(messages.after_shutdown)
  end
  if type(fn) ~= "function" then check.func("submit", 1, fn) end
  local broken = st and st.broken or self._broken
  if broken then check.error(broken) end
  local ok, body = pcall(pack, "fn", fn, "args", ...)
  if not ok then check.error(body) end
  return body
end

local function map(self, fn, items, timeout)
  check.func("map", 1, fn)
  check.table("map", 2, items)
  timeout = check.timeout("map", 3, timeout)
  local n = check.list_len("map", 2, items)
  local futs = {}
  for i = 1, n do futs[i] = self:submit(fn, items[i]) end
  local dl = timeout and now() + timeout
  local out = {}
  for i = 1, n do
    local fut = futs[i]
    local ok, r = pcall(fut.result, fut, dl and math.max(dl - now(), 0))
    if not ok then                      -- as an Executor's map: give up on
      for j = i, n do futs[j]:cancel() end   -- what has not started
      error(r, 0)
    end
    out[i] = r
  end
  out.n = n   -- a nil result leaves a hole
  return out
end

local function shutdown_options(opts)
  check.opt_table("shutdown", 1, opts)
  local wait, cancel = true, false
  if opts then
    if opts.wait ~= nil then wait = opts.wait and true end
    cancel = opts.cancel_futures and true or false
  end
  return wait, cancel
end

local function describe(self, nworkers, nqueued, shut)
  return format("duet.ProcessExecutor (%d worker%s, %d pending%s): %p",
    nworkers, nworkers == 1 and "" or "s", nqueued,
    shut and ", shut down" or "", self)
end

------------------------------------------------------- threads runtime

-- A threads-runtime pool may be used from any thread, as an Executor: the
-- table moves as a copy, so everything the copies must agree on lives in
-- duet objects they share: the task queue q, the idle-feeder semaphore, a
-- SharedTable st (shutdown; broken and broken_tb; feeders started;
-- live ones) and an Event set when the last feeder has ended.

-- The body of a feeder thread (in its own Lua state): take tasks from q
-- until it is closed and drained.
function M.threads_feeder(q, idle, st, ended, cfg)
  local rt = require "duet.threads"
  local io = { readable = rt.wait_readable, writable = rt.wait_writable }
  local settle, start, hold = core.process_settle, core.process_start,
    core.process_hold
  local function broke(msg, tb)
    if not st.broken then
      st.broken_tb = tb
      st.broken = msg
    end
  end
  local w
  while true do
    local item = q:get()
    if item == nil then break end
    local fut, body = item[1], item[2]
    if start(fut) then
      if st.broken then
        settle(fut, false, st.broken_tb, st.broken)
      else
        w = run_task(io, settle, broke, cfg, w, fut, body)
      end
    end
    hold(-1)
    idle:release()
  end
  if w then stop_worker(io, w, true) end
  if st:incr("live", -1) == 0 then ended:set() end
end

-- A feeder thread's target: no upvalue but _ENV, so moving it is cheap.
local function feeder_target(...)
  return require("duet.process").threads_feeder(...)
end

local TE = { __name = "duet.ProcessExecutor", __newindex = refuse }
TE.__index = TE
-- the thread that made a pool: a copy collected elsewhere leaves it alone
local function here() return core.current().ident end

function TE.__tostring(self)
  local st = self._st
  return describe(self, st.feeders, self._q:size(), st.shutdown)
end

function TE:submit(fn, ...)
  local body = task_body(self, fn, ...)
  local fut = core.process_future()
  local st = self._st
  core.process_hold(1)
  if not pcall(self._q.put, self._q, { fut, body }) then   -- shut down since
    core.process_hold(-1)
    check.error(messages.after_shutdown)
  end
  if not self._idle:acquire(0) then
    local k = st:incr("feeders")
    if k > self.max_workers then
      st:incr("feeders", -1)
    else
      st:incr("live")
      core.Thread{ target = feeder_target, daemon = true,
        name = format("ProcessExecutor-%d_%d", self._number, k - 1),
        args = { self._q, self._idle, st, self._ended, self._cfg } }:start()
    end
  end
  return fut
end

TE.map = map

function TE:shutdown(opts)
  local wait, cancel = shutdown_options(opts)
  local st = self._st
  st.shutdown = true
  if cancel then
    while true do
      local item = self._q:get_nowait()
      if item == nil then break end
      item[1]:cancel()
      core.process_hold(-1)
    end
  end
  self._q:close()
  if wait and st.live > 0 then self._ended:wait() end
end

function TE:__close()
  self:shutdown()
end

-- collected without shutdown: shutdown{wait=false}; copies in other
-- threads' states leave the pool alone
function TE:__gc()
  if rawget(self, "_home") == here() then pcall(self._q.close, self._q) end
end

local next_number = 0

function M.threads_executor(opts)
  local cfg = config(opts, "threads")
  next_number = next_number + 1
  return setmetatable({ _cfg = cfg, _home = here(),
    _q = core.Queue(), _idle = core.Semaphore(0),
    _st = core.SharedTable{ feeders = 0, live = 0, shutdown = false },
    _ended = core.Event(), _number = next_number },
    class.with_field(TE, "max_workers", cfg.max_workers))
end

---------------------------------------------------- coroutines runtime

-- The coroutines runtime's ProcessExecutor, over scheduler S, executor
-- module E (its Future) and the runtime's descriptor waits.
function M.coroutines(S, E, wait_readable, wait_writable)
  local io = { readable = wait_readable, writable = wait_writable }
  local future, start, settle = E._future, E._start, E._settle
  local list, block, wake_all = S.list, S.block, S.wake_all

  local CE = { __name = "duet.ProcessExecutor", __newindex = refuse }
  CE.__index = CE

  function CE.__tostring(self)
    return describe(self, self._nworkers, self._wt - self._wh + 1,
      self._shutdown)
  end

  local function take_work(ex)
    local h = ex._wh
    if h > ex._wt then return nil end
    local futs, bodies = ex._futs, ex._bodies
    local fut, body = futs[h], bodies[h]
    futs[h], bodies[h] = nil, nil
    if h == ex._wt then ex._wh, ex._wt = 1, 0 else ex._wh = h + 1 end
    return fut, body
  end

  -- A feeder's bookkeeping, as a to-be-closed value so that it holds also
  -- when the feeder's coroutine is closed (rt.run giving up on it, Ctrl-C):
  -- [1] the executor, [2] its worker, [3] the future it is running.
  local Shift = { __name = "duet.ProcessExecutorShift" }
  Shift.__index = Shift

  function Shift:__close()
    local ex, w, fut = self[1], self[2], self[3]
    ex._feeders = ex._feeders - 1
    if fut then                         -- stopped mid-task: the worker too
      ex._busy = ex._busy - 1
      ex._nworkers = ex._nworkers - 1
      if w then                         -- (one still starting is collected)
        w.proc:kill()
        w.proc:close()
        w.proc:wait()
      end
      settle(fut, false, nil, core.cancelled)
    elseif w then
      local idle = ex._idle
      idle[#idle + 1] = w
    end
    if ex._feeders == 0 then wake_all(ex._exit) end
  end

  local function feeder(ex)
    local shift <close> = setmetatable({ ex, false, false }, Shift)
    local idle = ex._idle
    local w = idle[#idle]
    idle[#idle] = nil
    shift[2] = w or false
    while true do
      local fut, body = take_work(ex)
      if not fut then break end
      if start(fut) then
        if ex._broken then
          settle(fut, false, ex._broken_tb, ex._broken)
        else
          ex._busy = ex._busy + 1
          shift[3] = fut
          if not w then ex._nworkers = ex._nworkers + 1 end
          w = run_task(io, settle, ex._broke, ex._cfg, w, fut, body)
          if not w then ex._nworkers = ex._nworkers - 1 end
          shift[2], shift[3] = w or false, false
          ex._busy = ex._busy - 1
        end
      end
    end
    if w and ex._shutdown then
      shift[2] = false
      ex._nworkers = ex._nworkers - 1
      stop_worker(io, w, true)
    end
  end

  function CE:submit(fn, ...)
    local body = task_body(self, fn, ...)
    local fut = future()
    local t = self._wt + 1
    self._wt = t
    self._futs[t], self._bodies[t] = fut, body
    -- a new feeder only when the free ones cannot cover the queued work
    local feeders = self._feeders
    if feeders < self.max_workers and t - self._wh + 1 > feeders - self._busy then
      if not S.active() then
        self._futs[t], self._bodies[t], self._wt = nil, nil, t - 1
        check.error("duet.coroutines: cannot start a task outside rt.run")
      end
      self._feeders = feeders + 1
      S.spawn(feeder, self)
    end
    return fut
  end

  CE.map = map

  function CE:shutdown(opts)
    local wait, cancel = shutdown_options(opts)
    self._shutdown = true
    if cancel then
      while true do
        local fut = take_work(self)
        if not fut then break end
        fut:cancel()
      end
    end
    if wait then
      while self._feeders > 0 do block(self._exit) end
    end
    local idle = self._idle
    for i = #idle, 1, -1 do
      local w = idle[i]
      idle[i] = nil
      self._nworkers = self._nworkers - 1
      stop_worker(io, w, wait)
    end
  end

  function CE:__close()
    self:shutdown()
  end

  local function ProcessExecutor(opts)
    local cfg = config(opts, "coroutines")
    local ex
    local function broke(msg, tb)
      if not ex._broken then ex._broken, ex._broken_tb = msg, tb end
    end
    ex = setmetatable({ _cfg = cfg, _broke = broke,
      _futs = {}, _bodies = {}, _wh = 1, _wt = 0, _feeders = 0, _busy = 0,
      _nworkers = 0, _idle = {}, _shutdown = false, _broken = false,
      _broken_tb = false, _exit = list() },
      class.with_field(CE, "max_workers", cfg.max_workers))
    return ex
  end

  return ProcessExecutor
end

return M
