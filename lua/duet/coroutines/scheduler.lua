-- duet.coroutines.scheduler: the engine of the coroutines runtime.
--
-- A task is a Lua coroutine that runs until it blocks in suspend(). Waking a
-- task only marks it ready; whoever woke it keeps running until it blocks
-- itself, so a producer can fill a queue for many items per switch.
--
--   ready queue  two arrays swapped once per pass: appends go to one while
--                the other is being run; beside each task, why it was woken,
--                which its suspend() gets back from yield
--   timers       a sorted run and a binary heap of the suspended tasks,
--                deadlines in parallel arrays: a deadline not before the
--                run's last goes on the end of the run (most do: the same
--                timeout, again and again), any other into the heap; every
--                due timer fires in the same pass, earliest first
--   wait lists   each object keeps its waiters in an intrusive FIFO list,
--                a ring through the list itself: its NEXT is the first
--                waiter (false: none), its PREV the last (itself: none),
--                the last waiter's NEXT is the list; a task waits on at
--                most one list at a time, so the links live in the task
--                itself and removal is O(1) without knowing the list
--   descriptors  a wait list per descriptor and direction; a C poller
--                watches the descriptors that have waiters, and one ppoll
--                waits for them and for the next timer together
--
-- A task's coroutine is taken when it first runs, from a pool of parked
-- ones when possible: a finished task parks its coroutine for the next, so
-- a spawn does not create one, and tasks waiting for their first turn hold
-- none.
--
-- Fields the scheduler keeps on a task (see thread.lua for the public ones).
-- The hot ones are the ten slots of the task's array part, named by the
-- constants below: a table constructor fills an array part without hashing
-- a key, and an integer index is read and written without a lookup, which
-- made a spawn + join 7% cheaper than with named fields. The slots
-- are never nil, so no write to them reaches Thread's __newindex.
--   CO, STATE                         the coroutine (false until its first
--                                     turn and once over) and the state
--   VALS      the arguments until it runs, then its results (false: none)
--   AI        its index in the array of live tasks
--   PREV, NEXT                        wait-list links (NEXT false: on no
--             list); a task on no list keeps in PREV the function it runs
--             until its first turn, and a value handed over by whoever woke
--             it (a queue item, ...) until it takes it (S.take_val)
--   SUS       while suspended: its heap index, minus its index in the
--             run, or true when it has no timer; false otherwise
--   ID        its ident
--   JOIN      the wait list of the tasks joining it (false: none yet)
--   NUM       the N of its default name "Thread-N" (false: it was made
--             with a name); only tasks made without one count, as Python's
--             and the threads runtime's names do
-- A wait list is a table of its own whose slots PREV and NEXT are the ring's
-- (the same slots as a task's: a ring joins both). Rarer fields are named
-- ones, which Thread's __newindex lets through for "_" names:
--   _val, _need                       a waiting putter's item(s) and count
--   _err, _tb                         the error that ended it, traceback
--
-- Seeded runs (configured by preempt.lua): a preempter (csrc/preempt.c)
-- yields tasks from a count hook and picks the next ready task from its
-- seeded generator, and a virtual clock jumps to the next timer when every
-- task is blocked. Without them the loop is the plain FIFO one: no hook, no
-- draw, the real clock.
local core = require "duet.core"
-- A task's slots; the eighth is its ident (thread.lua, queue.lua and
-- sync.lua use the same numbers).
local PREV <const>, NEXT <const>, SUS <const>, CO <const>, STATE <const>,
  AI <const>, VALS <const>, JOIN <const>, NUM <const> = 1, 2, 3, 4, 5, 6, 7, 9, 10
local check = require "duet.check"
local messages = require "duet.messages"

local realnow, cancelled = core.now, core.cancelled
local create, resume, yield, running, coclose, isyieldable =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.running,
  coroutine.close, coroutine.isyieldable
local traceback = debug.traceback
local pack, unpack, select, type, tostring, pcall, setmetatable =
  table.pack, table.unpack, select, type, tostring, pcall, setmetatable
local huge, max, min = math.huge, math.max, math.min

local S = {}

-- Task states: ALIVE and DAEMON are both started and not finished; only
-- ALIVE ones keep rt.run going.
local NEW, ALIVE, DAEMON, DONE, FAILED = 0, 1, 2, 3, 4
S.NEW, S.ALIVE, S.DAEMON, S.DONE, S.FAILED = NEW, ALIVE, DAEMON, DONE, FAILED

-- Why a suspended task resumed.
local WOKEN, TIMEDOUT, CANCELLED = 1, 2, 3
S.WOKEN, S.TIMEDOUT = WOKEN, TIMEDOUT

local mainthread       -- runs rt.run's main; stands for the caller outside run
local current          -- the running task (mainthread outside rt.run)
local active = false   -- inside rt.run
local shutting = false -- non-daemon work is over: every blocking call cancels
local atomic = 0       -- > 0 inside SharedTable:update, where blocking is banned
local ready, whys, nready = {}, {}, 0
local spare, sparewhys = {}, {}
local heap, hdl, nheap = {}, {}, 0     -- tasks, their deadlines
-- The run: tasks run[rhead..rtail] (false: a timer removed early), their
-- deadlines in rdl, in order; rdead counts the removed ones. Empty: rhead
-- 1, rtail 0, so rtail > 0 says it is not; rhead is never a removed one.
local run, rdl, rhead, rtail, rdead = {}, {}, 1, 0, 0
local alive, nalive = {}, 0   -- every started, unfinished task (th[AI])
local nlive = 0        -- how many of them are not daemons
local pending = {}     -- pending[th]: cancelled while not suspended
-- joiner lists emptied as their task ended, for the next join: making one
-- costs about 1,700 instructions, a thirteenth of a spawn and join
local spare_lists, nspare_lists = {}, 0
local SPARE_LISTS_MAX = 64
local pool, npool = {}, 0     -- parked coroutines, ready for another task
local POOL_MAX = 256
local PARKED = {}      -- what a coroutine yields when its task is over
-- Descriptors: rwait[fd] / wwait[fd], wait lists of the tasks waiting to
-- read / write fd. The poller watches fd for a direction exactly while its
-- list has waiters (a report of readiness stops the watch; whoever waits
-- again starts it again).
local poller = core.poller()
local p_add, p_del, p_wait, p_clear = poller.add, poller.del, poller.wait,
  poller.clear
local rwait, wwait = {}, {}
local nfdwait = 0      -- tasks waiting on a descriptor
local polled = false   -- the poller was asked since the last pass
local pollout = {}     -- its answers: fd, events, fd, events...
-- Seeded runs: the clock (realnow, or vnow reading vtime), the preempter
-- (false: none) and the ring of its last `tracemax` preemptions, as task
-- names and places.
local now = realnow
local vtime = false    -- the virtual clock's time, or false: the real clock
local function vnow() return vtime end
local preempter, p_below, p_take, p_arm = false, nil, nil, nil
local tracewho, tracewhere, ntrace, tracemax = {}, {}, 0, 50

-------------------------------------------------------------------- wait lists

-- An empty wait list. (wl[NEXT] is its first waiter, false when it has
-- none; S.waiters counts them.)
function S.list()
  local wl = { false, false }
  wl[PREV] = wl
  return wl
end

function S.waiters(wl)
  local n, th = 0, wl[NEXT]
  while th and th ~= wl do
    n = n + 1
    th = th[NEXT]
  end
  return n
end

-- The links are fields every task has from the start: these assignments
-- never reach Thread's __newindex.
local function link(wl, th)
  local t = wl[PREV]
  th[PREV], th[NEXT] = t, wl
  t[NEXT] = th
  wl[PREV] = th
end

local function unlink(th)
  local p, nx = th[PREV], th[NEXT]
  if p ~= nx then p[NEXT] = nx
  else p[NEXT] = false end   -- both are the list: it is empty now
  nx[PREV] = p
  th[PREV], th[NEXT] = false, false
end

------------------------------------------------------------------------ timers

local function heap_up(th, i, dl)
  while i > 1 do
    local p = i // 2
    local pdl = hdl[p]
    if pdl <= dl then break end
    local pt = heap[p]
    heap[i], hdl[i] = pt, pdl
    pt[SUS] = i
    i = p
  end
  heap[i], hdl[i] = th, dl
  th[SUS] = i
end

local function heap_down(th, i, dl)
  local n = nheap
  while true do
    local c = i * 2
    if c > n then break end
    local cdl = hdl[c]
    if c < n then
      local rd = hdl[c + 1]
      if rd < cdl then c = c + 1; cdl = rd end
    end
    if cdl >= dl then break end
    local ct = heap[c]
    heap[i], hdl[i] = ct, cdl
    ct[SUS] = i
    i = c
  end
  heap[i], hdl[i] = th, dl
  th[SUS] = i
end

-- Start the timer of task th for deadline dl.
local function timer_push(th, dl)
  local t = rtail
  if t == 0 or dl >= rdl[t] then
    t = t + 1
    rtail = t
    run[t], rdl[t] = th, dl
    th[SUS] = -t
  else
    nheap = nheap + 1
    heap_up(th, nheap, dl)
  end
end

-- Move the run's live timers to indexes 1, 2...: when removed ones are over
-- half of it, or when its head has gone far.
local function run_compact()
  local j, h, t = 0, rhead, rtail
  for i = h, t do
    local th = run[i]
    if th then
      j = j + 1
      run[j], rdl[j] = th, rdl[i]
      th[SUS] = -j
    end
  end
  for i = j + 1, t do run[i], rdl[i] = nil, nil end
  rhead, rtail, rdead = 1, j, 0
end

-- Take the run's first timer out: the head moves past it and past the
-- removed ones after it (the run empties when none is left). A run that
-- never empties moves back to index 1 once its head has gone far, so that
-- it stays in the arrays' array part.
local function run_pop()
  local h, t = rhead, rtail
  run[h], rdl[h] = nil, nil
  h = h + 1
  while h <= t and not run[h] do
    run[h], rdl[h] = nil, nil
    h = h + 1
  end
  rdead = rdead - (h - rhead - 1)
  if h > t then
    rhead, rtail = 1, 0
  else
    rhead = h
    if h > 1024 and h + h > t then run_compact() end
  end
end

-- Take the timer at index i out of the run.
local function run_remove(i)
  if i == rhead then return run_pop() end
  run[i] = false
  rdead = rdead + 1
  if rdead > 32 and rdead + rdead > rtail - rhead then run_compact() end
end

-- Take the task at index i out of the heap.
local function heap_remove(i)
  local n = nheap
  local last, dl = heap[n], hdl[n]
  heap[n], hdl[n] = nil, nil
  nheap = n - 1
  if i < n then
    if i > 1 and hdl[i // 2] > dl then heap_up(last, i, dl)
    else heap_down(last, i, dl) end
  end
end

--------------------------------------------------------------------- waking

local function schedule(th, why)
  local n = nready + 1
  nready = n
  ready[n], whys[n] = th, why
end

-- The earliest deadline of a timer (nil: there is none).
local function next_deadline()
  local d = hdl[1]
  if rtail > 0 then
    local r = rdl[rhead]
    if not d or r < d then return r end
  end
  return d
end

-- Wake every task whose deadline is at or before t, earliest first.
local function fire(t)
  while true do
    local th
    local d = hdl[1]
    if rtail > 0 and not (d and d < rdl[rhead]) then
      if rdl[rhead] > t then return end
      th = run[rhead]
      run_pop()
    elseif d and d <= t then
      th = heap[1]
      heap_remove(1)
    else
      return
    end
    if th[NEXT] then unlink(th) end
    th[SUS] = false
    schedule(th, TIMEDOUT)
  end
end

-- (unlink and schedule written out: every hand-off and join comes here)
local function wake(th, why)
  local i = th[SUS]
  if i ~= true then
    if i > 0 then heap_remove(i) else run_remove(-i) end
  end
  local nx = th[NEXT]
  if nx then
    local p = th[PREV]
    if p ~= nx then p[NEXT] = nx
    else p[NEXT] = false end
    nx[PREV] = p
    th[PREV], th[NEXT] = false, false
  end
  th[SUS] = false
  local n = nready + 1
  nready = n
  ready[n], whys[n] = th, why
end

-- Wake the first waiter of `wl` (handing it `val`, if any); return it.
-- (The value goes in PREV once wake() has taken the task off its list.)
function S.wake_first(wl, val)
  local th = wl[NEXT]
  if th then
    wake(th, WOKEN)
    if val ~= nil then th[PREV] = val end
  end
  return th
end

-- Wake every waiter of `wl`, handing each `val` (if any).
local function wake_all(wl, val)
  local th = wl[NEXT]
  while th do
    wake(th, WOKEN)
    if val ~= nil then th[PREV] = val end
    th = wl[NEXT]
  end
end
S.wake_all = wake_all

-- Wake a task known to be suspended.
function S.wake(th, val)
  wake(th, WOKEN)
  if val ~= nil then th[PREV] = val end
end

-- The value handed to the running task by whoever woke it (false: none).
function S.take_val()
  local th = current
  local v = th[PREV]
  th[PREV] = false
  return v
end

-------------------------------------------------------------------- blocking

-- Why the running code may not block: raised before a blocking call
-- changes anything. A task that cannot yield (it runs inside a C function:
-- a table.sort comparator, a string.gsub callback, __tostring, a module's
-- main chunk in require) would fail in yield() after it had queued itself.
-- The blocking calls name themselves: method `fname` of `obj`, or function
-- `fname` (nil: the name the stack shows, as for a socket's C method).
local function misuse(obj, fname)
  if atomic > 0 then
    check.error("duet.coroutines: a SharedTable:update function must not block")
  elseif not active then
    check.error("duet.coroutines: blocking call outside rt.run")
  elseif current[CO] ~= running() then
    check.error("duet.coroutines: blocking call from a coroutine that is not a duet task")
  end
  local what = fname and (obj and check.typename(obj) .. ":" .. fname or fname)
    or check.callname() or "a blocking call"
  check.error(("duet.coroutines: %s cannot block here: the task cannot yield"
    .. " across the C function it runs in (a table.sort comparator, a"
    .. " string.gsub callback, a metamethod such as __tostring, require)")
    :format(what))
end

-- Raise unless the caller may block: a task's own coroutine, inside run,
-- able to yield. For blocking calls that change state before they suspend.
function S.check_block(obj, fname)
  if current[CO] ~= running() or atomic > 0 or not isyieldable() then
    misuse(obj, fname)
  end
end

-- Suspend the running task on wait list `wl` (or none) until woken or until
-- `deadline` (nil: none); `obj` and `fname` name the call for misuse().
-- Returns WOKEN, TIMEDOUT or CANCELLED; a cancel that arrived earlier
-- returns CANCELLED at once. On return the task is off the list and the
-- heap.
local function suspend(wl, deadline, obj, fname)
  local th = current
  if th[CO] ~= running() or atomic > 0 or not isyieldable() then
    misuse(obj, fname)
  end
  if shutting or pending[th] then
    pending[th] = nil
    return CANCELLED
  end
  if wl then link(wl, th) end
  if deadline and deadline < huge then timer_push(th, deadline)
  else th[SUS] = true end
  return (yield())
end
S.suspend = suspend

-- Suspend on `wl` until woken, ignoring cancellation (which stays pending
-- for the next blocking call): for re-taking a lock that must be held again.
function S.suspend_nocancel(wl, obj, fname)
  local th = current
  if th[CO] ~= running() or atomic > 0 or not isyieldable() then
    misuse(obj, fname)
  end
  link(wl, th)
  th[SUS] = true
  th._nocancel = true
  yield()
  th._nocancel = false
end

-- A blocked task holds a call frame (and its stack slots) for every Lua
-- function between its own and yield, for as long as it waits: the waits
-- below are suspend() written out again, not calls of it, and their callers
-- reach them by tail calls, so a task blocked in q:get() or lock:acquire()
-- holds one frame on top of its own.

-- suspend(), as the answer most calls want: true when woken, false on
-- timeout; raises duet.cancelled.
function S.block(wl, deadline, obj, fname)
  local th = current
  if th[CO] ~= running() or atomic > 0 or not isyieldable() then
    misuse(obj, fname)
  end
  if not (shutting or pending[th]) then
    if wl then link(wl, th) end
    if deadline and deadline < huge then timer_push(th, deadline)
    else th[SUS] = true end
    local why = yield()
    if why == WOKEN then return true end
    if why == TIMEDOUT then return false end
    error(cancelled)
  end
  pending[th] = nil
  error(cancelled)
end

-- suspend() for a value handed over by whoever wakes the task (a queue's
-- getters): returns it; nil, "closed" when handed `closed`; nil, "empty" on
-- timeout; raises duet.cancelled.
function S.get_wait(wl, deadline, obj, fname, closed)
  local th = current
  if th[CO] ~= running() or atomic > 0 or not isyieldable() then
    misuse(obj, fname)
  end
  if not (shutting or pending[th]) then
    link(wl, th)
    if deadline and deadline < huge then timer_push(th, deadline)
    else th[SUS] = true end
    local why = yield()
    if why == WOKEN then
      local v = th[PREV]
      th[PREV] = false
      if v == closed then return nil, "closed" end
      return v
    end
    if why == TIMEDOUT then return nil, "empty" end
    error(cancelled)
  end
  pending[th] = nil
  error(cancelled)
end

-- The absolute deadline for a checked timeout (nil: none).
function S.deadline(timeout)
  if timeout then return now() + timeout end
  return nil
end

-- rt.sleep itself: sleep(0) goes to the back of the ready queue.
function S.sleep(seconds)
  local s = seconds
  if type(s) ~= "number" then s = check.number("sleep", 1, seconds) end
  if not (s >= 0) then
    check.argerror("sleep", 1, messages.duration)
  end
  local th = current
  if th[CO] ~= running() or atomic > 0 or not isyieldable() then
    misuse(nil, "sleep")
  end
  if not (shutting or pending[th]) then
    if s > 0 then
      local deadline = now() + s
      if deadline < huge then timer_push(th, deadline) else th[SUS] = true end
      if yield() ~= CANCELLED then return end
      error(cancelled)
    end
    schedule(th, WOKEN)
    yield()
    if not pending[th] then return end
  end
  pending[th] = nil
  error(cancelled)
end

-- Suspend the running task until descriptor fd is ready for ev (1: read,
-- 2: write) or until `deadline` (nil: none): true when ready, false on
-- timeout; raises duet.cancelled. (A socket's wait hook, csrc/socketio.c,
-- and rt.wait_readable / rt.wait_writable, which pass their name.)
local function wait_fd(fd, ev, deadline, fname)
  local th = current
  if th[CO] ~= running() or atomic > 0 or not isyieldable() then
    misuse(nil, fname)
  end
  local lists = ev == 1 and rwait or wwait
  local wl = lists[fd]
  if not wl then
    wl = S.list()
    lists[fd] = wl
  end
  if not wl[NEXT] then p_add(poller, fd, ev) end
  nfdwait = nfdwait + 1
  local why = suspend(wl, deadline)
  nfdwait = nfdwait - 1
  if why == WOKEN then return true end
  if not wl[NEXT] then p_del(poller, fd, ev) end   -- nobody else waits on it
  if why == TIMEDOUT then return false end
  error(cancelled)
end
S.wait_fd = wait_fd

-- wait_fd for csrc/socketio.c, whose deadlines are on the real clock: under
-- the virtual clock the wait lasts as long in real time.
function S.wait_fd_real(fd, ev, deadline)
  if vtime and deadline then deadline = vtime + (deadline - realnow()) end
  return wait_fd(fd, ev, deadline)
end

-- Descriptor fd is about to be closed: wake the tasks waiting on it (they
-- find it closed) and stop watching it.
function S.fd_closing(fd)
  local wl = rwait[fd]
  if wl then wake_all(wl) end
  wl = wwait[fd]
  if wl then wake_all(wl) end
  p_del(poller, fd, 3)
end

-- Ask the poller, waiting up to `timeout` seconds (-1: no limit), and wake
-- the tasks of every descriptor it reports.
local function poll(timeout)
  local n = p_wait(poller, timeout, pollout)
  polled = true
  for i = 1, 2 * n, 2 do
    local fd, ev = pollout[i], pollout[i + 1]
    if ev ~= 2 then
      local wl = rwait[fd]
      if wl then wake_all(wl) end
    end
    if ev ~= 1 then
      local wl = wwait[fd]
      if wl then wake_all(wl) end
    end
  end
  return n
end

-- Forbid blocking (and preemption) while fn runs (SharedTable:update's
-- atomicity).
function S.atomic(fn, v)
  atomic = atomic + 1
  if preempter then preempter:hold(1) end
  local ok, r = pcall(fn, v)
  if preempter then preempter:hold(-1) end
  atomic = atomic - 1
  return ok, r
end

----------------------------------------------------------------------- tasks

-- Report an error that ended a task nobody was joining.
function S.report(th, err, tb)
  local hook = require("duet").excepthook
  local ok, e = pcall(hook, th, err, tb)
  if not ok then
    io.stderr:write("duet: excepthook failed: ", tostring(e), "\n",
      tb or tostring(err), "\n")
  end
end

local function retire(th)
  if th[STATE] == ALIVE then nlive = nlive - 1 end
  local i, last = th[AI], alive[nalive]
  alive[i] = last
  last[AI] = i
  alive[nalive] = nil
  nalive = nalive - 1
  if pending[th] then pending[th] = nil end
  th[CO] = false
  local j = th[JOIN]
  if j then
    th[JOIN] = false
    wake_all(j)
    local n = nspare_lists
    if n < SPARE_LISTS_MAX then
      n = n + 1
      nspare_lists = n
      spare_lists[n] = j
    end
  end
end

local function finish(th, ...)
  th[VALS] = select("#", ...) > 0 and pack(...) or false
  retire(th)
  th[STATE] = DONE
end

-- A coroutine runs one task after another, parking in between.
-- Each is handed its task and the function the task runs.
local function body(th, fn)
  while true do
    if pending[th] then
      pending[th] = nil
      error(cancelled)   -- cancelled before it ever ran
    end
    local args = th[VALS]
    if args then finish(th, fn(unpack(args, 1, args.n)))
    else finish(th, fn()) end
    th, fn = nil, nil    -- luacheck: ignore 311 (parked, it keeps no task alive)
    th, fn = yield(PARKED)
  end
end

-- A task's coroutine raised `err`: keep it, with the coroutine's traceback.
local function fail(th, co, err)
  local msg = err
  if type(msg) ~= "string" then
    local ok, s = pcall(tostring, err)
    msg = ok and s or "(error object is not a string)"
  end
  local tb = traceback(co, msg)
  local j = th[JOIN]
  local watched = j and j[NEXT]
  th._err = err
  th._tb = tb
  th[VALS] = false
  retire(th)
  th[STATE] = FAILED
  if not watched and err ~= cancelled and th ~= mainthread then
    S.report(th, err, tb)
  end
end

local Thread             -- the tasks' metatable (thread.lua)
local idents = 0
local nameless = 0     -- tasks made without a name: their "Thread-N"
local executors = 0    -- numbers the Executors' default thread name prefixes
local executors_outside = 0   -- of them, made outside any rt.run

-- A new task, not started. The fields read on the hot paths are present
-- from the start, so they never go through Thread's __index function.
function S.new(target, vals, named)
  idents = idents + 1
  local num = false
  if not named then
    nameless = nameless + 1
    num = nameless
  end
  return setmetatable({ target, false, false, false, NEW, false, vals,
    idents, false, num }, Thread)
end

-- Start task `th` (a new Thread): it runs when the scheduler gets to it.
local function start(th, daemon)
  if not active then
    check.error("duet.coroutines: cannot start a task outside rt.run")
  end
  if daemon then
    th[STATE] = DAEMON
  else
    th[STATE] = ALIVE
    nlive = nlive + 1
  end
  nalive = nalive + 1
  alive[nalive] = th
  th[AI] = nalive
  schedule(th, WOKEN)
end
S.start = start

-- rt.spawn: a task of the running one (a daemon's tasks are daemons), made
-- and started in one go since it is the commonest way to make one.
function S.spawn(fn, ...)
  if type(fn) ~= "function" then check.func("spawn", 1, fn) end
  if not active then
    check.error("duet.coroutines: cannot start a task outside rt.run")
  end
  idents = idents + 1
  nameless = nameless + 1
  local n = nalive + 1
  local th = setmetatable({ fn, false, false, false, ALIVE, n,
    select("#", ...) > 0 and pack(...) or false, idents, false, nameless },
    Thread)
  if current[STATE] == DAEMON then
    th[STATE] = DAEMON
    th._daemon = true
  else
    nlive = nlive + 1
  end
  nalive = n
  alive[n] = th
  n = nready + 1
  nready = n
  ready[n] = th
  return th
end

-- rt.spawn, for a task named `name` (an executor's worker): it takes no
-- "Thread-N" (nothing runs between the two steps, so the count is exact).
function S.spawn_named(name, fn, ...)
  local th = S.spawn(fn, ...)
  th[NUM] = false
  nameless = nameless - 1
  th._name = name
  return th
end

-- Ask `th` to stop: its current or next blocking call raises duet.cancelled.
function S.cancel(th)
  if th[SUS] and not th._nocancel then
    wake(th, CANCELLED)
  else
    pending[th] = true
  end
end

-- Raise duet.cancelled if the running task has a cancel pending.
function S.check_cancel()
  local th = current
  if pending[th] then
    pending[th] = nil
    error(cancelled)
  end
end

-- Block the running task until `th` (alive) ends: S.block on th's joiners.
-- (The running task is always alive: only here can it be the one joined.)
function S.join_wait(th, deadline)
  if th == current then check.error(messages.join_current) end
  local j = th[JOIN]
  if not j then
    local n = nspare_lists
    if n > 0 then
      j = spare_lists[n]
      spare_lists[n] = nil
      nspare_lists = n - 1
    else
      j = S.list()
    end
    th[JOIN] = j
  end
  return S.block(j, deadline, th, "join")
end

function S.current()
  return current
end

S.now = now   -- preempt.lua's configure replaces it with the virtual clock

function S.active()
  return active
end

------------------------------------------------------------------- the loop

-- Run every task that is ready now, in order; then those they made ready,
-- batch after batch, while the loop has nothing else to do (no timer, no
-- descriptor, a live task left): a spawn + join takes two batches.
local function step_fifo()
  repeat
    local batch, bwhys, n = ready, whys, nready
    ready, whys, nready = spare, sparewhys, 0
    spare, sparewhys = batch, bwhys
    for i = 1, n do
      local th = batch[i]
      batch[i] = nil
      current = th
      local co = th[CO]
      local ok, r
      if co then
        ok, r = resume(co, bwhys[i])
      else                 -- its first turn: a parked coroutine, or a new one
        if npool > 0 then
          co = pool[npool]
          pool[npool] = nil
          npool = npool - 1
        else
          co = create(body)
        end
        th[CO] = co
        local fn = th[PREV]
        th[PREV] = false
        ok, r = resume(co, th, fn)
      end
      if not ok then
        fail(th, co, r)
      elseif r == PARKED and npool < POOL_MAX then
        npool = npool + 1
        pool[npool] = co
      end
    end
  until nready == 0 or nheap > 0 or rtail > 0 or nfdwait > 0 or nlive == 0
  current = mainthread
end
local step = step_fifo

-- Keep the last `tracemax` preemptions: task th was preempted at `where`.
local function note_preemption(th, where)
  local k = ntrace % tracemax + 1
  ntrace = ntrace + 1
  tracewho[k], tracewhere[k] = th.name, where
end

-- Seeded runs: run one ready task, drawn by the preempter; a task it
-- preempted goes back among the ready ones.
local function step_seeded()
  local n = nready
  local i = p_below(preempter, n)
  local th, why = ready[i], whys[i]
  ready[i], whys[i] = ready[n], whys[n]
  ready[n], whys[n] = nil, nil
  nready = n - 1
  current = th
  local co = th[CO]
  local ok, r
  if co then
    ok, r = resume(co, why)
  else
    if npool > 0 then
      co = pool[npool]
      pool[npool] = nil
      npool = npool - 1
    else
      co = create(body)
      p_arm(preempter, co)
    end
    th[CO] = co
    local fn = th[PREV]
    th[PREV] = false
    ok, r = resume(co, th, fn)
  end
  if not ok then
    fail(th, co, r)
  elseif r == PARKED then
    if npool < POOL_MAX then
      npool = npool + 1
      pool[npool] = co
    end
  else
    local where = p_take(preempter)
    if where then
      note_preemption(th, where)
      schedule(th, WOKEN)
    end
  end
  current = mainthread
end

-- The one place the scheduler waits for the outside world, when no task is
-- ready: one poll of the watched descriptors until `deadline`, the next
-- timer (nil: there is none). Returns false when nothing at all could wake
-- a task: no timer and no descriptor. (The poll raises "interrupted!" on
-- Ctrl-C.)
local function idle(deadline)
  if vtime then
    if nfdwait == 0 then
      if not deadline then return false end
      vtime = max(vtime, deadline)   -- nothing else can happen before it
      return true
    end
    -- A task waits on a descriptor: the world is outside the simulation,
    -- so virtual time runs at the real clock's pace until it answers.
    local t0 = realnow()
    local n = poll(deadline and max(deadline - vtime, 0) or -1)
    local t = vtime + (realnow() - t0)
    if deadline and (n == 0 or t > deadline) then t = max(vtime, deadline) end
    vtime = t
    return true
  end
  if not deadline then
    if nfdwait == 0 then return false end
    poll(-1)
    return true
  end
  local d = deadline - now()
  poll(d > 0 and d or 0)
  return true
end

local function names(most)
  local list = {}
  for i = 1, nalive do
    if i > most then list[#list + 1] = "..."; break end
    list[#list + 1] = alive[i].name
  end
  return table.concat(list, ", ")
end

local function loop()
  while true do
    if nlive == 0 then
      if nalive == 0 then return end
      if not shutting then
        -- only daemons are left: cancel them and let them unwind
        shutting = true
        for i = 1, nalive do S.cancel(alive[i]) end
      end
    end
    if nheap > 0 or rtail > 0 then
      local t = now()
      if next_deadline() <= t then fire(t) end
    end
    if nready > 0 then
      -- tasks that are always ready must not starve those waiting for I/O
      if nfdwait > 0 and not polled then poll(0) end
      polled = false
      step()
    elseif not idle(next_deadline()) then
      -- daemons that cannot unwind are closed by cleanup()
      if shutting then return end
      error(("duet.coroutines: deadlock: %d task(s) blocked forever (%s)")
        :format(nalive, names(8)), 0)
    end
  end
end

-- After the loop, however it ended: close what is left, reset the state.
local function cleanup()
  local left = alive
  alive, nalive, nlive, pending = {}, 0, 0, {}
  -- a seed replays the same preemptions only if every run starts alike:
  -- a spare list makes a join run fewer instructions than a new one
  spare_lists, nspare_lists = {}, 0
  rwait, wwait, nfdwait, polled = {}, {}, 0, false
  p_clear(poller)
  active = false         -- to-be-closed handlers run below may not spawn
  for i = 1, #left do
    local th = left[i]
    if th[NEXT] then unlink(th) end
    local co = th[CO]
    th[SUS], th[JOIN] = false, false
    th._err = cancelled
    th[STATE] = FAILED
    th[CO] = false
    -- runs the task's pending to-be-closed variables (lock guards, ...)
    if co then coclose(co) end
  end
  ready, whys, nready, spare, sparewhys = {}, {}, 0, {}, {}
  heap, hdl, nheap = {}, {}, 0
  run, rdl, rhead, rtail, rdead = {}, {}, 1, 0, 0
  shutting, atomic = false, 0
  current = mainthread
end

-- Run main(...) as the main task and drive the scheduler until main and
-- every non-daemon task are done. Returns main's results.
function S.run(main, ...)
  if active then check.error("duet.coroutines: rt.run is already running") end
  if preempter then
    -- A seeded run replays exactly, as the first after its options did:
    -- preempt.lua puts the options in force again (S.configure: a fresh
    -- generator from its seed, the virtual clock from 0, an empty trace);
    -- task idents and names count from 1 again.
    -- Finalizers written in Lua run in whichever task is running and count
    -- against its hook: collect earlier garbage now, not during the run.
    S.replay()
    collectgarbage()
    idents, nameless = 0, 0
    executors = executors_outside
  end
  local m = mainthread
  m[PREV] = main
  m[VALS] = select("#", ...) > 0 and pack(...) or false
  m._err, m._tb = false, false
  active = true
  start(m, false)
  local ok, err = pcall(loop)
  cleanup()
  local state, res, merr = m[STATE], m[VALS], m._err
  m[STATE], m[VALS], m._err = ALIVE, false, nil
  if not ok then error(err, 0) end
  if state == FAILED then
    if type(merr) == "string" then error(m._tb, 0) end
    error(merr, 0)
  end
  if res then return unpack(res, 1, res.n) end
end

-- Seeded runs on or off (preempt.lua checks the options): `p` a preempter
-- (core.preempter) or false, `virtual` the virtual clock (starting at 0),
-- `keep` how many preemptions the trace keeps.
function S.configure(p, virtual, keep)
  if active then
    check.error("duet.coroutines: cannot change the runtime's options inside rt.run")
  end
  if preempter then preempter:stop() end
  preempter = p
  if p then
    p_below, p_take, p_arm = p.below, p.take, p.arm
    step = step_seeded
  else
    step = step_fifo
  end
  pool, npool = {}, 0    -- parked coroutines carry the old hook, or none
  vtime = virtual and 0.0
  now = virtual and vnow or realnow
  S.now = now
  tracewho, tracewhere, ntrace, tracemax = {}, {}, 0, keep
end

-- The number of a new Executor, for its "Executor-N" prefix, counting
-- from 0; each seeded run counts on from those made outside any run, so
-- that it names its tasks as the last one did.
function S.number_executor()
  local n = executors
  executors = n + 1
  if not active then executors_outside = executors end
  return n
end

-- Whether runs are seeded (preempted by a preempter).
function S.seeded()
  return preempter ~= false
end

-- The last run's preemptions (the last `keep` of them), oldest first: a
-- list of {task = name, where = "source:line"}; and how many there were.
function S.trace()
  local list, n = {}, min(ntrace, tracemax)
  for j = 1, n do
    local k = (ntrace - n + j - 1) % tracemax + 1
    list[j] = { task = tracewho[k], where = tracewhere[k] }
  end
  return list, ntrace
end

-- Set up once by thread.lua: the tasks' metatable and the main task.
function S.setup(class, main)
  Thread = class
  mainthread = main
  current = main
end

return S
