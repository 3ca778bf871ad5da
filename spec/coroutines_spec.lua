-- The coroutines runtime's own behaviour: what its scheduler promises beyond
-- the shared contract (spec/conformance/ checks that part on both runtimes).
-- The scheduler is deterministic, so these specs assert exact orders.
local duet = require "duet"
local rt = duet.runtime("coroutines")

local SHORT = 0.01

-- Run fn inside rt.run and return its results; errors come out unchanged.
local function run(fn)
  return rt.run(fn)
end

describe("coroutines runtime", function()
  it("is named 'coroutines'", function()
    assert.are.equal("coroutines", rt.name)
    assert.are.equal(rt, duet.coroutines)
  end)

  describe("rt.run()", function()
    it("returns every result of main, nils included", function()
      local r = table.pack(rt.run(function(a, b) return a, nil, b end, 1, 2))
      assert.are.same({ 1, nil, 2, n = 3 }, r)
    end)

    it("raises main's string error with main's traceback appended", function()
      local ok, e = pcall(rt.run, function() error("main broke") end)
      assert.is_false(ok)
      assert.matches("main broke", e)
      assert.matches("stack traceback:", e)
      assert.matches("coroutines_spec.lua", e)
    end)

    it("raises main's non-string error as the same value", function()
      local obj = {}
      local ok, e = pcall(rt.run, function() error(obj) end)
      assert.is_false(ok)
      assert.are.equal(obj, e)
    end)

    it("waits for every non-daemon task, even after main failed", function()
      local done = false
      local ok = pcall(rt.run, function()
        rt.spawn(function() rt.sleep(SHORT); done = true end)
        error("early")
      end)
      assert.is_false(ok)
      assert.is_true(done)
    end)

    it("cancels the daemons still alive and lets them unwind", function()
      local th, seen
      rt.run(function()
        th = rt.Thread{target = function()
          local _, e = pcall(rt.sleep, 60)
          seen = e
          rt.sleep(1)        -- blocking again while shutting down: cancelled
          return "not reached"
        end, daemon = true}
        th:start()
        rt.sleep(0)
      end)
      assert.are.equal(duet.cancelled, seen)
      assert.is_false(th:is_alive())
      local ok, e = th:join()
      assert.is_false(ok)
      assert.are.equal(duet.cancelled, e)
    end)

    it("makes the tasks a daemon spawns daemons too", function()
      local child
      rt.run(function()
        rt.Thread{target = function()
          child = rt.spawn(function() rt.sleep(60) end)
          rt.sleep(60)
        end, daemon = true}:start()
        rt.sleep(0)
      end)
      assert.is_true(child.daemon)
      assert.are.equal(duet.cancelled, select(2, child:join()))
    end)

    it("raises a deadlock error when every task is blocked for good", function()
      assert.has_error(function()
        rt.run(function()
          rt.Thread{ target = function() rt.Event():wait() end, name = "waiter" }:start()
          rt.Event():wait()
        end)
      end, "duet.coroutines: deadlock: 2 task(s) blocked forever (MainThread, waiter)")
    end)

    it("closes the to-be-closed variables of tasks it gives up on", function()
      local lock = rt.Lock()
      pcall(rt.run, function()
        local _ <close> = lock:guard()
        rt.Event():wait()
      end)
      assert.is_false(lock:locked())
    end)

    it("can run again after a run that failed", function()
      pcall(rt.run, function() rt.Event():wait() end)
      assert.are.equal(42, rt.run(function() rt.sleep(0); return 42 end))
    end)

    it("refuses to nest", function()
      local ok, e = pcall(rt.run, function()
        return rt.run(function() end)
      end)
      assert.is_false(ok)
      assert.matches("duet.coroutines: rt.run is already running", e, 1, true)
    end)
  end)

  describe("scheduling", function()
    it("runs spawned tasks in spawn order, once the spawner blocks", function()
      local log = {}
      run(function()
        for i = 1, 3 do rt.spawn(function() log[#log + 1] = i end) end
        log[#log + 1] = "main"
        rt.sleep(0)
        log[#log + 1] = "main again"
      end)
      assert.are.same({ "main", 1, 2, 3, "main again" }, log)
    end)

    it("sends a task to the back of the ready queue on sleep(0)", function()
      local log = {}
      run(function()
        for _, name in ipairs { "a", "b" } do
          rt.spawn(function()
            for i = 1, 3 do log[#log + 1] = name .. i; rt.sleep(0) end
          end)
        end
      end)
      assert.are.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, log)
    end)

    it("wakes every timer that is due in the same pass", function()
      local log = {}
      run(function()
        for i, name in ipairs { "a", "b" } do
          rt.spawn(function()
            rt.sleep(i * SHORT)
            log[#log + 1] = name .. 1
            rt.sleep(0)
            log[#log + 1] = name .. 2
          end)
        end
        rt.sleep(0)          -- both are asleep now
        -- stay busy past both deadlines: they fire together, so b runs
        -- before a's second turn
        local t = rt.now() + 3 * SHORT
        while rt.now() < t do end
      end)
      assert.are.same({ "a1", "b1", "a2", "b2" }, log)
    end)

    -- On the virtual clock a timer fires at its deadline exactly, so each
    -- task can log the time it woke at.
    local function on_virtual_clock(fn)
      duet.runtime("coroutines", { clock = "virtual" })
      local ok, err = pcall(run, fn)
      duet.runtime("coroutines", {})
      if not ok then error(err, 0) end
    end

    -- (deadline order is checked here, where no stall of a loaded machine
    -- between two tasks' sleeps can reorder their deadlines)
    it("fires timers set in any order at their deadlines, earliest first", function()
      local log = {}
      on_virtual_clock(function()
        local ev = rt.Event()
        -- in order (5, 7, 7, 9) and out of it (3, 1, 2, 8, 4)
        for _, d in ipairs { 5, 7, 3, 7, 1, 9, 2, 8 } do
          rt.spawn(function()
            rt.sleep(d)
            log[#log + 1] = d .. "@" .. rt.now()
            if d == 2 then ev:set() end
          end)
        end
        rt.spawn(function()   -- set at 2: its timer (4) goes early
          local woken = ev:wait(4)
          log[#log + 1] = tostring(woken) .. "@" .. rt.now()
        end)
      end)
      assert.are.same({ "1@1.0", "2@2.0", "true@2.0", "3@3.0", "5@5.0",
        "7@7.0", "7@7.0", "8@8.0", "9@9.0" }, log)
    end)

    it("lets the next timer fire at its own time once the first is gone", function()
      local log = {}
      on_virtual_clock(function()
        local q = rt.Queue()
        rt.spawn(function()
          local item = q:get(5)
          log[#log + 1] = item .. "@" .. rt.now()
        end)
        rt.spawn(function()
          rt.sleep(10)
          log[#log + 1] = "slept@" .. rt.now()
        end)
        rt.sleep(0)     -- both wait: the get's timer (5) first
        q:put("x")      -- wakes it, before its deadline
      end)
      assert.are.same({ "x@0.0", "slept@10.0" }, log)
    end)

    it("keeps timers in order over a long run of sleeps that never empties", function()
      local late = {}
      on_virtual_clock(function()
        -- the same period, started apart: each timer set goes last
        for start = 1, 3 do
          rt.spawn(function()
            rt.sleep(start)
            for k = 1, 1500 do
              rt.sleep(3)
              if rt.now() ~= start + 3 * k then late[#late + 1] = start .. "+3x" .. k end
            end
          end)
        end
      end)
      assert.are.same({}, late)
    end)

    it("forgets the timers of timed waits woken early, wherever they are", function()
      local log = {}
      on_virtual_clock(function()
        local qs, tasks = {}, {}
        for i = 1, 150 do
          qs[i] = rt.Queue()
          tasks[i] = rt.spawn(function()
            local item, why = qs[i]:get(i)
            log[#log + 1] = i .. ":" .. (item or why) .. "@" .. rt.now()
          end)
        end
        rt.sleep(0)   -- every task waits now, each with its own deadline
        -- wake 1 to 100 from the earliest, 150 to 101 from the latest;
        -- 10, 20, ..., 100 time out
        for i = 1, 100 do
          if i % 10 ~= 0 then qs[i]:put("x") end
        end
        for i = 150, 101, -1 do qs[i]:put("x") end
        for _, task in ipairs(tasks) do task:join() end
      end)
      local want = {}
      for i = 1, 100 do
        if i % 10 ~= 0 then want[#want + 1] = i .. ":x@0.0" end
      end
      for i = 150, 101, -1 do want[#want + 1] = i .. ":x@0.0" end
      for i = 10, 100, 10 do want[#want + 1] = i .. ":empty@" .. i .. ".0" end
      assert.are.same(want, log)
    end)

    it("does not keep the timers of timed waits woken early", function()
      local grew
      on_virtual_clock(function()
        -- one wait that stays, then two tasks taking turns in timed waits,
        -- each woken while the other's later timer is set: every wake
        -- takes out a timer between two others
        local still = rt.Queue()
        rt.spawn(function() still:get(10) end)
        local qs = { rt.Queue(), rt.Queue() }
        local N = 20000
        for w = 1, 2 do
          rt.spawn(function()
            for _ = 1, N do assert(qs[w]:get(10)) end
          end)
        end
        rt.sleep(0)
        collectgarbage()
        local before = collectgarbage("count")
        for _ = 1, N do
          for w = 1, 2 do
            qs[w]:put(true)
            rt.sleep(0)
          end
        end
        collectgarbage()
        grew = collectgarbage("count") - before
      end)
      -- 20,000 kept timers would take over 600 KB
      assert.is_true(grew < 100, ("memory grew by %.0f KB"):format(grew))
    end)

    -- the scheduler reuses a task's list of joiners for later tasks
    it("wakes each task's joiners, and only them, across tasks that end one after another", function()
      local log = {}
      on_virtual_clock(function()
        local function joiner(th, tag, timeout)
          return rt.spawn(function()
            local ok = th:join(timeout)
            log[#log + 1] = tag .. "=" .. tostring(ok) .. "@" .. rt.now()
          end)
        end
        local a = rt.spawn(function() rt.sleep(2) end)
        local quitter = joiner(a, "a/quit", 1)
        local a1, a2 = joiner(a, "a1"), joiner(a, "a2")
        quitter:join()
        a:join()
        a1:join(); a2:join()
        local b = rt.spawn(function() rt.sleep(1) end)
        local b1 = joiner(b, "b1")
        local c = rt.spawn(function() rt.sleep(3) end)
        local c1 = joiner(c, "c1")
        b1:join()
        c1:join()
      end)
      assert.are.same({ "a/quit=nil@1.0", "a1=true@2.0", "a2=true@2.0",
        "b1=true@3.0", "c1=true@5.0" }, log)
    end)

    it("serves lock waiters in arrival order", function()
      local log, lock = {}, rt.Lock()
      run(function()
        lock:acquire()
        for i = 1, 4 do
          rt.spawn(function() lock:with(function() log[#log + 1] = i end) end)
        end
        rt.sleep(0)
        lock:release()
      end)
      assert.are.same({ 1, 2, 3, 4 }, log)
    end)
  end)

  describe("Queue hand-offs", function()
    it("do not switch per item: a producer runs until it must block", function()
      local log = {}
      run(function()
        local q = rt.Queue()
        rt.spawn(function()
          for _ = 1, 3 do
            local item = q:get()
            log[#log + 1] = "got " .. item
          end
        end)
        rt.sleep(0)          -- the consumer now waits in get()
        for i = 1, 3 do q:put(i); log[#log + 1] = "put " .. i end
      end)
      assert.are.same({ "put 1", "put 2", "put 3", "got 1", "got 2", "got 3" }, log)
    end)

    it("fill a bounded queue for many items per switch", function()
      local log = {}
      run(function()
        local q = rt.Queue(2)
        rt.spawn(function()
          for _ = 1, 5 do
            local item = q:get()
            log[#log + 1] = "got " .. item
          end
        end)
        for i = 1, 5 do q:put(i); log[#log + 1] = "put " .. i end
      end)
      assert.are.same({
        "put 1", "put 2",                  -- full: the producer blocks
        "got 1", "got 2", "got 3",         -- 3 moved in by the first get
        "put 3", "put 4", "put 5",         -- 4 handed to the waiting getter
        "got 4", "got 5",
      }, log)
    end)

    it("serve waiting getters in arrival order", function()
      local log = {}
      run(function()
        local q = rt.Queue()
        for i = 1, 3 do
          rt.spawn(function()
            local item = q:get()
            log[#log + 1] = i .. ":" .. item
          end)
        end
        rt.sleep(0)
        q:put_many({ "a", "b", "c" })
      end)
      assert.are.same({ "1:a", "2:b", "3:c" }, log)
    end)

    it("hand a batch's first items to waiting getters, then queue the rest", function()
      local log = {}
      run(function()
        local q = rt.Queue()
        for i = 1, 2 do
          rt.spawn(function()
            local item = q:get()
            log[#log + 1] = i .. ":" .. item
          end)
        end
        rt.sleep(0)
        q:put_many({ "a", "b", "c", "d", "e" })
        assert.are.same({ "c", "d" }, q:get_many(2))
        assert.are.same({ "e" }, q:get_many(10))
        assert.is_true(q:empty())
      end)
      assert.are.same({ "1:a", "2:b" }, log)
    end)

    it("let a waiting get_many take what arrived with its first item", function()
      local got = run(function()
        local q = rt.Queue()
        local th = rt.spawn(function() return q:get_many(3) end)
        rt.sleep(0)
        q:put_many({ 1, 2, 3, 4 })
        return select(2, th:join())
      end)
      assert.are.same({ 1, 2, 3 }, got)
    end)

    it("keep FIFO order on a queue that never drains", function()
      local got = {}
      run(function()
        local q = rt.Queue()
        for i = 1, 3 do q:put(i) end
        for i = 4, 20000 do
          q:put(i)
          got[#got + 1] = q:get()
        end
        while not q:empty() do got[#got + 1] = q:get() end
      end)
      assert.are.equal(20000, #got)
      for i = 1, 20000 do
        if got[i] ~= i then assert.are.equal(i, got[i]) end
      end
    end)
  end)

  describe("PriorityQueue", function()
    it("orders number priorities before string ones", function()
      local q = rt.PriorityQueue()
      for _, item in ipairs { "b", 2, { "a", "x" }, 1 } do q:put_nowait(item) end
      assert.are.equal(1, q:get_nowait())
      assert.are.equal(2, q:get_nowait())
      assert.are.same({ "a", "x" }, q:get_nowait())
      assert.are.equal("b", q:get_nowait())
    end)
  end)

  describe("calls outside rt.run", function()
    it("raise for a call that would block", function()
      local q = rt.Queue()
      assert.has_error(function() q:get() end,
        "duet.coroutines: blocking call outside rt.run")
      assert.has_error(function() rt.sleep(0) end,
        "duet.coroutines: blocking call outside rt.run")
      local lock = rt.Lock()
      lock:acquire()
      assert.has_error(function() lock:acquire() end,
        "duet.coroutines: blocking call outside rt.run")
    end)

    it("work when they do not block", function()
      local q = rt.Queue(1)
      assert.is_true(q:put_nowait("x"))
      assert.are.same({ nil, "full" }, { q:put("y", 0) })
      assert.are.equal("x", q:get_nowait())
      local lock = rt.Lock()
      assert.is_true(lock:acquire())
      assert.is_false(lock:acquire(0))
      lock:release()
      local tb = rt.TokenBucket{ capacity = 2, rate = 1 }
      assert.is_true(tb:take(2))
    end)

    it("raise for a task start", function()
      assert.has_error(function() rt.spawn(function() end) end,
        "duet.coroutines: cannot start a task outside rt.run")
      assert.has_error(function() rt.Executor{}:submit(print) end,
        "duet.coroutines: cannot start a task outside rt.run")
    end)

    it("see the main thread as the current one", function()
      local main = rt.current()
      assert.are.equal("MainThread", main.name)
      assert.is_true(main:is_alive())
      assert.are.equal(main, rt.run(rt.current))
    end)
  end)

  describe("Thread fields", function()
    it("take a name and, before start, a daemon flag", function()
      local th = rt.Thread{ target = function() end }
      th.name = "renamed"
      th.daemon = true
      assert.are.equal("renamed", th.name)
      assert.is_true(th.daemon)
      th.name = 42
      assert.are.equal("42", th.name)
    end)

    it("refuse the rest, as on the threads runtime", function()
      local th = run(function() return rt.spawn(function() end) end)
      assert.has_error(function() th.daemon = true end,
        "cannot set daemon status of active thread")
      assert.has_error(function() th.color = "red" end,
        "cannot set field 'color' of duet.Thread")
      assert.has_error(function() th.name = {} end,
        "bad argument #3 to 'newindex' (string expected, got table)")
    end)
  end)

  describe("blocking inside a coroutine that is not a task", function()
    it("raises instead of suspending the wrong coroutine", function()
      local ok, e = run(function()
        local co = coroutine.wrap(function() return pcall(rt.sleep, 0) end)
        return co()
      end)
      assert.is_false(ok)
      assert.matches("duet.coroutines: blocking call from a coroutine that is not a duet task", e, 1, true)
    end)
  end)

  describe("cancellation", function()
    it("stops a task cancelled before its first turn without running it", function()
      local ran = false
      local th = run(function()
        local th = rt.spawn(function() ran = true end)
        th:cancel()
        th:join()
        return th
      end)
      assert.is_false(ran)
      assert.are.same({ false, duet.cancelled }, { th:join() })
    end)

    it("is delivered once: a task that caught it can block again", function()
      local r = run(function()
        local ev = rt.Event()
        local th = rt.spawn(function()
          local ok, e = pcall(ev.wait, ev)
          assert.is_false(ok)
          assert.are.equal(duet.cancelled, e)
          rt.sleep(SHORT)
          return "went on"
        end)
        rt.sleep(0)
        th:cancel()
        return select(2, th:join())
      end)
      assert.are.equal("went on", r)
    end)

    it("reaches a task that keeps yielding with sleep(0)", function()
      local ok, e = run(function()
        local th = rt.spawn(function() while true do rt.sleep(0) end end)
        rt.sleep(0)
        th:cancel()
        return th:join()
      end)
      assert.is_false(ok)
      assert.are.equal(duet.cancelled, e)
    end)

    it("raises at once in a task that cancels itself", function()
      local ok, e = run(function()
        return rt.spawn(function()
          rt.current():cancel()
          return "not reached"
        end):join()
      end)
      assert.is_false(ok)
      assert.are.equal(duet.cancelled, e)
    end)

    it("leaves a finished task as it was", function()
      local th = run(function()
        local th = rt.spawn(function() return "done" end)
        th:join()
        return th
      end)
      th:cancel()
      assert.are.same({ true, "done" }, { th:join() })
    end)
  end)

  describe("duet.excepthook", function()
    local saved, calls
    before_each(function()
      saved, calls = duet.excepthook, {}
      duet.excepthook = function(th, e, tb) calls[#calls + 1] = { th, e, tb } end
    end)
    after_each(function() duet.excepthook = saved end)

    it("gets an error that ends a task nobody is joining", function()
      local th = run(function()
        local th = rt.spawn(function() error("lost") end)
        rt.sleep(0)
        return th
      end)
      assert.are.equal(1, #calls)
      assert.are.equal(th, calls[1][1])
      assert.matches("lost", calls[1][2])
      assert.matches("stack traceback:", calls[1][3])
      assert.are.equal(th.traceback, calls[1][3])
    end)

    it("is not called when a joiner is waiting for the task", function()
      local ok = run(function()
        local th = rt.spawn(function() rt.sleep(0); error("seen") end)
        return th:join()
      end)
      assert.is_false(ok)
      assert.are.equal(0, #calls)
    end)

    it("is not called for duet.cancelled", function()
      run(function()
        local th = rt.spawn(function() rt.sleep(60) end)
        rt.sleep(0)
        th:cancel()
      end)
      assert.are.equal(0, #calls)
    end)

    it("gets an error raised by a future's done callback", function()
      local r = run(function()
        local ex = rt.Executor{ max_workers = 1 }
        local f = ex:submit(function() return 1 end)
        f:add_done_callback(function() error("callback broke") end)
        return f:result()
      end)
      assert.are.equal(1, r)
      assert.are.equal(1, #calls)
      assert.matches("callback broke", calls[1][2])
    end)
  end)

  describe("SharedTable", function()
    it("keeps a key named like a method without hiding the method", function()
      local t = rt.SharedTable{ update = "data" }
      t.incr = 1
      assert.are.equal("function", type(t.incr))
      assert.are.equal(2, t:incr("incr"))
      assert.are.same({ update = "data", incr = 2 }, t:snapshot())
      local seen = {}
      for k, v in pairs(t) do seen[k] = v end
      assert.are.same({ update = "data", incr = 2 }, seen)
    end)
  end)

  describe("SharedTable:update()", function()
    it("refuses a function that blocks", function()
      local ok, e = run(function()
        local t = rt.SharedTable{ n = 1 }
        return pcall(t.update, t, "n", function(v) rt.sleep(0); return v end)
      end)
      assert.is_false(ok)
      assert.matches("duet.coroutines: a SharedTable:update function must not block", e, 1, true)
    end)
  end)

  describe("Executor", function()
    it("holds no task once idle, so run returns without shutdown", function()
      local r = run(function()
        local ex = rt.Executor{ max_workers = 2 }
        return ex:submit(function(x) return x + 1 end, 41):result()
      end)
      assert.are.equal(42, r)
    end)

    it("runs at most max_workers tasks at once", function()
      local peak = run(function()
        local ex = rt.Executor{ max_workers = 3 }
        local now, peak = 0, 0
        local futs = {}
        for i = 1, 10 do
          futs[i] = ex:submit(function()
            now = now + 1
            if now > peak then peak = now end
            rt.sleep(0)
            now = now - 1
          end)
        end
        rt.wait(futs)
        return peak
      end)
      assert.are.equal(3, peak)
    end)
  end)

  -- The executors, SharedTable, TokenBucket and seeded runs' module load on
  -- first use.
  -- (#notsan: child processes; /bin/sh crashes with TSan preloaded)
  -- as on the threads runtime, where the hook runs in the dying thread
  it("refuses a join of the current task in the excepthook of a failed one", function()
    local saved, got = duet.excepthook, nil
    duet.excepthook = function() got = { pcall(function() return rt.current():join() end) } end
    local ok, e = pcall(run, function() rt.spawn(function() error("boom") end) end)
    duet.excepthook = saved
    assert.is_true(ok, e)
    assert.is_false(got[1])
    assert.matches("cannot join current thread", got[2])
  end)

  describe("start-up", function()
    local H = require "helpers"

    it("serves every public name of the modules it loads on first use", function()
      for _, mod in ipairs { "duet.coroutines.executor", "duet.coroutines.sharedtable" } do
        for k, v in pairs(require(mod)) do
          if k:sub(1, 1) ~= "_" then
            assert.are.equal(v, rt[k], mod .. "." .. k)
          end
        end
      end
      for k in pairs(require "duet.coroutines.tokenbucket") do
        if k:sub(1, 1) ~= "_" then assert.is_function(rt[k], k) end
      end
      assert.is_function(rt.ProcessExecutor)
      assert.are.equal(require("duet.coroutines.preempt").trace, rt.trace)
    end)

    it("loads seeded runs' module only for their options, duet.explore or rt.trace #notsan", function()
      local out, err, status = H.child([[
local duet = require "duet"
local rt = duet.runtime("coroutines")
local loaded = package.loaded
print(loaded["duet.coroutines.preempt"])
print(#rt.trace(), loaded["duet.coroutines.preempt"] ~= nil)
]])
      assert.are.equal(0, status, err)
      assert.are.equal("nil\n0\ttrue\n", out)
      out, err, status = H.child([[
local duet = require "duet"
duet.runtime("coroutines", { preempt = { seed = 1 } })
print(package.loaded["duet.coroutines.preempt"] ~= nil)
]])
      assert.are.equal(0, status, err)
      assert.are.equal("true\n", out)
    end)

    it("loads the executors only when a script first asks for them #notsan", function()
      local out, err, status = H.child([[
local rt = require("duet").runtime("coroutines")
local loaded = package.loaded
print(loaded["duet.coroutines.executor"], loaded["duet.process"])
print(rt.run(function() return rt.Executor{}:submit(function() return 6 * 7 end):result() end))
print(loaded["duet.coroutines.executor"] ~= nil, loaded["duet.process"])
local ex <close> = rt.ProcessExecutor{max_workers = 1}
print(loaded["duet.process"] ~= nil)
local mine = function() end
rt.SharedTable = mine            -- a script's own stays, loaded or not
print(rt.SharedTable == mine)
]])
      assert.are.equal(0, status, err)
      assert.are.equal("nil\tnil\n42\ntrue\tnil\ntrue\ntrue\n", out)
    end)

    -- a module loaded inside the first seeded run would change its
    -- preemption points: a seed would not replay in a new process; and
    -- each seeded run numbers its executors from 0, as its tasks
    it("lets the first seeded run of a process preempt, and name tasks, as the next ones do #notsan", function()
      local out, err, status = H.child([[
local duet = require "duet"
local rt = duet.runtime("coroutines")
local before = rt.Executor{ max_workers = 1 }   -- made outside any run
local names = {}
local function prog()
  names[#names + 1] = before:submit(function() return rt.current().name end):result()
  local ex = rt.Executor{ max_workers = 2 }
  names[#names + 1] = ex:submit(function() return rt.current().name end):result()
  local st = rt.SharedTable()
  local tb = rt.TokenBucket{ rate = 1e6, capacity = 1e6 }
  local futs = {}
  for i = 1, 4 do
    futs[i] = ex:submit(function()
      for _ = 1, 200 do st.n = (st.n or 0) + 1; tb:consume(1) end
      return i
    end)
  end
  rt.wait(futs)
  ex:shutdown()
end
local traces = {}
for r = 1, 2 do
  duet.runtime("coroutines", { preempt = { seed = 3 } })
  rt.run(prog)
  local t = {}
  for i, e in ipairs(rt.trace()) do t[i] = e.task .. "@" .. e.where end
  traces[r] = table.concat(t, ";")
end
print(#traces[1] > 0, traces[1] == traces[2])
print(table.concat(names, " "))
]])
      assert.are.equal(0, status, err)
      -- the outside one keeps its number, and its own count of workers
      assert.are.equal("true\ttrue\nExecutor-0_0 Executor-1_0 Executor-0_1 Executor-1_0\n", out)
    end)
  end)
end)

describe("duet.check", function()
  local check = require "duet.check"

  it("words type errors like luaL_check*", function()
    assert.has_error(function() check.number("put", 2, "x") end,
      "bad argument #2 to 'put' (number expected, got string)")
    assert.has_error(function() check.func("spawn", 1, nil) end,
      "bad argument #1 to 'spawn' (function expected, got no value)")
    assert.has_error(function() check.integer("get_many", 1, 1.5) end,
      "bad argument #1 to 'get_many' (number has no integer representation)")
    assert.has_error(function() check.table("map", 2, rt.Lock) end,
      "bad argument #2 to 'map' (table expected, got function)")
    assert.has_error(function() check.number("sleep", 1, rt.Lock()) end,
      "bad argument #1 to 'sleep' (number expected, got duet.Lock)")
  end)

  it("refuses negative and NaN timeouts", function()
    for _, t in ipairs { -1, 0 / 0 } do
      assert.has_error(function() check.timeout("get", 1, t) end,
        "bad argument #1 to 'get' (timeout must be a non-negative number)")
    end
    assert.are.equal(0.5, check.timeout("get", 1, "0.5"))
    assert.is_nil(check.timeout("get", 1, nil))
  end)

  it("points the error at the caller outside duet", function()
    local q = rt.Queue()
    local ok, e = pcall(function() q:get(-1) end)
    assert.is_false(ok)
    assert.matches("^[^:]*coroutines_spec%.lua:%d+: bad argument #1 to 'get'", e)
  end)

  it("after a tail call into duet, points the error at the nearest caller with a line", function()
    local q = rt.Queue()
    local function get_bad() return q:get(-1) end   -- its frame is gone
    local line = debug.getinfo(1, "l").currentline
    local ok, e = pcall(function() local v = get_bad(); return v end)
    assert.is_false(ok)
    assert.matches("^[^:]*coroutines_spec%.lua:" .. (line + 1) .. ": bad argument #1 to 'get'", e)
  end)
end)
