-- The threads runtime's locks and signals (API.md, "Locks and signals"):
-- Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier as C
-- objects shared by reference between OS threads. What every runtime shares
-- is checked by spec/conformance/; this file holds what is particular to
-- OS threads: blocking and waking across threads, cancel while blocked in
-- each wait, timeouts that change nothing, exact wake counts, and the
-- exact error messages.
--
-- Thread targets are copied into the new thread's Lua state, so they share
-- state only through duet objects and report through return values. Threads
-- that could be left blocked when a case fails are daemons with bounded
-- waits, so a failure never hangs the run. No case asserts timing: a short
-- settle only makes the "already blocked" path the likely one, and every
-- case passes whichever path is taken.

local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local duet = require "duet"
local rt = duet.threads

local SHORT = 0.02                      -- timeouts that are meant to expire
local LONG = 5                          -- bounds waits that must succeed
local SETTLE = 0.01                     -- let a new thread reach its wait

--- A daemon thread running fn(...), started.
local function daemon(fn, ...)
  local th = rt.Thread{target = fn, args = table.pack(...), daemon = true}
  th:start()
  return th
end

--- Poll pred() (1 ms apart) until true or LONG passes; its last value.
local function wait_until(pred)
  local deadline = rt.now() + LONG
  while true do
    local v = pred()
    if v or rt.now() > deadline then return v end
    rt.sleep(0.001)
  end
end

--- Cancel th (blocked, or about to block) and check join's verdict.
local function cancel_and_join(th)
  rt.sleep(SETTLE)
  th:cancel()
  local ok, e = th:join(LONG)
  assert.is_false(ok)
  assert.is_true(e == duet.cancelled, tostring(e))
end

--- Can another thread take `x` right now? (Given back at once.)
local function free_elsewhere(x)
  local ok, got = rt.spawn(function()
    local got = x:acquire(0)
    if got then x:release() end
    return got
  end):join(LONG)
  assert.is_true(ok)
  return got
end

--- Permits of a semaphore, counted without changing it.
local function permits(s)
  local n = 0
  while s:acquire(0) do n = n + 1 end
  if n > 0 then s:release(n) end
  return n
end

--- The "waiters N" of a Condition's tostring.
local function cond_waiters(c)
  return tonumber(tostring(c):match("%(waiters (%d+)%)"))
end

describe("threads runtime: locks and signals", function()

  -- a new thread's state opens only the types that reach it: guard() there
  -- may be the first of any lock-like object's
  it("guard() works in a thread that was given only that object, and releases it", function()
    for _, make in ipairs { rt.Lock, rt.RLock, rt.Semaphore, rt.BoundedSemaphore,
                            rt.Condition } do
      local x = make()
      local ok, e = rt.spawn(function()
        do local _ <close> = x:guard() end
        return "closed"
      end):join(LONG)
      assert.are.same({ true, "closed" }, { ok, e }, tostring(x))
      assert.is_true(free_elsewhere(x), tostring(x))
    end
  end)

  describe("Lock", function()
    it("blocks another thread until released, then it takes it", function()
      local l, started = rt.Lock(), rt.Event()
      l:acquire()
      local th = daemon(function()
        started:set()
        local got = l:acquire(LONG)
        local still = l:locked()
        l:release()
        return got, still
      end)
      started:wait(LONG)
      rt.sleep(SETTLE)
      assert.is_true(th:is_alive())
      l:release()
      assert.are.same({true, true, true}, {th:join(LONG)})
      assert.is_false(l:locked())
    end)

    it("gives mutual exclusion to 4 threads x 2000 acquires", function()
      local l, inside = rt.Lock(), rt.Semaphore(1)
      local threads = {}
      for i = 1, 4 do
        threads[i] = daemon(function()
          local overlaps = 0
          for _ = 1, 2000 do
            l:acquire()
            -- only one thread may be here: it always finds the token
            if not inside:acquire(0) then overlaps = overlaps + 1
            else inside:release() end
            l:release()
          end
          return overlaps
        end)
      end
      for _, th in ipairs(threads) do
        assert.are.same({true, 0}, {th:join(LONG * 4)})
      end
      assert.is_false(l:locked())
    end)

    it("is cancelled while blocked in acquire and stays usable", function()
      local l = rt.Lock()
      l:acquire()
      local th = daemon(function() return l:acquire() end)
      cancel_and_join(th)
      assert.is_true(l:locked())           -- still the main thread's
      assert.is_false(free_elsewhere(l))
      l:release()
      assert.is_true(free_elsewhere(l))
      assert.is_true(l:acquire(0))
      l:release()
    end)

    it("(timeout) in another thread holds nothing afterwards", function()
      local l = rt.Lock()
      l:acquire()
      local th = daemon(function() return l:acquire(SHORT) end)
      assert.are.same({true, false}, {th:join(LONG)})
      l:release()
      assert.is_false(l:locked())
      assert.is_true(free_elsewhere(l))
    end)

    it("hands over to every one of several blocked threads", function()
      local l, done = rt.Lock(), rt.Semaphore(0)
      l:acquire()
      local threads = {}
      for i = 1, 5 do
        threads[i] = daemon(function()
          local got = l:acquire(LONG)
          done:release()
          l:release()
          return got
        end)
      end
      rt.sleep(SETTLE)
      l:release()
      for _, th in ipairs(threads) do assert.are.same({true, true}, {th:join(LONG)}) end
      assert.are.equal(5, permits(done))
      assert.is_false(l:locked())
    end)

    it(":with() works across a coroutine yield inside fn", function()
      local l = rt.Lock()
      local co = coroutine.wrap(function()
        return l:with(function(a) return coroutine.yield(a) + 1 end, 10)
      end)
      assert.are.equal(10, co())
      assert.is_true(l:locked())            -- held across the yield
      assert.are.equal(42, co(41))
      assert.is_false(l:locked())
    end)

    it(":with() re-raises a non-string error value unchanged", function()
      local l = rt.Lock()
      local ok, e = pcall(l.with, l, function() error(duet.timeout) end)
      assert.is_false(ok)
      assert.is_true(e == duet.timeout)
      assert.is_false(l:locked())
    end)

    it(":guard() works in another thread", function()
      local l = rt.Lock()
      local th = daemon(function()
        do
          local _ <close> = l:guard()
          if not l:locked() then return "not held" end
        end
        return l:locked()
      end)
      assert.are.same({true, false}, {th:join(LONG)})
    end)

    it("shows its state in tostring", function()
      local l = rt.Lock()
      assert.matches("^duet%.Lock %(unlocked%): 0x%x+$", tostring(l))
      l:acquire()
      assert.matches("^duet%.Lock %(locked%): 0x%x+$", tostring(l))
    end)

    it("is the same object in every thread", function()
      local l = rt.Lock()
      local ok, same = rt.spawn(function(a, b) return a == b and rawequal(a, b) end, l, l):join()
      assert.is_true(ok and same)
      local ok2, back = rt.spawn(function(x) return x end, l):join()
      assert.is_true(ok2)
      assert.is_true(rawequal(back, l))
    end)

    describe("errors", function()
      it("release of an unlocked lock", function()
        local l = rt.Lock()
        assert.has_error(function() l:release() end, "release unlocked lock")
      end)

      it("bad timeouts", function()
        local l = rt.Lock()
        assert.has_error(function() l:acquire(-1) end,
          "bad argument #1 to 'acquire' (timeout must be a non-negative number)")
        assert.has_error(function() l:acquire(0 / 0) end,
          "bad argument #1 to 'acquire' (timeout must be a non-negative number)")
        assert.has_error(function() l:acquire("soon") end,
          "bad argument #1 to 'acquire' (number expected, got string)")
        assert.is_false(l:locked())         -- a bad call took nothing
      end)

      it("bad self", function()
        local l = rt.Lock()
        local acquire, release = l.acquire, l.release
        assert.has_error(function() acquire(42) end,
          "bad argument #1 to 'acquire' (duet.Lock expected, got number)")
        assert.has_error(function() release(io.stdout) end,
          "bad argument #1 to 'release' (duet.Lock expected, got FILE*)")
        assert.has_error(function() acquire(rt.RLock()) end,
          "bad argument #1 to 'acquire' (duet.Lock expected, got duet.RLock)")
      end)

      it("with() without a function", function()
        local l = rt.Lock()
        assert.has_error(function() l:with() end,
          "bad argument #1 to 'with' (function expected, got no value)")
        assert.has_error(function() l:with(42) end,
          "bad argument #1 to 'with' (function expected, got number)")
        assert.is_false(l:locked())
      end)
    end)
  end)

  describe("RLock", function()
    it("belongs to the thread that took it, not to the OS thread", function()
      local l = rt.RLock()
      -- a thread that ends while holding it leaves it held; the next
      -- thread (likely on the same pooled OS thread) is not its owner
      assert.is_true((rt.spawn(function() return l:acquire() end):join(LONG)))
      local ok, got, rel = rt.spawn(function()
        return l:acquire(0), (pcall(l.release, l))
      end):join(LONG)
      assert.is_true(ok)
      assert.is_false(got)
      assert.is_false(rel)
      assert.is_false(l:acquire(0))
      assert.is_true(l:locked())
    end)

    it("release by a non-owner raises and changes nothing", function()
      local l = rt.RLock()
      l:acquire()
      local ok, released, msg = rt.spawn(function()
        local ok2, e = pcall(l.release, l)
        return ok2, (tostring(e):gsub("^.-:%d+: ", "", 1))
      end):join(LONG)
      assert.is_true(ok)
      assert.is_false(released)
      assert.are.equal("cannot release un-acquired lock", msg)
      assert.is_false(free_elsewhere(l))
      l:release()
      assert.is_true(free_elsewhere(l))
    end)

    it("is cancelled while blocked in acquire and stays usable", function()
      local l = rt.RLock()
      l:acquire()
      l:acquire()
      local th = daemon(function() return l:acquire() end)
      cancel_and_join(th)
      assert.matches("owner %d+, count 2", tostring(l))
      l:release()
      l:release()
      assert.is_true(free_elsewhere(l))
    end)

    it("releases every level before another thread gets it", function()
      local l, levels = rt.RLock(), 3
      for _ = 1, levels do l:acquire() end
      local th = daemon(function() return l:acquire(LONG) end)
      for _ = 1, levels - 1 do
        l:release()
        assert.is_false(free_elsewhere(l))
      end
      l:release()
      assert.are.same({true, true}, {th:join(LONG)})
    end)

    it("shows owner and count in tostring", function()
      local l = rt.RLock()
      assert.matches("^duet%.RLock %(unlocked%): 0x%x+$", tostring(l))
      l:acquire()
      l:acquire()
      assert.matches("^duet%.RLock %(owner " .. rt.current().ident .. ", count 2%)", tostring(l))
    end)

    it("release when not held raises", function()
      assert.has_error(function() rt.RLock():release() end,
        "cannot release un-acquired lock")
    end)
  end)

  describe("Semaphore", function()
    it("release(n) wakes exactly n of the blocked threads", function()
      local s, woke = rt.Semaphore(0), rt.Semaphore(0)
      local threads = {}
      for i = 1, 4 do
        threads[i] = daemon(function()
          local got = s:acquire(LONG)
          woke:release()
          return got
        end)
      end
      rt.sleep(SETTLE)
      s:release(2)
      assert.is_true(woke:acquire(LONG))
      assert.is_true(woke:acquire(LONG))
      assert.is_false(woke:acquire(SHORT))  -- no third
      s:release(2)
      for _, th in ipairs(threads) do assert.are.same({true, true}, {th:join(LONG)}) end
      assert.are.equal(0, permits(s))
    end)

    it("never lets more than its value in at once (4 threads)", function()
      local s, inside = rt.Semaphore(2), rt.Semaphore(2)
      local threads = {}
      for i = 1, 4 do
        threads[i] = daemon(function()
          local over = 0
          for _ = 1, 1000 do
            s:acquire()
            if not inside:acquire(0) then over = over + 1
            else inside:release() end
            s:release()
          end
          return over
        end)
      end
      for _, th in ipairs(threads) do assert.are.same({true, 0}, {th:join(LONG * 4)}) end
      assert.are.equal(2, permits(s))
    end)

    it("is cancelled while blocked in acquire and keeps its count", function()
      local s = rt.Semaphore(0)
      local th = daemon(function() return s:acquire() end)
      cancel_and_join(th)
      assert.are.equal(0, permits(s))
      s:release()
      assert.are.equal(1, permits(s))
      assert.is_true(free_elsewhere(s))
    end)

    it("(timeout) in another thread takes nothing", function()
      local s = rt.Semaphore(0)
      assert.are.same({true, false}, {daemon(function() return s:acquire(SHORT) end):join(LONG)})
      s:release()
      assert.are.equal(1, permits(s))
    end)

    it("a release after a timed-out waiter still wakes the next one", function()
      local s = rt.Semaphore(0)
      local quick = daemon(function() return s:acquire(SHORT) end)
      local slow = daemon(function() return s:acquire(LONG) end)
      assert.are.same({true, false}, {quick:join(LONG)})
      s:release()
      assert.are.same({true, true}, {slow:join(LONG)})
      assert.are.equal(0, permits(s))
    end)

    it("shows its value in tostring", function()
      assert.matches("^duet%.Semaphore %(value 3%): 0x%x+$", tostring(rt.Semaphore(3)))
      assert.matches("^duet%.BoundedSemaphore %(value 0%): 0x%x+$",
        tostring(rt.BoundedSemaphore(0)))
    end)

    describe("errors", function()
      it("bad start values", function()
        assert.has_error(function() rt.Semaphore(-1) end,
          "bad argument #1 to 'Semaphore' (value must be non-negative)")
        assert.has_error(function() rt.BoundedSemaphore(-2) end,
          "bad argument #1 to 'BoundedSemaphore' (value must be non-negative)")
        assert.has_error(function() rt.Semaphore(1.5) end,
          "bad argument #1 to 'Semaphore' (number has no integer representation)")
        assert.has_error(function() rt.Semaphore("many") end,
          "bad argument #1 to 'Semaphore' (number expected, got string)")
      end)

      it("bad release counts change nothing", function()
        local s = rt.Semaphore(1)
        assert.has_error(function() s:release(0) end,
          "bad argument #1 to 'release' (n must be at least 1)")
        assert.has_error(function() s:release(-3) end,
          "bad argument #1 to 'release' (n must be at least 1)")
        assert.are.equal(1, permits(s))
      end)

      it("a bounded one released above its start value, from any thread", function()
        local s = rt.BoundedSemaphore(2)
        assert.has_error(function() s:release() end, "semaphore released too many times")
        s:acquire()
        local ok, released, msg = daemon(function()
          local ok2, e = pcall(s.release, s, 2)
          return ok2, (tostring(e):gsub("^.-:%d+: ", "", 1))
        end):join(LONG)
        assert.is_true(ok)
        assert.is_false(released)
        assert.are.equal("semaphore released too many times", msg)
        assert.are.equal(1, permits(s))
      end)

      it("bad self names the right type", function()
        local acquire = rt.BoundedSemaphore().acquire
        assert.has_error(function() acquire(rt.Semaphore()) end,
          "bad argument #1 to 'acquire' (duet.BoundedSemaphore expected, got duet.Semaphore)")
      end)
    end)
  end)

  describe("Condition", function()
    --- Take c's lock, bounded so that a bug fails instead of hanging.
    local function take(c)
      assert.is_true(c:acquire(LONG), "could not take the lock")
    end

    --- n threads that take c (with: a cancelled one gives it back), count
    --- themselves in `arrived`, wait, count themselves in `woke`, and
    --- return wait's result.
    local function waiters(c, n, arrived, woke)
      local threads = {}
      for i = 1, n do
        threads[i] = daemon(function()
          return c:with(function()
            arrived:release()
            local r = c:wait(LONG)
            woke:release()
            return r
          end)
        end)
      end
      for _ = 1, n do assert(arrived:acquire(LONG), "a waiter did not arrive") end
      -- each gave the lock up only by waiting: holding it now means all wait
      take(c)
      assert.are.equal(n, cond_waiters(c))
      c:release()
      return threads
    end

    it("notify(n) wakes exactly n, then notify_all the rest", function()
      local c, arrived, woke = rt.Condition(), rt.Semaphore(0), rt.Semaphore(0)
      local threads = waiters(c, 5, arrived, woke)
      take(c)
      c:notify(2)
      assert.are.equal(3, cond_waiters(c))
      c:release()
      assert.is_true(woke:acquire(LONG))
      assert.is_true(woke:acquire(LONG))
      assert.is_false(woke:acquire(SHORT))
      take(c)
      c:notify()
      c:release()
      assert.is_true(woke:acquire(LONG))
      assert.is_false(woke:acquire(SHORT))
      take(c)
      c:notify_all()
      c:release()
      for _, th in ipairs(threads) do assert.are.same({true, true}, {th:join(LONG)}) end
      assert.are.equal(2, permits(woke))
    end)

    it("notify(0) and negative n wake nobody", function()
      local c, arrived, woke = rt.Condition(), rt.Semaphore(0), rt.Semaphore(0)
      local threads = waiters(c, 1, arrived, woke)
      take(c)
      c:notify(0)
      c:notify(-1)
      assert.are.equal(1, cond_waiters(c))
      c:notify()
      c:release()
      assert.are.same({true, true}, {threads[1]:join(LONG)})
    end)

    it("is cancelled while blocked in wait: raises with the lock held again", function()
      local c, arrived = rt.Condition(), rt.Semaphore(0)
      local th = daemon(function()
        c:acquire()
        c:acquire()                         -- two levels, restored after
        arrived:release()
        local ok, e = pcall(c.wait, c)
        local r1, r2 = pcall(c.release, c), pcall(c.release, c)
        return ok, e == duet.cancelled, r1, r2, (pcall(c.release, c))
      end)
      assert.is_true(arrived:acquire(LONG))
      assert.is_true(wait_until(function() return cond_waiters(c) == 1 end))
      th:cancel()
      assert.are.same({true, false, true, true, true, false}, {th:join(LONG)})
      assert.are.equal(0, cond_waiters(c))
      assert.is_true(free_elsewhere(c))
    end)

    it("a cancelled waiter leaves; join gives duet.cancelled; notify goes to the others", function()
      local c, arrived, woke = rt.Condition(), rt.Semaphore(0), rt.Semaphore(0)
      local threads = waiters(c, 2, arrived, woke)
      threads[1]:cancel()
      local ok, e = threads[1]:join(LONG)
      assert.is_false(ok)
      assert.is_true(e == duet.cancelled, tostring(e))
      assert.is_true(wait_until(function() return cond_waiters(c) == 1 end))
      take(c)
      c:notify()
      c:release()
      assert.are.same({true, true}, {threads[2]:join(LONG)})
      assert.are.equal(1, permits(woke))
    end)

    it("(timeout) leaves no waiter behind and holds the lock again", function()
      local l = rt.Lock()
      local c = rt.Condition(l)
      local th = daemon(function()
        c:acquire()
        local r = c:wait(SHORT)
        return r, l:locked(), (pcall(c.release, c))
      end)
      assert.are.same({true, false, true, true}, {th:join(LONG)})
      assert.are.equal(0, cond_waiters(c))
      assert.is_false(l:locked())
    end)

    it("wait releases every level of its RLock and restores them", function()
      local c, arrived = rt.Condition(), rt.Semaphore(0)
      local th = daemon(function()
        for _ = 1, 3 do c:acquire() end
        arrived:release()
        local r = c:wait(LONG)
        local n = 0
        while pcall(c.release, c) do n = n + 1 end
        return r, n
      end)
      assert.is_true(arrived:acquire(LONG))
      assert.is_true(c:acquire(LONG))        -- possible only once all 3 went
      c:notify()
      c:release()
      assert.are.same({true, true, 3}, {th:join(LONG)})
    end)

    it("(lock) shares that lock with other threads", function()
      local l = rt.Lock()
      local c = rt.Condition(l)
      l:acquire()
      assert.are.same({true, false}, {daemon(function() return c:acquire(0) end):join(LONG)})
      l:release()
      assert.are.same({true, true}, {daemon(function()
        local got = c:acquire(0)
        c:release()
        return got
      end):join(LONG)})
    end)

    it("wait_for wakes on notify and rechecks the predicate", function()
      local c, flag, arrived = rt.Condition(), rt.Event(), rt.Semaphore(0)
      local th = daemon(function()
        c:acquire()
        arrived:release()
        local calls = 0
        local r = c:wait_for(function()
          calls = calls + 1
          return flag:is_set() and calls
        end, LONG)
        c:release()
        return r
      end)
      assert.is_true(arrived:acquire(LONG))
      assert.is_true(wait_until(function() return cond_waiters(c) == 1 end))
      take(c); c:notify(); c:release()   -- still false: waits again
      assert.is_true(wait_until(function() return cond_waiters(c) == 1 end))
      take(c); flag:set(); c:notify(); c:release()
      local ok, calls = th:join(LONG)
      assert.is_true(ok)
      assert.are.equal(3, calls)
    end)

    it("wait_for is cancelled while blocked", function()
      local c = rt.Condition()
      local th = daemon(function()
        c:acquire()
        return c:wait_for(function() return false end)
      end)
      assert.is_true(wait_until(function() return cond_waiters(c) == 1 end))
      th:cancel()
      local ok, e = th:join(LONG)
      assert.is_false(ok)
      assert.is_true(e == duet.cancelled)
      assert.are.equal(0, cond_waiters(c))
    end)

    it("wait_for re-raises the predicate's error", function()
      local c = rt.Condition()
      c:acquire()
      local ok, e = pcall(c.wait_for, c, function() error(duet.broken_barrier) end)
      assert.is_false(ok)
      assert.is_true(e == duet.broken_barrier)
      c:release()
    end)

    describe("errors", function()
      it("wait or notify without the lock, or with another thread's RLock", function()
        local c = rt.Condition()
        assert.has_error(function() c:wait() end, "cannot wait on un-acquired lock")
        assert.has_error(function() c:wait(0) end, "cannot wait on un-acquired lock")
        assert.has_error(function() c:notify() end, "cannot notify on un-acquired lock")
        assert.has_error(function() c:notify_all() end, "cannot notify on un-acquired lock")
        c:acquire()
        local ok, w, n = daemon(function()
          local _, e1 = pcall(c.wait, c, SHORT)
          local _, e2 = pcall(c.notify, c)
          return (tostring(e1):gsub("^.-:%d+: ", "", 1)),
                 (tostring(e2):gsub("^.-:%d+: ", "", 1))
        end):join(LONG)
        assert.is_true(ok)
        assert.are.equal("cannot wait on un-acquired lock", w)
        assert.are.equal("cannot notify on un-acquired lock", n)
        c:release()
      end)

      it("bad arguments", function()
        assert.has_error(function() rt.Condition(42) end,
          "bad argument #1 to 'Condition' (duet.Lock or duet.RLock expected, got number)")
        assert.has_error(function() rt.Condition(rt.Semaphore()) end,
          "bad argument #1 to 'Condition' (duet.Lock or duet.RLock expected, got duet.Semaphore)")
        local c = rt.Condition()
        c:acquire()
        assert.has_error(function() c:wait(-1) end,
          "bad argument #1 to 'wait' (timeout must be a non-negative number)")
        assert.has_error(function() c:wait_for(42) end,
          "bad argument #1 to 'wait_for' (function expected, got number)")
        assert.has_error(function() c:wait_for(function() end, -1) end,
          "bad argument #2 to 'wait_for' (timeout must be a non-negative number)")
        assert.has_error(function() c:notify("x") end,
          "bad argument #1 to 'notify' (number expected, got string)")
        c:release()
      end)
    end)
  end)

  describe("Event", function()
    it("set wakes every blocked thread", function()
      local ev, woke = rt.Event(), rt.Semaphore(0)
      local threads = {}
      for i = 1, 4 do
        threads[i] = daemon(function()
          local r = ev:wait(LONG)
          woke:release()
          return r
        end)
      end
      rt.sleep(SETTLE)
      assert.is_false(woke:acquire(0))
      ev:set()
      for _, th in ipairs(threads) do assert.are.same({true, true}, {th:join(LONG)}) end
      assert.are.equal(4, permits(woke))
    end)

    it("is cancelled while blocked in wait and stays usable", function()
      local ev = rt.Event()
      local th = daemon(function() return ev:wait() end)
      cancel_and_join(th)
      assert.is_false(ev:is_set())
      local other = daemon(function() return ev:wait(LONG) end)
      ev:set()
      assert.are.same({true, true}, {other:join(LONG)})
    end)

    it("(timeout) in another thread changes nothing", function()
      local ev = rt.Event()
      assert.are.same({true, false}, {daemon(function() return ev:wait(SHORT) end):join(LONG)})
      assert.is_false(ev:is_set())
    end)

    it("clear in one thread is seen in another", function()
      local ev = rt.Event()
      ev:set()
      assert.are.same({true, true}, {daemon(function() ev:clear(); return true end):join(LONG)})
      assert.is_false(ev:is_set())
      assert.is_false(ev:wait(0))
    end)

    it("shows its state in tostring", function()
      local ev = rt.Event()
      assert.matches("^duet%.Event %(unset%): 0x%x+$", tostring(ev))
      ev:set()
      assert.matches("^duet%.Event %(set%): 0x%x+$", tostring(ev))
    end)

    it("bad timeouts", function()
      assert.has_error(function() rt.Event():wait(-0.5) end,
        "bad argument #1 to 'wait' (timeout must be a non-negative number)")
    end)
  end)

  describe("Barrier", function()
    --- n parties (daemons) that each pass b `passes` times, returning the
    --- indices they got.
    local function parties(b, n, passes)
      local threads = {}
      for i = 1, n do
        threads[i] = daemon(function()
          local got = {}
          for p = 1, passes do got[p] = b:wait(LONG) end
          return got
        end)
      end
      local results = {}
      for i, th in ipairs(threads) do
        local ok, got = th:join(LONG * 2)
        assert(ok, tostring(got))
        results[i] = got
      end
      return results
    end

    it("gives indices 0..n-1 in every pass", function()
      local n, passes = 4, 20
      local b = rt.Barrier(n)
      local results = parties(b, n, passes)
      for p = 1, passes do
        local seen = {}
        for i = 1, n do seen[#seen + 1] = results[i][p] end
        table.sort(seen)
        assert.are.same({0, 1, 2, 3}, seen)
      end
      assert.are.equal(0, b.n_waiting)
      assert.is_false(b.broken)
    end)

    it("runs the action once per pass in an arriving thread before releasing any", function()
      local actions = rt.Semaphore(0)
      local b = rt.Barrier(3, function()
        assert(rt.current().name:match("^party"), "action outside the parties")
        actions:release()
      end)
      local threads = {}
      for i = 1, 3 do
        threads[i] = rt.Thread{name = "party" .. i, daemon = true, target = function()
          for p = 1, 5 do
            b:wait(LONG)
            -- released only after this pass's action ran
            local n = tonumber(tostring(actions):match("value (%d+)"))
            if n < p then return "released before action " .. p end
          end
          return "ok"
        end}
        threads[i]:start()
      end
      for _, th in ipairs(threads) do assert.are.same({true, "ok"}, {th:join(LONG)}) end
      assert.are.equal(5, permits(actions))
    end)

    it("an action error reaches its thread; the others get broken_barrier", function()
      local b = rt.Barrier(2, function() error("no way", 0) end)
      local th = daemon(function()
        local ok, e = pcall(b.wait, b, LONG)
        return ok, e == duet.broken_barrier and "broken" or e
      end)
      assert.is_true(wait_until(function() return b.n_waiting == 1 end))
      local ok, e = pcall(b.wait, b, LONG)
      local _, tok, te = th:join(LONG)
      assert.are.same({false, "no way"}, {ok, e})   -- the last one ran it
      assert.are.same({false, "broken"}, {tok, te})
      assert.is_true(b.broken)
    end)

    it("a pass whose last party arrived completes even if a waiter's timeout passes during the action", function()
      -- The action runs until the waiter's deadline has passed, with half
      -- the timeout to spare: the waiter reads the clock for st.deadline a
      -- moment before wait does for its own. Main must arrive before that
      -- deadline: when a loaded machine made it late (the barrier broke),
      -- the case runs again with a longer timeout.
      local function attempt(timeout)
        local st = rt.SharedTable()
        local b = rt.Barrier(2, function()
          while rt.now() <= st.deadline + timeout / 2 do rt.sleep(0.005) end
        end)
        local th = daemon(function()
          st.deadline = rt.now() + timeout
          return b:wait(timeout)
        end)
        assert.is_true(wait_until(function()
          return b.n_waiting == 1 or not th:is_alive()
        end))
        local arrived, mine = pcall(b.wait, b, LONG)
        return b, th, arrived, mine
      end
      local timeout = 0.25
      local b, th, arrived, mine = attempt(timeout)
      while not arrived and timeout < 4 do
        th:join(LONG)
        timeout = timeout * 2
        b, th, arrived, mine = attempt(timeout)
      end
      assert.is_true(arrived, tostring(mine))
      local ok, theirs = th:join(LONG)
      assert.is_true(ok, tostring(theirs))
      assert.are.same({0, 1}, {math.min(mine, theirs), math.max(mine, theirs)})
      assert.is_false(b.broken)
    end)

    it("is cancelled while blocked: the party never came, the barrier is not broken", function()
      local b = rt.Barrier(3)
      local th = daemon(function() return b:wait() end)
      assert.is_true(wait_until(function() return b.n_waiting == 1 end))
      th:cancel()
      local ok, e = th:join(LONG)
      assert.is_false(ok)
      assert.is_true(e == duet.cancelled, tostring(e))
      assert.are.equal(0, b.n_waiting)
      assert.is_false(b.broken)
      local results = parties(b, 3, 2)
      for p = 1, 2 do
        local seen = {results[1][p], results[2][p], results[3][p]}
        table.sort(seen)
        assert.are.same({0, 1, 2}, seen)
      end
    end)

    it("a cancelled early arrival does not leave an index gap", function()
      local b = rt.Barrier(3)
      local first = daemon(function() return b:wait(LONG) end)
      assert.is_true(wait_until(function() return b.n_waiting == 1 end))
      local second = daemon(function() return b:wait(LONG) end)
      assert.is_true(wait_until(function() return b.n_waiting == 2 end))
      first:cancel()
      assert.is_false((first:join(LONG)))
      assert.is_true(wait_until(function() return b.n_waiting == 1 end))
      local third = daemon(function() return b:wait(LONG) end)
      assert.is_true(wait_until(function() return b.n_waiting == 2 end))
      local mine = b:wait(LONG)
      local _, i2 = second:join(LONG)
      local _, i3 = third:join(LONG)
      local seen = {mine, i2, i3}
      table.sort(seen)
      assert.are.same({0, 1, 2}, seen)
      assert.are.equal(2, mine)             -- the last to arrive
    end)

    it("(timeout) breaks it for every waiter until reset", function()
      local b = rt.Barrier(3)
      local a = daemon(function()
        local ok, e = pcall(b.wait, b, LONG)
        return ok, e == duet.broken_barrier
      end)
      assert.is_true(wait_until(function() return b.n_waiting == 1 end))
      local ok, e = pcall(b.wait, b, SHORT)
      assert.is_false(ok)
      assert.is_true(e == duet.broken_barrier)
      assert.are.same({true, false, true}, {a:join(LONG)})
      assert.is_true(b.broken)
      assert.are.equal(0, b.n_waiting)
      assert.matches("^duet%.Barrier %(0/3 waiting, broken%): 0x%x+$", tostring(b))
      b:reset()
      assert.is_false(b.broken)
      assert.are.equal(3, #parties(b, 3, 1))
    end)

    it("reset and abort from another thread reach the waiters", function()
      local b = rt.Barrier(3)
      local function waiter()
        return daemon(function()
          local ok, e = pcall(b.wait, b, LONG)
          return ok, e == duet.broken_barrier
        end)
      end
      local w1, w2 = waiter(), waiter()
      assert.is_true(wait_until(function() return b.n_waiting == 2 end))
      assert.is_true((daemon(function() b:reset(); return true end):join(LONG)))
      assert.are.same({true, false, true}, {w1:join(LONG)})
      assert.are.same({true, false, true}, {w2:join(LONG)})
      assert.is_false(b.broken)
      local w3 = waiter()
      assert.is_true(wait_until(function() return b.n_waiting == 1 end))
      assert.is_true((daemon(function() b:abort(); return true end):join(LONG)))
      assert.are.same({true, false, true}, {w3:join(LONG)})
      assert.is_true(b.broken)
    end)

    it("has fields parties, n_waiting and broken beside its methods", function()
      local b = rt.Barrier(2)
      assert.are.equal(2, b.parties)
      assert.are.equal(0, b.n_waiting)
      assert.is_false(b.broken)
      assert.is_nil(b.nope)
      assert.is_function(b.wait)
      assert.matches("^duet%.Barrier %(0/2 waiting%): 0x%x+$", tostring(b))
    end)

    describe("errors", function()
      it("bad arguments", function()
        assert.has_error(function() rt.Barrier(0) end,
          "bad argument #1 to 'Barrier' (parties must be at least 1)")
        assert.has_error(function() rt.Barrier() end,
          "bad argument #1 to 'Barrier' (number expected, got no value)")
        assert.has_error(function() rt.Barrier(2, 42) end,
          "bad argument #2 to 'Barrier' (function expected, got number)")
        local f = io.stdout
        assert.has_error(function() rt.Barrier(2, function() return f end) end,
          "cannot move userdata (FILE*) at action<upvalue f>")
        assert.has_error(function() rt.Barrier(2):wait(-1) end,
          "bad argument #1 to 'wait' (timeout must be a non-negative number)")
      end)
    end)
  end)
end)
