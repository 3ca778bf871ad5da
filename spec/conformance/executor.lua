-- Conformance: Executor, Future, rt.wait, rt.as_completed.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local duet = require "duet"
local describe = busted.describe
local SHORT, LONG = H.SHORT, H.LONG

-- The error `fn(...)` raises, or "no error".
local function raised(fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return "no error" end
  return e
end

return function(rt)
  local it = H.it_for(rt)
  describe("Executor", function()
    if not H.has_all(rt, "Executor", "Event") then return end

    H.describe_name(rt, "duet.Executor",
      function() return rt.Executor{max_workers = 1} end,
      function(ex) ex:shutdown() end)

    describe(":submit()", function()
      it("returns a Future whose result() gives all of fn(...)'s results", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 2}
          local fut = ex:submit(function(a, b) return a + b, nil, "x" end, 2, 3)
          assert.are.equal("duet.Future", H.typename(fut))
          assert.are.same({n = 3, 5, nil, "x"}, table.pack(fut:result()))
        end)
      end)

      it("runs fn in a worker, not in the caller", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 1}
          local who = ex:submit(function() return rt.current() end):result()
          assert.is_not_nil(who)
          assert.are_not.equal(rt.current(), who)
        end)
      end)

      it("raises after shutdown", function()
        H.run(rt, function()
          local ex = rt.Executor{max_workers = 1}
          ex:shutdown()
          assert.has_error(function() ex:submit(function() end) end)
        end)
      end)
    end)

    it("prints its workers and pending tasks: 'duet.Executor (0 workers, 0 pending): 0x...'", function()
      H.run(rt, function()
        local ex = rt.Executor{max_workers = 2}
        assert.matches("^duet%.%a*Executor %(0 workers, 0 pending%): ", tostring(ex))
        ex:shutdown()
        assert.matches("^duet%.%a*Executor %(0 workers, 0 pending, shut down%): ", tostring(ex))
      end)
    end)

    describe("rt.Executor{}", function()
      it("works with the default max_workers", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{}
          assert.are.equal(4, ex:submit(function() return 4 end):result())
        end)
      end)

      H.it_needs(rt, {"SharedTable"}, "never runs more than max_workers tasks at once", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 2}
          local t = rt.SharedTable{inside = 0, worst = 0}
          local futs = {}
          for i = 1, 6 do
            futs[i] = ex:submit(function()
              local n = t:incr("inside")
              t:update("worst", function(w) return n > w and n or w end)
              rt.sleep(0.002)
              t:incr("inside", -1)
            end)
          end
          for _, f in ipairs(futs) do f:result() end
          assert.is_true(t.worst <= 2, "worst " .. t.worst)
        end)
      end)

      H.it_needs(rt, {"Barrier"}, "runs max_workers tasks at once", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 3}
          local b = rt.Barrier(3)
          local futs = {}
          for i = 1, 3 do futs[i] = ex:submit(function() return b:wait(LONG) end) end
          local idx = {}
          for i, f in ipairs(futs) do idx[i] = f:result() end
          assert.are.same({0, 1, 2}, H.sorted(idx))
        end)
      end)
    end)

    describe("rt.Executor{initializer=, initargs=}", function()
      H.it_needs(rt, {"SharedTable"}, "runs initializer(initargs...) once in each worker, before its tasks", function()
        H.run(rt, function()
          local inits = rt.SharedTable()
          local ex <close> = rt.Executor{max_workers = 2,
            initializer = function(t, a, b, c)
              assert(a == 1 and b == nil and c == "three")
              t:incr(rt.current().name)
            end,
            initargs = {n = 4, inits, 1, nil, "three"}}
          local futs = {}
          for i = 1, 6 do
            futs[i] = ex:submit(function(t)
              rt.sleep(0.001)
              return t[rt.current().name]  -- this worker's count
            end, inits)
          end
          for i = 1, 6 do assert.are.equal(1, futs[i]:result(LONG)) end
          for name, n in pairs(inits:snapshot()) do
            assert.are.equal(1, n, name)
          end
        end)
      end)

      H.it_needs(rt, {"SharedTable"}, "a raising initializer fails the queued futures and submit, and is not retried in a loop", function()
        H.run(rt, function()
          local calls = rt.SharedTable{n = 0}
          local gate = rt.Event()       -- holds the initializer until all are queued
          local ex = rt.Executor{max_workers = 2, initargs = {calls, gate},
            initializer = function(t, g) t:incr("n"); g:wait(LONG); error("init boom") end}
          local futs = {}
          for i = 1, 4 do futs[i] = ex:submit(function() return i end) end
          gate:set()
          for i = 1, 4 do
            local e = raised(futs[i].result, futs[i], LONG)
            assert.matches("^broken executor: the initializer raised: .*init boom$", e)
            assert.matches("init boom", futs[i].traceback)
          end
          local e = raised(function() ex:submit(function() end) end)
          assert.matches("broken executor: the initializer raised: .*init boom$", e)
          e = raised(function() ex:map(function() end, {1}) end)
          assert.matches("broken executor: ", e)
          ex:shutdown()
          assert.is_true(calls.n >= 1 and calls.n <= 2, "initializer ran " .. calls.n .. " times")
        end)
      end)
    end)

    describe("rt.Executor{thread_name_prefix=}", function()
      it("names the workers prefix_0, prefix_1, ...", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 1, thread_name_prefix = "fetcher"}
          assert.are.equal("fetcher_0", ex:submit(function() return rt.current().name end):result(LONG))
        end)
      end)

      it("defaults to Executor-N_k", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 1}
          assert.matches("^Executor%-%d+_%d+$", ex:submit(function() return rt.current().name end):result(LONG))
        end)
      end)
    end)

    describe("Future", function()
      H.describe_name(rt, "duet.Future", function()
        local ex = rt.Executor{max_workers = 1}
        local f = ex:submit(function() end)
        ex:shutdown()
        return f
      end)

      describe(":result()", function()
        it("blocks until the task is done", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate = rt.Event()
            local fut = ex:submit(function() gate:wait(LONG); return "late" end)
            local th = H.go(rt, function() return fut:result() end)
            H.settle(rt)
            assert.is_true(th:is_alive())
            gate:set()
            assert.are.same({true, "late"}, {th:join(LONG)})
          end)
        end)

        it("re-raises the task's error", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local fut = ex:submit(function() error("task boom") end)
            assert.matches("task boom", raised(fut.result, fut))
            local fut2 = ex:submit(function() error({code = 3}) end)
            assert.are.same({code = 3}, raised(fut2.result, fut2))
          end)
        end)

        it("(timeout) raises duet.timeout and changes nothing", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate = rt.Event()
            local fut = ex:submit(function() gate:wait(LONG); return 1 end)
            assert.is_true(raised(fut.result, fut, SHORT) == duet.timeout)
            assert.is_true(raised(fut.result, fut, 0) == duet.timeout)
            assert.is_false(fut:done())
            assert.is_false(fut:cancelled())
            gate:set()
            assert.are.equal(1, fut:result(LONG))
          end)
        end)

        it("raises duet.cancelled for a cancelled future", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate = rt.Event()
            local blocker = ex:submit(function() gate:wait(LONG) end)
            local fut = ex:submit(function() end)
            assert.is_true(fut:cancel())
            gate:set()
            assert.is_true(raised(fut.result, fut) == duet.cancelled)
            blocker:result()
          end)
        end)
      end)

      describe(":exception()", function()
        it("is nil when the task returned", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local fut = ex:submit(function() return 1 end)
            assert.is_nil(fut:exception())
            assert.is_nil(fut:exception(LONG))
          end)
        end)

        it("is the error when the task raised, without raising", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local fut = ex:submit(function() error("oops") end)
            assert.matches("oops", fut:exception())
            local fut2 = ex:submit(function() error(duet.broken_barrier) end)
            assert.is_true(fut2:exception() == duet.broken_barrier)
          end)
        end)
      end)

      describe(":wait()", function()
        it("(timeout) returns false while running, true once done", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate = rt.Event()
            local fut = ex:submit(function() gate:wait(LONG) end)
            assert.is_false(fut:wait(SHORT))
            assert.is_false(fut:wait(0))
            gate:set()
            assert.is_true(fut:wait(LONG))
            assert.is_true(fut:wait())
          end)
        end)

        it("never raises, even for a failed or cancelled task", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate = rt.Event()
            local blocker = ex:submit(function() gate:wait(LONG) end)
            local cancelled = ex:submit(function() end)
            cancelled:cancel()
            gate:set()
            local failed = ex:submit(function() error("x") end)
            assert.is_true(failed:wait())
            assert.is_true(cancelled:wait())
            assert.is_true(cancelled:wait(0))
            assert.is_true(blocker:wait())
          end)
        end)
      end)

      describe(":done() / :running()", function()
        it("follow the task from queued to running to done", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate, started = rt.Event(), rt.Event()
            local first = ex:submit(function() started:set(); gate:wait(LONG) end)
            local queued = ex:submit(function() end)
            started:wait(LONG)
            assert.is_true(first:running())
            assert.is_false(first:done())
            assert.is_false(queued:running())
            assert.is_false(queued:done())
            gate:set()
            first:result(); queued:result()
            assert.is_false(first:running())
            assert.is_true(first:done())
            assert.is_true(queued:done())
          end)
        end)

        it("done() is true for a task that raised", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local fut = ex:submit(function() error("x") end)
            fut:wait()
            assert.is_true(fut:done())
            assert.is_false(fut:running())
          end)
        end)
      end)

      describe(":cancel()", function()
        it("cancels a task that has not started: true, and it never runs", function()
          H.run(rt, function()
            local ex = rt.Executor{max_workers = 1}
            local gate, ran = rt.Event(), rt.Event()
            local blocker = ex:submit(function() gate:wait(LONG) end)
            local fut = ex:submit(function() ran:set() end)
            assert.is_true(fut:cancel())
            assert.is_true(fut:cancelled())
            assert.is_true(fut:done())
            assert.is_false(fut:running())
            gate:set()
            blocker:result()
            ex:shutdown()
            assert.is_false(ran:is_set())
          end)
        end)

        it("returns false for a running task, which completes", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate, started = rt.Event(), rt.Event()
            local fut = ex:submit(function() started:set(); gate:wait(LONG); return "ran" end)
            started:wait(LONG)
            assert.is_false(fut:cancel())
            assert.is_false(fut:cancelled())
            gate:set()
            assert.are.equal("ran", fut:result())
          end)
        end)

        it("returns false for a done task", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local fut = ex:submit(function() return 1 end)
            fut:result()
            assert.is_false(fut:cancel())
            assert.is_false(fut:cancelled())
            assert.are.equal(1, fut:result())
          end)
        end)
      end)

      describe(":add_done_callback()", function()
        if not H.has(rt, "Queue") then return end

        it("calls fn(fut) once, when the task is done", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate, log = rt.Event(), rt.Queue()
            local fut = ex:submit(function() gate:wait(LONG); return 7 end)
            fut:add_done_callback(function(f) log:put(f) end)
            assert.are.same({nil, "empty"}, {log:get(SHORT)})
            gate:set()
            assert.are.equal(fut, log:get(LONG))
            assert.are.equal(7, fut:result())
            assert.are.same({nil, "empty"}, {log:get(SHORT)})
          end)
        end)

        it("calls fn at once when the future is already done", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local log = rt.Queue()
            local fut = ex:submit(function() return 1 end)
            fut:result()
            fut:add_done_callback(function(f) log:put(f) end)
            assert.are.equal(fut, log:get_nowait())
          end)
        end)

        it("calls fn for a task that raised and for a cancelled one", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate, log = rt.Event(), rt.Queue()
            local blocker = ex:submit(function() gate:wait(LONG); error("x") end)
            local queued = ex:submit(function() end)
            blocker:add_done_callback(function(f) log:put(f) end)
            queued:add_done_callback(function(f) log:put(f) end)
            queued:cancel()
            assert.are.equal(queued, log:get(LONG))
            gate:set()
            assert.are.equal(blocker, log:get(LONG))
          end)
        end)

        it("keeps calling the other callbacks when one raises", function()
          H.run(rt, function()
            local ex <close> = rt.Executor{max_workers = 1}
            local gate, log = rt.Event(), rt.Queue()
            local fut = ex:submit(function() gate:wait(LONG); return "fine" end)
            fut:add_done_callback(function() error("callback boom") end)
            fut:add_done_callback(function(f) log:put(f) end)
            gate:set()
            assert.are.equal(fut, log:get(LONG))
            assert.are.equal("fine", fut:result())
            -- on a done future too (whether add_done_callback reports the
            -- error is not fixed by the contract; the next one still runs)
            pcall(fut.add_done_callback, fut, function() error("again") end)
            fut:add_done_callback(function(f) log:put(f) end)
            assert.are.equal(fut, log:get_nowait())
            assert.are.equal("ok", ex:submit(function() return "ok" end):result())
          end)
        end)
      end)
    end)

    describe("rt.Future()", function()
      H.describe_name(rt, "duet.Future", function() return rt.Future() end)

      it("is pending until settled: not done, not running", function()
        H.run(rt, function()
          local f = rt.Future()
          assert.is_false(f:done())
          assert.is_false(f:running())
          assert.is_false(f:cancelled())
          assert.is_false(f:wait(0))
          assert.is_true(rt.Future() ~= f)
        end)
      end)

      it(":set_result(...) wakes a waiter in another thread with every value", function()
        H.run(rt, function()
          local f = rt.Future()
          local ready = rt.Event()
          local th = H.go(rt, function(fut)
            ready:set()
            return fut:result(LONG)
          end, f)
          ready:wait(LONG)
          assert.is_nil(f:set_result(1, nil, "three"))
          assert.are.same({n = 4, true, 1, nil, "three"}, table.pack(th:join(LONG)))
          assert.is_true(f:done())
          assert.is_nil(f:exception())
          assert.are.same({n = 3, 1, nil, "three"}, table.pack(f:result(0)))
        end)
      end)

      it(":set_result() with no values: result() gives none", function()
        H.run(rt, function()
          local f = rt.Future()
          f:set_result()
          assert.are.equal(0, select("#", f:result()))
        end)
      end)

      it("is settled from another thread than the one that made it", function()
        H.run(rt, function()
          local f = rt.Future()
          local th = rt.spawn(function(fut) fut:set_result("from afar") end, f)
          assert.are.equal("from afar", f:result(LONG))
          th:join(LONG)
        end)
      end)

      it(":set_exception(err) makes result() raise err and exception() return it", function()
        H.run(rt, function()
          local f = rt.Future()
          f:set_exception({code = 7})
          assert.is_true(f:done())
          local ok, e = pcall(f.result, f)
          assert.is_false(ok)
          assert.are.same({code = 7}, e)
          assert.are.same({code = 7}, f:exception())
          assert.are.equal("string", type(f.traceback))
          local g = rt.Future()
          g:set_exception(duet.timeout, "where it failed")
          assert.is_true(g:exception() == duet.timeout)
          assert.are.equal("where it failed", g.traceback)
        end)
      end)

      it(":set_exception() needs an error value", function()
        H.run(rt, function()
          local f = rt.Future()
          assert.are.equal("bad argument #1 to 'set_exception' (error value expected, got no value)",
            H.errmsg(function() f:set_exception() end))
          assert.are.equal("bad argument #2 to 'set_exception' (string expected, got table)",
            H.errmsg(function() f:set_exception("e", {}) end))
          assert.is_false(f:done())
        end)
      end)

      it("a second settle raises 'invalid state' and changes nothing", function()
        H.run(rt, function()
          local f = rt.Future()
          f:set_result("first")
          assert.are.equal("invalid state: the future is already finished",
            H.errmsg(function() f:set_result("second") end))
          assert.are.equal("invalid state: the future is already finished",
            H.errmsg(function() f:set_exception("second") end))
          assert.are.equal("first", f:result())
          local g = rt.Future()
          g:set_exception("bad")
          assert.are.equal("invalid state: the future is already finished",
            H.errmsg(function() g:set_result(1) end))
          assert.matches("bad", g:exception())
        end)
      end)

      it(":cancel() cancels a pending one; settling it then raises", function()
        H.run(rt, function()
          local f = rt.Future()
          assert.is_true(f:cancel())
          assert.is_true(f:cancelled())
          assert.are.equal("invalid state: the future is cancelled",
            H.errmsg(function() f:set_result(1) end))
          assert.is_true(f:cancelled())
          assert.is_false(f:set_running_or_notify_cancel())
          assert.is_true(duet.cancelled == H.errmsg(function() f:result() end))
        end)
      end)

      it(":set_running_or_notify_cancel() makes it running and no longer cancellable", function()
        H.run(rt, function()
          local f = rt.Future()
          assert.is_true(f:set_running_or_notify_cancel())
          assert.is_true(f:running())
          assert.is_false(f:cancel())
          assert.are.equal("invalid state: the future is already running",
            H.errmsg(function() f:set_running_or_notify_cancel() end))
          f:set_result("ran")
          assert.are.equal("invalid state: the future is already finished",
            H.errmsg(function() f:set_running_or_notify_cancel() end))
          assert.is_false(f:running())
          assert.are.equal("ran", f:result())
        end)
      end)

      it("refuses to settle an executor's future", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 1}
          local fut = ex:submit(function() return "own" end)
          assert.are.equal("invalid state: the future belongs to an executor",
            H.errmsg(function() fut:set_result(1) end))
          assert.are.equal("invalid state: the future belongs to an executor",
            H.errmsg(function() fut:set_running_or_notify_cancel() end))
          assert.are.equal("own", fut:result(LONG))
        end)
      end)

      H.it_needs(rt, {"Queue"}, "calls its done callbacks once, when settled", function()
        H.run(rt, function()
          local f = rt.Future()
          local log = rt.Queue()
          f:add_done_callback(function(x) log:put(x:result()) end)
          assert.are.equal(0, log:size())
          f:set_result("cb")
          assert.are.equal("cb", log:get(LONG))
          f:add_done_callback(function(x) log:put("late " .. x:result()) end)
          assert.are.equal("late cb", log:get_nowait())
          assert.are.equal(0, log:size())
        end)
      end)

      it("works with rt.wait and rt.as_completed", function()
        H.run(rt, function()
          local a, b, c = rt.Future(), rt.Future(), rt.Future()
          local go = rt.Event()
          local th = H.go(rt, function()
            b:set_result("b")
            go:wait(LONG)
            c:set_exception("c failed")
            a:set_result("a")
          end)
          local done, not_done = rt.wait({a, b, c}, {return_when = "FIRST_COMPLETED"})
          assert.are.same({b}, done)
          assert.are.same({a, c}, not_done)   -- both wait for go
          go:set()
          done = rt.wait({a, b, c}, {return_when = "FIRST_EXCEPTION", timeout = LONG})
          assert.is_true(H.contains(done, c))
          local seen = {}
          for f in rt.as_completed({a, b, c}, LONG) do seen[#seen + 1] = f end
          assert.is_true(H.same_members({a, b, c}, seen))
          assert.are.equal(3, #seen)
          th:join(LONG)
        end)
      end)
    end)

    describe(":map()", function()
      it("returns the results in the order of the list", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 5}
          local r = ex:map(function(x)
            rt.sleep((5 - x) * 0.002)  -- later items finish first
            return x * x
          end, {1, 2, 3, 4, 5})
          assert.are.same({1, 4, 9, 16, 25}, H.list(r, 5))
        end)
      end)

      it("counts its results in results.n, so that a nil result leaves a hole", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 2}
          local r = ex:map(function(x) if x ~= 4 then return nil end return x end,
            {1, 2, 3, 4})
          assert.are.same({n = 4, nil, nil, nil, 4}, r)
          r = ex:map(function(x) return x end, {7, nil, 9, n = 3})
          assert.are.same({n = 3, 7, nil, 9}, r)
        end)
      end)

      it("returns an empty list for an empty list", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 1}
          local r = ex:map(function(x) return x end, {})
          assert.are.equal("table", type(r))
          assert.are.equal(0, #r)
        end)
      end)

      it("raises the error of the first failing item in list order", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 5}
          local gate = rt.Event()
          local ok, e = pcall(ex.map, ex, function(x)
            if x == 2 then gate:wait(LONG); error("bad 2") end
            if x == 4 then gate:set(); error("bad 4") end  -- fails earlier
            return x
          end, {1, 2, 3, 4, 5})
          assert.is_false(ok)
          assert.matches("bad 2", tostring(e))
        end)
      end)

      it("(timeout) raises duet.timeout when the results are late", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 2}
          local gate = rt.Event()
          local ok, e = pcall(ex.map, ex, function(x)
            gate:wait(LONG)
            return x
          end, {1, 2}, SHORT)
          gate:set()
          assert.is_false(ok)
          assert.is_true(e == duet.timeout, tostring(e))
        end)
      end)
      H.it_needs(rt, {"SharedTable"}, "(timeout) cancels the tasks not started, the awaited one included", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 1}
          local gate = rt.Event()
          local ran = rt.SharedTable{n = 0}
          local blocker = ex:submit(function() gate:wait(LONG) end)  -- holds the one worker
          local ok, e = pcall(ex.map, ex, function(t) t:incr("n") end, {ran, ran, ran}, SHORT)
          assert.is_false(ok)
          assert.is_true(e == duet.timeout, tostring(e))
          gate:set()
          blocker:result(LONG)
          ex:shutdown()
          assert.are.equal(0, ran.n)
        end)
      end)

      H.it_needs(rt, {"SharedTable"}, "cancels the tasks not started when the waiting thread is cancelled", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 1}
          local gate, started = rt.Event(), rt.Event()
          local ran = rt.SharedTable{n = 0}
          local blocker = ex:submit(function() started:set(); gate:wait(LONG) end)
          started:wait(LONG)
          local mapper = rt.spawn(function()
            return ex:map(function(t) t:incr("n") end, {ran, ran})
          end)
          H.settle(rt)  -- (into map's wait; cancelled before, it submits nothing)
          mapper:cancel()
          local ok, e = mapper:join(LONG)
          assert.is_false(ok)
          assert.is_true(e == duet.cancelled, tostring(e))
          gate:set()
          blocker:result(LONG)
          ex:shutdown()
          assert.are.equal(0, ran.n)
        end)
      end)

    end)

    describe(":shutdown()", function()
      it("waits for running and queued tasks by default", function()
        H.run(rt, function()
          local ex = rt.Executor{max_workers = 1}
          local futs = {}
          for i = 1, 3 do
            futs[i] = ex:submit(function() rt.sleep(0.002); return i end)
          end
          ex:shutdown()
          for i, f in ipairs(futs) do
            assert.is_true(f:done())
            assert.are.equal(i, f:result(0))
          end
        end)
      end)

      it("{wait=false} returns without waiting; the tasks still finish", function()
        H.run(rt, function()
          local ex = rt.Executor{max_workers = 1}
          local gate = rt.Event()
          local fut = ex:submit(function() gate:wait(LONG); return "done" end)
          ex:shutdown{wait = false}
          assert.is_false(fut:done())
          gate:set()
          assert.are.equal("done", fut:result(LONG))
        end)
      end)

      it("{cancel_futures=true} cancels the tasks not started", function()
        H.run(rt, function()
          local ex = rt.Executor{max_workers = 1}
          local gate, started = rt.Event(), rt.Event()
          local running = ex:submit(function() started:set(); gate:wait(LONG); return 1 end)
          started:wait(LONG)
          local queued = {}
          for i = 1, 3 do queued[i] = ex:submit(function() return i end) end
          ex:shutdown{wait = false, cancel_futures = true}
          for _, f in ipairs(queued) do assert.is_true(f:cancelled()) end
          assert.is_false(running:cancelled())
          gate:set()
          assert.are.equal(1, running:result(LONG))
        end)
      end)

      it("is idempotent", function()
        H.run(rt, function()
          local ex = rt.Executor{max_workers = 1}
          ex:submit(function() end)
          ex:shutdown()
          ex:shutdown()
          ex:shutdown{wait = false}
          assert.has_error(function() ex:submit(function() end) end)
        end)
      end)
    end)

    describe("<close>", function()
      it("shuts the executor down with wait=true", function()
        H.run(rt, function()
          local fut, outer
          do
            local ex <close> = rt.Executor{max_workers = 1}
            outer = ex
            fut = ex:submit(function() rt.sleep(SHORT); return "waited" end)
          end
          assert.is_true(fut:done())
          assert.are.equal("waited", fut:result(0))
          assert.has_error(function() outer:submit(function() end) end)
        end)
      end)
    end)

    describe("rt.wait()", function()
      it("waits for all futures by default (ALL_COMPLETED)", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 3}
          local futs = {}
          for i = 1, 3 do futs[i] = ex:submit(function() rt.sleep(0.002 * i) end) end
          local done, not_done = rt.wait(futs)
          assert.is_true(H.same_members(futs, done))
          assert.are.same({}, not_done)
          for _, f in ipairs(futs) do assert.is_true(f:done()) end
          done, not_done = rt.wait(futs, {return_when = "ALL_COMPLETED"})
          assert.are.equal(3, #done)
          assert.are.equal(0, #not_done)
        end)
      end)

      it("{timeout=} returns what is done by then", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 2}
          local gate = rt.Event()
          local quick = ex:submit(function() return 1 end)
          local slow = ex:submit(function() gate:wait(LONG) end)
          quick:result()
          local done, not_done = rt.wait({quick, slow}, {timeout = SHORT})
          gate:set()
          assert.is_true(H.same_members({quick}, done))
          assert.is_true(H.same_members({slow}, not_done))
        end)
      end)

      it("FIRST_COMPLETED returns once any future is done", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 3}
          local gate = rt.Event()
          local stop = H.failsafe(rt, gate)
          local slow1 = ex:submit(function() gate:wait() end)
          local quick = ex:submit(function() return 1 end)
          local slow2 = ex:submit(function() gate:wait() end)
          local done, not_done = rt.wait({slow1, quick, slow2},
                                         {return_when = "FIRST_COMPLETED"})
          gate:set()
          stop()
          assert.is_true(H.same_members({quick}, done))
          assert.is_true(H.same_members({slow1, slow2}, not_done))
        end)
      end)

      it("FIRST_EXCEPTION returns once any future raised", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 3}
          local gate = rt.Event()
          local stop = H.failsafe(rt, gate)
          local slow = ex:submit(function() gate:wait() end)
          local bad = ex:submit(function() error("first exception") end)
          local done, not_done = rt.wait({slow, bad},
                                         {return_when = "FIRST_EXCEPTION"})
          gate:set()
          stop()
          assert.is_true(H.same_members({bad}, done))
          assert.is_true(H.same_members({slow}, not_done))
        end)
      end)

      it("FIRST_EXCEPTION without errors waits for all", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 2}
          local a = ex:submit(function() rt.sleep(0.002); return 1 end)
          local b = ex:submit(function() rt.sleep(0.004); return 2 end)
          local done, not_done = rt.wait({a, b}, {return_when = "FIRST_EXCEPTION"})
          assert.is_true(H.same_members({a, b}, done))
          assert.are.same({}, not_done)
        end)
      end)
    end)

    describe("rt.as_completed()", function()
      it("yields the futures in the order they complete", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 3}
          local e1, e2, e3 = rt.Event(), rt.Event(), rt.Event()
          local f1 = ex:submit(function() e1:wait(LONG); return 1 end)
          local f2 = ex:submit(function() e2:wait(LONG); return 2 end)
          local f3 = ex:submit(function() e3:wait(LONG); return 3 end)
          local next_gate = {[f2] = e3, [f3] = e1}
          local order = {}
          e2:set()
          for f in rt.as_completed({f1, f2, f3}) do
            order[#order + 1] = f:result(0)
            if next_gate[f] then next_gate[f]:set() end
          end
          assert.are.same({2, 3, 1}, order)
        end)
      end)

      it("yields each future once, done ones included", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 2}
          local futs = {}
          for i = 1, 4 do futs[i] = ex:submit(function() return i end) end
          futs[1]:result(); futs[2]:result()
          local got = {}
          for f in rt.as_completed(futs) do got[#got + 1] = f end
          assert.is_true(H.same_members(futs, got))
        end)
      end)

      it("lets go of each future it has yielded, and of the list", function()
        H.run(rt, function()
          local list = {}
          for i = 1, 8 do list[i] = rt.Future() end
          list[9] = rt.Future(); list[9]:cancel()
          list[10] = rt.Future(); list[10]:set_result(42)
          local yielded = setmetatable({}, {__mode = "k"})
          local function remove(f)
            for i, x in ipairs(list) do if x == f then table.remove(list, i) return end end
          end
          -- a first loop that times out must not keep what completes later
          assert.is_true(duet.timeout == H.errmsg(function()
            for fut in rt.as_completed(list, 0) do remove(fut); yielded[fut] = true end
          end))
          list[1]:set_result("go")
          local steps, worst = 0, 0
          for fut in rt.as_completed(list) do
            remove(fut)
            yielded[fut] = true
            fut = nil  -- luacheck: ignore (the loop still holds its current one)
            collectgarbage(); collectgarbage()
            local n = 0
            for _ in pairs(yielded) do n = n + 1 end
            if n > worst then worst = n end
            steps = steps + 1
            if list[1] then list[1]:set_result("go") end
          end
          assert.are.equal(8, steps)
          assert.is_true(worst <= 1, worst .. " yielded futures still referenced")
        end)
      end)

      it("(timeout) raises duet.timeout when futures are late", function()
        H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 2}
          local gate = rt.Event()
          local quick = ex:submit(function() return 1 end)
          local slow = ex:submit(function() gate:wait(LONG) end)
          quick:result()
          local got = {}
          local ok, e = pcall(function()
            for f in rt.as_completed({quick, slow}, SHORT) do got[#got + 1] = f end
          end)
          gate:set()
          assert.is_false(ok)
          assert.is_true(e == duet.timeout, tostring(e))
          assert.is_true(H.same_members({quick}, got))
        end)
      end)
    end)
  end)
end
