-- Conformance: Condition.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local describe, it = busted.describe, busted.it
local SHORT, LONG = H.SHORT, H.LONG

-- Start `n` threads that each take the condition's lock, report on queue
-- `arrived`, then wait (with timeout LONG, a safety bound). When main has
-- read n reports and then holds the lock, all n are inside wait(). Each
-- reports on `woke` when its wait returns, and returns wait's result.
local function waiters(rt, cond, n, arrived, woke)
  local threads = {}
  for i = 1, n do
    threads[i] = H.go(rt, function()
      cond:acquire()
      arrived:put(i)
      local r = cond:wait(LONG)
      woke:put(i)
      cond:release()
      return r
    end)
  end
  for _ = 1, n do assert(arrived:get(LONG), "waiter did not arrive") end
  return threads
end

-- How many items `q` yields within a short time, without blocking long.
local function drain(q)
  local n = 0
  while q:get(SHORT) ~= nil do n = n + 1 end
  return n
end

return function(rt)
  describe("Condition", function()
    if not H.has(rt, "Condition") then return end

    H.describe_name(rt, "duet.Condition", function() return rt.Condition() end)

    describe("rt.Condition()", function()
      it("without a lock makes its own RLock (reentrant)", function()
        H.run(rt, function()
          local c = rt.Condition()
          assert.is_true(c:acquire())
          assert.is_true(c:acquire(0))
          c:release()
          assert.is_false(H.free_elsewhere(rt, c))
          c:release()
          assert.is_true(H.free_elsewhere(rt, c))
        end)
      end)

      H.it_needs(rt, {"Lock"}, "(lock) uses the given lock", function()
        H.run(rt, function()
          local l = rt.Lock()
          local c = rt.Condition(l)
          c:acquire()
          assert.is_true(l:locked())
          assert.is_false(c:acquire(0))  -- a Lock is not reentrant
          c:release()
          assert.is_false(l:locked())
          l:acquire()
          assert.is_false(H.free_elsewhere(rt, c))
          l:release()
        end)
      end)
    end)

    describe(":acquire()", function()
      it("(timeout) returns false while another thread holds it", function()
        H.run(rt, function()
          local c = rt.Condition()
          c:acquire()
          local th = rt.spawn(function() return c:acquire(SHORT) end)
          assert.are.same({true, false}, {th:join()})
          c:release()
        end)
      end)
    end)

    describe(":wait()", function()
      it("raises when the lock is not held", function()
        H.run(rt, function()
          local c = rt.Condition()
          assert.has_error(function() c:wait(0) end)
          assert.has_error(function() c:wait(SHORT) end)
        end)
      end)

      H.it_needs(rt, {"Lock"}, "(timeout) returns false and holds the lock again", function()
        H.run(rt, function()
          local l = rt.Lock()
          local c = rt.Condition(l)
          c:acquire()
          assert.is_false(c:wait(SHORT))
          assert.is_true(l:locked())
          c:release()
          assert.is_false(l:locked())
        end)
      end)

      it("releases the lock while waiting", function()
        H.run(rt, function()
          local c, started = rt.Condition(), rt.Event()
          local th = rt.spawn(function()
            c:acquire()
            started:set()
            local r = c:wait(LONG)
            c:release()
            return r
          end)
          started:wait(LONG)
          assert.is_true(c:acquire(LONG))  -- only possible once th waits
          c:notify()
          c:release()
          assert.are.same({true, true}, {th:join(LONG)})
        end)
      end)

      it("() returns true when notified, holding the lock again", function()
        H.run(rt, function()
          local c, started = rt.Condition(), rt.Event()
          local th = H.go(rt, function()
            c:acquire()
            started:set()
            local r = c:wait()
            return r, (pcall(c.release, c))  -- fails unless held again
          end)
          started:wait(LONG)
          c:acquire()
          c:notify()
          c:release()
          assert.are.same({true, true, true}, {th:join(LONG)})
        end)
      end)
    end)

    describe(":notify()", function()
      H.it_needs(rt, {"Queue"}, "() wakes exactly one waiter", function()
        H.run(rt, function()
          local c, arrived, woke = rt.Condition(), rt.Queue(), rt.Queue()
          local threads = waiters(rt, c, 3, arrived, woke)
          c:acquire()
          c:notify()
          c:release()
          assert.is_not_nil(woke:get(LONG))
          assert.are.equal(0, drain(woke))
          c:acquire(); c:notify_all(); c:release()
          for _, th in ipairs(threads) do
            assert.are.same({true, true}, {th:join(LONG)})
          end
        end)
      end)

      H.it_needs(rt, {"Queue"}, "(n) wakes exactly n waiters", function()
        H.run(rt, function()
          local c, arrived, woke = rt.Condition(), rt.Queue(), rt.Queue()
          local threads = waiters(rt, c, 4, arrived, woke)
          c:acquire()
          c:notify(2)
          c:release()
          assert.is_not_nil(woke:get(LONG))
          assert.is_not_nil(woke:get(LONG))
          assert.are.equal(0, drain(woke))
          c:acquire(); c:notify(5); c:release()  -- more than wait: no error
          for _, th in ipairs(threads) do
            assert.are.same({true, true}, {th:join(LONG)})
          end
        end)
      end)

      it("with no waiters does nothing", function()
        H.run(rt, function()
          local c = rt.Condition()
          c:acquire()
          c:notify()
          c:notify(3)
          c:notify_all()
          c:release()
          c:acquire()
          assert.is_false(c:wait(SHORT))  -- an earlier notify is not kept
          c:release()
        end)
      end)

      it("raises when the lock is not held", function()
        H.run(rt, function()
          local c = rt.Condition()
          assert.has_error(function() c:notify() end)
          assert.has_error(function() c:notify(2) end)
        end)
      end)
    end)

    describe(":notify_all()", function()
      H.it_needs(rt, {"Queue"}, "wakes every waiter", function()
        H.run(rt, function()
          local c, arrived, woke = rt.Condition(), rt.Queue(), rt.Queue()
          local threads = waiters(rt, c, 3, arrived, woke)
          c:acquire()
          c:notify_all()
          c:release()
          for _, th in ipairs(threads) do
            assert.are.same({true, true}, {th:join(LONG)})
          end
          assert.are.equal(3, drain(woke))
        end)
      end)

      it("raises when the lock is not held", function()
        H.run(rt, function()
          local c = rt.Condition()
          assert.has_error(function() c:notify_all() end)
        end)
      end)
    end)

    describe(":wait_for()", function()
      it("returns at once the predicate's true value", function()
        H.run(rt, function()
          local c = rt.Condition()
          c:acquire()
          assert.are.equal(42, c:wait_for(function() return 42 end))
          assert.are.equal("yes", c:wait_for(function() return "yes" end, 0))
          c:release()
        end)
      end)

      it("(timeout) returns the predicate's last value when it stays false", function()
        H.run(rt, function()
          local c = rt.Condition()
          c:acquire()
          assert.is_false(c:wait_for(function() return false end, SHORT))
          assert.is_nil(c:wait_for(function() return nil end, SHORT))
          c:release()
        end)
      end)

      it("waits until a notify makes the predicate true", function()
        H.run(rt, function()
          local c, flag, started = rt.Condition(), rt.Event(), rt.Event()
          local th = rt.spawn(function()
            c:acquire()
            started:set()
            local r = c:wait_for(function() return flag:is_set() and "ready" end, LONG)
            c:release()
            return r
          end)
          started:wait(LONG)
          c:acquire()          -- th is now inside wait_for
          c:notify_all()       -- predicate still false: th keeps waiting
          c:release()
          H.settle(rt)
          assert.is_true(th:is_alive())
          c:acquire()
          flag:set()
          c:notify_all()
          c:release()
          assert.are.same({true, "ready"}, {th:join(LONG)})
        end)
      end)

      it("raises when the lock is not held", function()
        H.run(rt, function()
          local c = rt.Condition()
          assert.has_error(function()
            c:wait_for(function() return false end, SHORT)
          end)
        end)
      end)
    end)

    H.describe_with_guard(rt, function() return rt.Condition() end)
  end)
end
