-- Conformance: Thread, spawn, join, cancel, excepthook.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local duet = require "duet"
local describe, it, pending = busted.describe, busted.it, busted.pending
local SHORT, LONG = H.SHORT, H.LONG

-- Every kind of blocking duet call, for the cancel cases. `needs` lists the
-- constructors it uses; `setup(rt)` runs in main and returns `block`, the
-- blocking call to run in the thread, and `after`, which main calls once the
-- thread is gone to let helper threads finish.
local WAITS = {
  { name = "rt.sleep()", needs = {},
    setup = function(rt)
      return function() rt.sleep(60) end
    end },
  { name = "Event:wait()", needs = {"Event"},
    setup = function(rt)
      local ev = rt.Event()
      return function() ev:wait() end
    end },
  { name = "Event:wait(timeout)", needs = {"Event"},
    setup = function(rt)
      local ev = rt.Event()
      return function() ev:wait(60) end
    end },
  { name = "Lock:acquire()", needs = {"Lock"},
    setup = function(rt)
      local lock = rt.Lock()
      lock:acquire()
      return function() lock:acquire() end, function() lock:release() end
    end },
  { name = "RLock:acquire()", needs = {"RLock"},
    setup = function(rt)
      local lock = rt.RLock()
      lock:acquire()
      return function() lock:acquire() end, function() lock:release() end
    end },
  { name = "Semaphore:acquire()", needs = {"Semaphore"},
    setup = function(rt)
      local sem = rt.Semaphore(0)
      return function() sem:acquire() end
    end },
  { name = "Condition:wait()", needs = {"Condition"},
    setup = function(rt)
      local cond = rt.Condition()
      return function() cond:acquire(); cond:wait() end
    end },
  { name = "Condition:wait_for()", needs = {"Condition"},
    setup = function(rt)
      local cond = rt.Condition()
      return function()
        cond:acquire()
        cond:wait_for(function() return false end)
      end
    end },
  { name = "Barrier:wait()", needs = {"Barrier"},
    setup = function(rt)
      local b = rt.Barrier(2)
      return function() b:wait() end
    end },
  { name = "Queue:get()", needs = {"Queue"},
    setup = function(rt)
      local q = rt.Queue()
      return function() q:get() end
    end },
  { name = "Queue:get_many()", needs = {"Queue"},
    setup = function(rt)
      local q = rt.Queue()
      return function() q:get_many(5) end
    end },
  { name = "Queue:put() on a full queue", needs = {"Queue"},
    setup = function(rt)
      local q = rt.Queue(1)
      q:put("full")
      return function() q:put("more") end
    end },
  { name = "Queue:put_many() without room for all", needs = {"Queue"},
    setup = function(rt)
      local q = rt.Queue(2)
      q:put("one")  -- room for one more: not for both
      return function() q:put_many({"a", "b"}) end
    end },
  { name = "Queue:join()", needs = {"Queue"},
    setup = function(rt)
      local q = rt.Queue()
      q:put("task")
      return function() q:join() end
    end },
  { name = "Thread:join()", needs = {"Event"},
    setup = function(rt)
      local ev = rt.Event()
      local other = rt.spawn(function() ev:wait(LONG) end)
      return function() other:join() end, function() ev:set(); other:join() end
    end },
  { name = "Future:result()", needs = {"Executor", "Event"},
    setup = function(rt)
      local gate = rt.Event()
      local ex = rt.Executor{max_workers = 1}
      local fut = ex:submit(function() gate:wait(LONG) end)
      return function() fut:result() end,
             function() gate:set(); ex:shutdown() end
    end },
  { name = "rt.wait()", needs = {"Executor", "Event"},
    setup = function(rt)
      local gate = rt.Event()
      local ex = rt.Executor{max_workers = 1}
      local fut = ex:submit(function() gate:wait(LONG) end)
      return function() rt.wait({fut}) end,
             function() gate:set(); ex:shutdown() end
    end },
  { name = "rt.as_completed()", needs = {"Executor", "Event"},
    setup = function(rt)
      local gate = rt.Event()
      local ex = rt.Executor{max_workers = 1}
      local fut = ex:submit(function() gate:wait(LONG) end)
      return function() for _ in rt.as_completed({fut}) do end end,
             function() gate:set(); ex:shutdown() end
    end },
  { name = "TokenBucket:wait()", needs = {"TokenBucket"},
    setup = function(rt)
      local tb = rt.TokenBucket{capacity = 1, rate = 1e-3, tokens = 0}
      return function() tb:wait() end
    end },
}

local function missing(rt, needs)
  for _, n in ipairs(needs) do
    if rt[n] == nil then return n end
  end
end

return function(rt)
  describe("Thread", function()
    if not H.has_all(rt, "Thread", "Event") then return end

    H.describe_name(rt, "duet.Thread", function()
      return rt.Thread{target = function() end}
    end)

    describe("rt.Thread{}", function()
      it("creates a thread that is not started", function()
        H.run(rt, function()
          local ran = rt.Event()
          local th = rt.Thread{target = function() ran:set() end}
          assert.is_false(th:is_alive())
          rt.sleep(SHORT)
          assert.is_false(ran:is_set())
        end)
      end)

      it("runs target with args once started", function()
        H.run(rt, function()
          local th = rt.Thread{
            target = function(a, b, c) return c.x, b, a end,
            args = {1, "two", {x = 3}},
          }
          th:start()
          assert.are.same({true, 3, "two", 1}, {th:join()})
        end)
      end)

      it("takes name and daemon", function()
        H.run(rt, function()
          local th = rt.Thread{target = function() end, name = "worker",
                               daemon = true}
          assert.are.equal("worker", th.name)
          assert.is_true(th.daemon)
        end)
      end)

      it("is not a daemon by default", function()
        H.run(rt, function()
          local th = rt.Thread{target = function() end}
          assert.is_false(th.daemon)
          assert.is_false(rt.spawn(function() end).daemon)
        end)
      end)

      it("names threads 'Thread-N' by default, each a different N", function()
        H.run(rt, function()
          local a = rt.Thread{target = function() end}
          local b = rt.Thread{target = function() end}
          local c = rt.spawn(function() end)
          assert.matches("^Thread%-%d+$", a.name)
          assert.matches("^Thread%-%d+$", b.name)
          assert.matches("^Thread%-%d+$", c.name)
          assert.are_not.equal(a.name, b.name)
          assert.are_not.equal(b.name, c.name)
          assert.are_not.equal(a.name, c.name)
        end)
      end)

      it("counts N over the threads made without a name only, as Python", function()
        H.run(rt, function()
          local function n_of(th) return tonumber(th.name:match("^Thread%-(%d+)$")) end
          local a = rt.spawn(function() end)
          local named = rt.Thread{target = function() end, name = "named"}
          local ex <close> = rt.Executor{max_workers = 2}
          ex:submit(function() end):result()   -- starts a worker
          ex:submit(function() end):result()
          local b = rt.Thread{target = function() end}
          local c = rt.spawn(function() end)
          assert.are.equal(n_of(a) + 1, n_of(b))
          assert.are.equal(n_of(a) + 2, n_of(c))
          named:start(); b:start()
          for _, th in ipairs({ a, named, b, c }) do th:join() end
        end)
      end)
    end)

    describe("rt.spawn()", function()
      it("creates and starts a thread running fn(...)", function()
        H.run(rt, function()
          local th = rt.spawn(function(a, b) return a + b end, 2, 3)
          assert.are.same({true, 5}, {th:join()})
        end)
      end)

      it("returns a Thread that runs concurrently with main", function()
        H.run(rt, function()
          local go, back = rt.Event(), rt.Event()
          local th = rt.spawn(function()
            go:wait(LONG)
            back:set()
          end)
          assert.is_true(th:is_alive())
          go:set()
          assert.is_true(back:wait(LONG))
          th:join()
        end)
      end)
    end)

    describe(":start()", function()
      it("raises when called a second time", function()
        H.run(rt, function()
          local th = rt.Thread{target = function() end}
          th:start()
          assert.has_error(function() th:start() end)
          th:join()
          assert.has_error(function() th:start() end)
        end)
      end)

      it("raises on a thread made by spawn", function()
        H.run(rt, function()
          local th = rt.spawn(function() end)
          assert.has_error(function() th:start() end)
          th:join()
        end)
      end)
    end)

    describe(":join()", function()
      it("gives true and all the results when fn returned", function()
        H.run(rt, function()
          local th = rt.spawn(function() return 1, nil, "three", {4, {5}} end)
          local r = table.pack(th:join())
          assert.are.same({n = 5, true, 1, nil, "three", {4, {5}}}, r)
        end)
      end)

      it("gives just true when fn returned nothing", function()
        H.run(rt, function()
          local th = rt.spawn(function() end)
          assert.are.same({n = 1, true}, table.pack(th:join()))
        end)
      end)

      it("keeps integers and floats apart in results", function()
        H.run(rt, function()
          local _, i, f = rt.spawn(function() return 3, 3.0 end):join()
          assert.are.equal("integer", math.type(i))
          assert.are.equal("float", math.type(f))
        end)
      end)

      it("gives false and the error when fn raised, with th.traceback", function()
        H.run(rt, function()
          local th = rt.spawn(function() error("boom in thread") end)
          local ok, e = th:join()
          assert.is_false(ok)
          assert.matches("boom in thread", e)
          assert.are.equal("string", type(th.traceback))
          assert.matches("traceback", th.traceback)
        end)
      end)

      it("gives the error value itself when it is not a string", function()
        H.run(rt, function()
          local th = rt.spawn(function() error({code = 7}) end)
          local ok, e = th:join()
          assert.is_false(ok)
          assert.are.same({code = 7}, e)
        end)
      end)

      it("gives nil, 'timeout' when the wait times out", function()
        H.run(rt, function()
          local go = rt.Event()
          local th = rt.spawn(function() go:wait(LONG); return "done" end)
          assert.are.same({nil, "timeout"}, {th:join(SHORT)})
          assert.are.same({nil, "timeout"}, {th:join(0)})
          assert.is_true(th:is_alive())
          go:set()
          assert.are.same({true, "done"}, {th:join()})
        end)
      end)

      it("waits for the thread to finish", function()
        H.run(rt, function()
          local done = rt.Event()
          local th = rt.spawn(function() rt.sleep(SHORT); done:set() end)
          assert.is_true((th:join()))
          assert.is_true(done:is_set())
        end)
      end)

      it("with a timeout returns the results when the thread finishes in time", function()
        H.run(rt, function()
          local th = rt.spawn(function() return "ok" end)
          assert.are.same({true, "ok"}, {th:join(LONG)})
        end)
      end)

      it("raises when a thread joins itself", function()
        H.run(rt, function()
          local th = rt.spawn(function()
            -- with a timeout, so a runtime that misses the error cannot hang
            return pcall(function() return rt.current():join(SHORT) end)
          end)
          local ok, caught = th:join()
          assert.is_true(ok)
          assert.is_false(caught)
        end)
      end)

      it("raises when main joins itself", function()
        H.run(rt, function()
          assert.has_error(function() rt.current():join(SHORT) end)
        end)
      end)

      it("raises on a thread not started", function()
        H.run(rt, function()
          local th = rt.Thread{target = function() end}
          assert.has_error(function() th:join() end)
          assert.has_error(function() th:join(0) end)
        end)
      end)
    end)

    describe(":is_alive()", function()
      it("is false before start, true while running, false after", function()
        H.run(rt, function()
          local go = rt.Event()
          local th = rt.Thread{target = function() go:wait(LONG) end}
          assert.is_false(th:is_alive())
          th:start()
          assert.is_true(th:is_alive())
          go:set()
          th:join()
          assert.is_false(th:is_alive())
        end)
      end)

      it("is false after fn raised", function()
        H.run(rt, function()
          local th = rt.spawn(function() error("x") end)
          th:join()
          assert.is_false(th:is_alive())
        end)
      end)
    end)

    describe(".name", function()
      it("is settable, and the thread sees the new name", function()
        H.run(rt, function()
          local go = rt.Event()
          local th = rt.spawn(function()
            go:wait(LONG)
            return rt.current().name
          end)
          th.name = "renamed"
          assert.are.equal("renamed", th.name)
          go:set()
          assert.are.same({true, "renamed"}, {th:join()})
        end)
      end)

      it("is seen by the thread as given", function()
        H.run(rt, function()
          local th = rt.Thread{target = function() return rt.current().name end,
                               name = "given"}
          th:start()
          assert.are.same({true, "given"}, {th:join()})
        end)
      end)
    end)

    describe(".ident", function()
      it("is an integer, different for threads alive together and main", function()
        H.run(rt, function()
          local go = rt.Event()
          local seen, threads = {[rt.current().ident] = true}, {}
          assert.are.equal("integer", math.type(rt.current().ident))
          for i = 1, 5 do
            threads[i] = rt.spawn(function() go:wait(LONG) end)
          end
          for _, th in ipairs(threads) do
            assert.are.equal("integer", math.type(th.ident))
            assert.is_nil(seen[th.ident])
            seen[th.ident] = true
          end
          go:set()
          for _, th in ipairs(threads) do th:join() end
        end)
      end)

      it("is unique in the process, even after earlier threads ended", function()
        H.run(rt, function()
          local seen = {[rt.current().ident] = true}
          for _ = 1, 10 do
            local th = rt.spawn(function() return rt.current().ident end)
            local _, inside = th:join()
            assert.are.equal(th.ident, inside)
            assert.is_nil(seen[th.ident])
            seen[th.ident] = true
          end
        end)
      end)
    end)

    describe(".daemon", function()
      it("marks a thread rt.run does not wait for", function()
        local block, flag = rt.run(function()
          local block, flag = rt.Event(), rt.Event()
          local th = rt.Thread{target = function()
            block:wait(LONG)
            flag:set()
          end, daemon = true}
          th:start()
          return block, flag
        end)
        local set = flag:is_set()
        block:set()
        assert.is_false(set)
      end)
    end)

    describe(":cancel()", function()
      for _, w in ipairs(WAITS) do
        local need = missing(rt, w.needs)
        if need then
          pending(("interrupts %s (%s has no %s yet)"):format(w.name, rt.name, need))
        else
          it("interrupts " .. w.name .. " with duet.cancelled", function()
            H.run(rt, function()
              local block, after = w.setup(rt)
              local started = rt.Event()
              -- daemon: a runtime that fails to cancel cannot hang rt.run
              local th = rt.Thread{target = function()
                started:set()
                block()
                return "not cancelled"
              end, daemon = true}
              th:start()
              assert.is_true(started:wait(LONG))
              H.settle(rt)
              th:cancel()
              local ok, e = th:join(LONG)
              if after then after() end
              assert.is_false(ok)
              assert.is_true(e == duet.cancelled, tostring(e))
              assert.is_false(th:is_alive())
            end)
          end)
        end
      end

      it("raises duet.cancelled that the thread can catch", function()
        H.run(rt, function()
          local ev, started = rt.Event(), rt.Event()
          local th = rt.spawn(function()
            -- set inside the pcall: a cancel right after it is caught too
            local ok, e = pcall(function()
              started:set()
              return ev:wait(LONG)
            end)
            return ok, e == duet.cancelled
          end)
          started:wait(LONG)
          H.settle(rt)
          th:cancel()
          assert.are.same({true, false, true}, {th:join(LONG)})
        end)
      end)

      it("stops a thread that is not blocked yet, at its next blocking call", function()
        H.run(rt, function()
          local ev = rt.Event()
          local th = rt.spawn(function() return pcall(ev.wait, ev, LONG) end)
          th:cancel()  -- th may not have started, or be running, or blocked
          local r = table.pack(th:join(LONG))
          ev:set()
          if r[1] then  -- the wait raised, and the thread caught it
            assert.are.equal(3, r.n)
            assert.is_false(r[2])
            assert.is_true(r[3] == duet.cancelled)
          else          -- cancelled before it reached the pcall
            assert.is_false(r[1])
            assert.is_true(r[2] == duet.cancelled)
          end
        end)
      end)
    end)

    describe("duet.excepthook", function()
      -- Run fn inside rt.run with duet.excepthook replaced, and put the
      -- suite's hook back afterwards whatever happens.
      local function with_hook(fn)
        local saved = duet.excepthook
        local r = table.pack(pcall(H.run, rt, fn))
        duet.excepthook = saved
        if not r[1] then error(r[2], 0) end
        return table.unpack(r, 2, r.n)
      end

      H.it_needs(rt, {"SharedTable"}, "is called with the thread, error and traceback for an error nobody joined", function()
        local t = with_hook(function()
          local t = rt.SharedTable{calls = 0}
          duet.excepthook = function(th, e, tb)
            t.name, t.err, t.tb = th.name, tostring(e), tb
            t:incr("calls")
          end
          rt.Thread{target = function() error("unjoined boom") end,
                    name = "lost"}:start()
          H.wait_until(rt, function() return t.calls > 0 end)
          rt.sleep(SHORT)  -- a second call would show up here
          return t
        end)
        assert.are.equal(1, t.calls)
        assert.are.equal("lost", t.name)
        assert.matches("unjoined boom", t.err)
        assert.are.equal("string", type(t.tb))
        assert.matches("traceback", t.tb)
      end)

      H.it_needs(rt, {"Queue"}, "may be replaced by a function that holds a Queue", function()
        local got = with_hook(function()
          local q = rt.Queue()
          duet.excepthook = function(th) q:put(th.name) end
          rt.Thread{target = function() error("x") end, name = "queued"}:start()
          return q:get(LONG)
        end)
        assert.are.equal("queued", got)
      end)

      it("by default prints 'Exception in thread NAME:' and the traceback to stderr #notsan", function()
        local out, ok = H.subprocess(([[
          local rt = require("duet").runtime(%q)
          rt.run(function()
            rt.Thread{target = function() error("kaboom") end,
                      name = "doomed"}:start()
          end)
          print("run returned")
        ]]):format(rt.name))
        assert.is_true(ok, out)
        assert.matches("Exception in thread doomed:", out, 1, true)
        assert.matches("kaboom", out, 1, true)
        assert.matches("stack traceback", out, 1, true)
        assert.matches("run returned", out, 1, true)
      end)
    end)
  end)
end
