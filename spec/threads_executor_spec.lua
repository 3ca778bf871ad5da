-- The threads runtime's Executor and Future (API.md, "Executors and
-- futures"): a pool of persistent worker OS threads, each with a Lua state
-- of its own, and futures shared by reference between threads. What every
-- runtime shares is checked by spec/conformance/executor.lua; this file
-- holds what is particular to OS threads: tasks on named worker threads in
-- parallel, the function cache (a function's code loaded once per worker,
-- its upvalues copied for every run), errors and tracebacks crossing
-- states, callbacks in the completing thread, shutdown racing submits, and
-- the exact messages.
--
-- Tasks are copied into the worker's state: they share state with the
-- caller only through duet objects and report through their results. Every
-- wait is bounded (LONG), so a failure never hangs the run, and no case
-- asserts timing.

local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local setup, teardown = busted.setup, busted.teardown
local duet = require "duet"
local core = require "duet.core"
local rt = duet.threads

local SHORT = 0.02                      -- timeouts that are meant to expire
local LONG = 5                          -- bounds waits that must succeed

--- The error fn(...) raises (nil if none).
local function raised(fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return nil end
  return e
end

--- Message without the "file:line: " prefix.
local function strip(e)
  return (tostring(e):gsub("^.-:%d+: ", "", 1))
end

--- Run Lua `code` in a fresh lua5.4 process that finds duet like this one;
--- returns its stdout+stderr and whether it exited with status 0 (killed
--- after `limit` seconds).
local function child(code, limit)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(("package.path = %q\npackage.cpath = %q\n")
    :format(package.path, package.cpath), code)
  f:close()
  local p = assert(io.popen(("timeout -k 1 %d lua5.4 %s 2>&1")
    :format(limit or 10, script)))
  local out = p:read("a")
  local ok = p:close()
  os.remove(script)
  return out, ok == true
end

describe("threads runtime: Executor", function()
  -- callbacks that raise on purpose report through the excepthook
  setup(function() core.set_excepthook(function() end) end)
  teardown(function() core.set_excepthook(nil) end)

  describe("workers", function()
    it("run tasks on threads named Executor-N_k, not in the caller", function()
      local ex <close> = rt.Executor{max_workers = 2}
      local name = ex:submit(function() return rt.current().name end)
        :result(LONG)
      assert.matches("^Executor%-%d+_%d+$", name)
      assert.are_not.equal(rt.current().name, name)
      local th = ex:submit(function() return rt.current() end):result(LONG)
      assert.is_true(th.daemon)
    end)

    it("run max_workers tasks at once, on as many threads", function()
      local ex <close> = rt.Executor{max_workers = 4}
      local b = rt.Barrier(4)
      local futs = {}
      for i = 1, 4 do
        futs[i] = ex:submit(function()
          b:wait(LONG)                  -- only passes if all 4 run at once
          return rt.current().name
        end)
      end
      local names = {}
      for i = 1, 4 do names[futs[i]:result(LONG)] = true end
      local n = 0
      for _ in pairs(names) do n = n + 1 end
      assert.are.equal(4, n)
    end)

    it("are numbered per executor, the same worker reused", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local a = ex:submit(function() return rt.current().name end):result(LONG)
      local b = ex:submit(function() return rt.current().name end):result(LONG)
      assert.are.equal(a, b)
      assert.matches("_0$", a)
      local ex2 <close> = rt.Executor{max_workers = 1}
      local c = ex2:submit(function() return rt.current().name end):result(LONG)
      assert.are_not.equal(a:match("^Executor%-(%d+)"), c:match("^Executor%-(%d+)"))
    end)

    it("keep their Lua state from one task to the next", function()
      local ex <close> = rt.Executor{max_workers = 1}
      ex:submit(function() _G.left_by_a_task = 42 end):result(LONG)
      assert.are.equal(42, ex:submit(function() return _G.left_by_a_task end)
        :result(LONG))
      assert.is_nil(_G.left_by_a_task)   -- the caller's state is another
    end)

    it("start only as many threads as the work needs", function()
      local ex <close> = rt.Executor{max_workers = 8}
      for _ = 1, 3 do ex:submit(function() end):result(LONG) end
      assert.matches("^duet.Executor %(1 worker, 0 pending%): ", tostring(ex))
    end)

    it("default to one per CPU", function()
      local f = assert(io.open("/sys/devices/system/cpu/online"))
      local ncpu = 0                     -- "0-3,6": what sysconf counts
      for a, b in f:read("a"):gmatch("(%d+)%-?(%d*)") do
        ncpu = ncpu + (b ~= "" and tonumber(b) - tonumber(a) + 1 or 1)
      end
      f:close()
      local ex <close> = rt.Executor()
      local b = rt.Barrier(ncpu)
      local futs = {}
      for i = 1, ncpu do futs[i] = ex:submit(function() return b:wait(LONG) end) end
      for i = 1, ncpu do futs[i]:result(LONG) end
      assert.matches("%(" .. ncpu .. " workers?,", tostring(ex))
    end)
  end)

  describe("the function cache", function()
    it("runs the same function submitted many times", function()
      local ex <close> = rt.Executor{max_workers = 3}
      local double = function(x) return x * 2 end
      local futs = {}
      for i = 1, 2000 do futs[i] = ex:submit(double, i) end
      local sum = 0
      for i = 1, 2000 do sum = sum + futs[i]:result(LONG) end
      assert.are.equal(2000 * 2001, sum)
    end)

    it("gives each run the upvalue values of its own submit", function()
      local ex <close> = rt.Executor{max_workers = 2}
      local k = 1
      local f = function(x) return x + k end
      local a = ex:submit(f, 10)
      k = 100
      local b = ex:submit(f, 10)
      assert.are.equal(11, a:result(LONG))
      assert.are.equal(110, b:result(LONG))
      local futs = {}
      for i = 1, 50 do                   -- one closure per value of i
        futs[i] = ex:submit(function() return i * i end)
      end
      for i = 1, 50 do assert.are.equal(i * i, futs[i]:result(LONG)) end
    end)

    it("copies the upvalues for every run: a task's changes stay its own", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local n, seen = 0, {}
      local count = function(x)
        n = n + 1
        seen[#seen + 1] = x
        return n, #seen
      end
      for i = 1, 5 do
        assert.are.same({1, 1}, {ex:submit(count, i):result(LONG)})
      end
      assert.are.equal(0, n)
      assert.are.same({}, seen)
    end)

    it("keeps upvalues shared between the task and its helpers", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local count = 0
      local function bump() count = count + 1 end
      local task = function() bump(); bump(); return count end
      for _ = 1, 3 do assert.are.equal(2, ex:submit(task):result(LONG)) end
    end)

    it("runs recursive local functions and nested helpers", function()
      local ex <close> = rt.Executor{max_workers = 2}
      local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
      assert.are.same({n = 6, 1, 1, 2, 3, 5, 55}, ex:map(fib, {1, 2, 3, 4, 5, 10}))
      local function square(x) return x * x end
      local M = {scale = 3, square = square}
      assert.are.equal(27, ex:submit(function(x) return M.scale * M.square(x) end, 3)
        :result(LONG))
    end)

    it("reaches loaded modules, duet objects and globals from the task", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local q = rt.Queue()
      local fmt = string.format
      local f = ex:submit(function(x)
        q:put(rt.current().name)
        return fmt("%s-%d", type(print), x), math.floor(2.5)
      end, 7)
      assert.are.same({"function-7", 2}, {f:result(LONG)})
      assert.matches("^Executor", q:get(LONG))
    end)

    it("passes copied tables as arguments and upvalues, fresh for each run", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local cfg = {add = 5, nested = {mul = 2}}
      local f = function(t)
        t.n = (t.n or 0) + 1
        cfg.add = cfg.add + 1
        return t.n, (t.v + cfg.add) * cfg.nested.mul
      end
      local arg = {v = 1}
      for _ = 1, 3 do assert.are.same({1, 14}, {ex:submit(f, arg):result(LONG)}) end
      assert.is_nil(arg.n)
      assert.are.equal(5, cfg.add)
    end)

    it("runs C functions of the standard library by name", function()
      local ex <close> = rt.Executor{max_workers = 1}
      assert.are.equal(7, ex:submit(math.max, 3, 7, 5):result(LONG))
      assert.are.same({n = 2, "a", "b"}, ex:map(string.lower, {"A", "B"}))
    end)

    it("names what cannot move, and schedules nothing", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local co = coroutine.create(function() end)
      assert.are.equal("cannot move coroutine at args[2]",
        strip(raised(ex.submit, ex, function() end, 1, co)))
      local f = function() return co end
      assert.are.equal("cannot move coroutine at fn<upvalue co>",
        strip(raised(ex.submit, ex, f)))
      assert.matches("^duet.Executor %(%d+ workers?, 0 pending%)", tostring(ex))
    end)
  end)

  describe("Future", function()
    it("returns every result, nils included", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local f = ex:submit(function() return nil, 2, nil, "x", true end)
      assert.are.same({n = 5, nil, 2, nil, "x", true}, table.pack(f:result(LONG)))
      assert.are.equal(0, select("#", ex:submit(function() end):result(LONG)))
    end)

    it("re-raises the task's error value, with its traceback in fut.traceback", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local f = ex:submit(function() local function inner() error("deep boom") end inner() end)
      local e = raised(f.result, f)
      assert.matches("deep boom", e)
      assert.matches("stack traceback:", f.traceback)
      assert.matches("inner", f.traceback)
      assert.are.equal(e, f:exception(LONG))
      local g = ex:submit(function() error(setmetatable({code = 7}, {__index = {kind = "E"}})) end)
      local ge = raised(g.result, g)
      assert.are.equal(7, ge.code)
      assert.are.equal("E", ge.kind)
      local h = ex:submit(function() error(duet.broken_barrier) end)
      assert.is_true(raised(h.result, h) == duet.broken_barrier)
      assert.is_nil(ex:submit(function() return 1 end).traceback)
    end)

    it("fails with the error naming results that cannot move", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local f = ex:submit(function() return 1, coroutine.create(print) end)
      assert.are.equal("cannot move coroutine at results[2]", strip(raised(f.result, f)))
      local g = ex:submit(function() error(coroutine.create(print)) end)
      assert.matches("^thread: ", raised(g.result, g))   -- its text instead
    end)

    it("(timeout) raises duet.timeout from result and exception, false from wait", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local gate = rt.Event()
      local f = ex:submit(function() return gate:wait(LONG) end)
      assert.is_true(raised(f.result, f, SHORT) == duet.timeout)
      assert.is_true(raised(f.exception, f, 0) == duet.timeout)
      assert.is_false(f:wait(SHORT))
      assert.is_false(f:done())
      gate:set()
      assert.is_true(f:result(LONG))
    end)

    it("cancel() before start: true, it never runs; running: false", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local gate, started, ran = rt.Event(), rt.Event(), rt.Event()
      local running = ex:submit(function() started:set(); gate:wait(LONG); return "ran" end)
      local queued = ex:submit(function() ran:set() end)
      assert.is_true(started:wait(LONG))
      assert.is_false(running:cancel())
      assert.is_true(queued:cancel())
      assert.is_true(queued:cancel())    -- already cancelled: still true
      assert.is_true(queued:cancelled() and queued:done())
      assert.is_true(raised(queued.result, queued) == duet.cancelled)
      assert.is_true(raised(queued.exception, queued) == duet.cancelled)
      assert.is_true(queued:wait(0))
      gate:set()
      assert.are.equal("ran", running:result(LONG))
      ex:shutdown()
      assert.is_false(ran:is_set())
    end)

    it("works from any thread: waited for, read and cancelled elsewhere", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local gate = rt.Event()
      local f = ex:submit(function() gate:wait(LONG); return "shared" end)
      local queued = ex:submit(function() return "never" end)
      local waiter = rt.spawn(function() return f:result(LONG), f:done() end)
      local canceller = rt.spawn(function() return queued:cancel() end)
      assert.are.same({true, true}, {canceller:join(LONG)})
      gate:set()
      assert.are.same({true, "shared", true}, {waiter:join(LONG)})
      assert.is_true(queued:cancelled())
    end)

    it("has a __tostring with its state", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local gate, started = rt.Event(), rt.Event()
      local f = ex:submit(function() started:set(); gate:wait(LONG) end)
      local q = ex:submit(function() end)
      started:wait(LONG)
      assert.matches("^duet.Future %(running%): 0x", tostring(f))
      assert.matches("^duet.Future %(pending%): ", tostring(q))
      q:cancel()
      assert.matches("^duet.Future %(cancelled%): ", tostring(q))
      gate:set()
      f:wait(LONG)
      assert.matches("^duet.Future %(finished%): ", tostring(f))
    end)
  end)

  describe("rt.Future()", function()
    it(":set_result() of a value that cannot move raises and leaves it pending", function()
      local f = rt.Future()
      assert.are.equal("cannot move coroutine at results[2]",
        strip(raised(f.set_result, f, 1, coroutine.create(print))))
      assert.is_false(f:done())
      f:set_result("fine")
      assert.are.equal("fine", f:result(0))
    end)

    it("calls its callbacks in the thread that settles it", function()
      local f, log = rt.Future(), rt.Queue()
      f:add_done_callback(function() log:put(rt.current().name) end)
      rt.Thread{target = function(fut) fut:set_result() end, args = {f},
                name = "settler"}:start()
      assert.are.equal("settler", log:get(LONG))
    end)

    it("is settled exactly once when threads race to settle or cancel it", function()
      local futs = {}
      for i = 1, 50 do futs[i] = rt.Future() end
      local wins = rt.SharedTable()
      local go = rt.Event()
      local ths = {}
      for k = 1, 4 do                  -- three settle, the fourth cancels
        ths[k] = rt.spawn(function()
          go:wait(LONG)
          for i, f in ipairs(futs) do
            local ok
            if k == 4 then ok = f:cancel() else ok = pcall(f.set_result, f, k) end
            if ok then wins:incr(i) end
          end
        end)
      end
      go:set()
      for k = 1, 4 do assert.is_true((ths[k]:join(LONG))) end
      for i, f in ipairs(futs) do
        assert.is_true(f:done())
        assert.are.equal(1, wins[i])
      end
    end)
  end)

  describe(":add_done_callback()", function()
    it("calls fn(fut) in the worker that completes the future", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local gate, log = rt.Event(), rt.Queue()
      local f = ex:submit(function() gate:wait(LONG); return 5 end)
      f:add_done_callback(function(fut) log:put({rt.current().name, fut:result(0)}) end)
      gate:set()
      local got = log:get(LONG)
      assert.matches("^Executor%-%d+_0$", got[1])
      assert.are.equal(5, got[2])
    end)

    it("calls fn at once, in the caller, when already done", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local f = ex:submit(function() return 1 end)
      f:wait(LONG)
      local who
      f:add_done_callback(function(fut) who = rt.current().name .. fut:result() end)
      assert.are.equal(rt.current().name .. "1", who)   -- not a copy: same state
    end)

    it("calls them in the order added, once each", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local gate, log = rt.Event(), rt.Queue()
      local f = ex:submit(function() gate:wait(LONG) end)
      for i = 1, 5 do f:add_done_callback(function() log:put(i) end) end
      gate:set()
      for i = 1, 5 do assert.are.equal(i, log:get(LONG)) end
      assert.are.same({nil, "empty"}, {log:get(SHORT)})
    end)

    it("reports a callback's error to the excepthook and goes on", function()
      local reports, log = rt.Queue(), rt.Queue()
      local ok = pcall(function()
        core.set_excepthook(function(th, e, tb) reports:put({th.name, tostring(e), tb}) end)
        local ex <close> = rt.Executor{max_workers = 1}
        local gate = rt.Event()
        local f = ex:submit(function() gate:wait(LONG); return "fine" end)
        f:add_done_callback(function() error("callback boom") end)
        f:add_done_callback(function(fut) log:put(fut:result()) end)
        gate:set()
        assert.are.equal("fine", log:get(LONG))
        local r = reports:get(LONG)
        assert.matches("^Executor", r[1])
        assert.matches("callback boom", r[2])
        assert.matches("stack traceback", r[3])
        -- the worker goes on
        assert.are.equal(2, ex:submit(function() return 2 end):result(LONG))
      end)
      core.set_excepthook(function() end)
      assert.is_true(ok)
    end)

    it("runs a cancelled future's callbacks in the cancelling thread", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local gate, log = rt.Event(), rt.Queue()
      local blocker = ex:submit(function() gate:wait(LONG) end)
      local f = ex:submit(function() end)
      f:add_done_callback(function(fut) log:put({rt.current().name, fut:cancelled()}) end)
      assert.is_true(f:cancel())
      assert.are.same({rt.current().name, true}, log:get(0))
      gate:set()
      blocker:wait(LONG)
    end)
  end)

  describe(":map()", function()
    it("keeps the order of the list, whatever order the tasks end in", function()
      local ex <close> = rt.Executor{max_workers = 4}
      local r = ex:map(function(x) rt.sleep((8 - x) * 0.001); return x * 10 end,
        {1, 2, 3, 4, 5, 6, 7})
      assert.are.same({n = 7, 10, 20, 30, 40, 50, 60, 70}, r)
      assert.are.same({n = 2, 1, 2}, ex:map(function(x) return x end, {n = 2, 1, 2, 3}))
    end)

    it("raises the first error in list order and cancels the tasks after it", function()
      local ex <close> = rt.Executor{max_workers = 1}
      local ran, gate = rt.SharedTable(), rt.Event()
      local ok, e = pcall(ex.map, ex, function(x)
        ran[x] = true
        if x == 2 then error("bad " .. x) end
        if x > 2 then gate:wait(LONG) end   -- 3 holds the only worker
        return x
      end, {1, 2, 3, 4, 5, 6, 7, 8})
      assert.is_false(ok)
      assert.matches("bad 2", e)
      gate:set()
      ex:shutdown()
      for x = 4, 8 do assert.is_nil(ran[x], x) end   -- cancelled, never run
    end)
  end)

  describe(":shutdown()", function()
    it("raises on submit afterwards, with the standard message", function()
      local ex = rt.Executor{max_workers = 1}
      ex:shutdown()
      assert.are.equal("cannot schedule new futures after shutdown",
        strip(raised(ex.submit, ex, function() end)))
      assert.matches("shut down", tostring(ex))
    end)

    it("racing submits from other threads: each future runs or is cancelled", function()
      for _, cancel in ipairs({false, true}) do
        local ex = rt.Executor{max_workers = 2}
        local results = rt.Queue()
        local submitters = {}
        for s = 1, 3 do
          submitters[s] = rt.spawn(function()
            local futs, refused = {}, 0
            for i = 1, 400 do
              local ok, f = pcall(ex.submit, ex, function(x) return x end, i)
              if ok then futs[#futs + 1] = f
              else
                assert(tostring(f):find("after shutdown"), tostring(f))
                refused = refused + 1
              end
            end
            local done, cancelled = 0, 0
            for _, f in ipairs(futs) do
              assert(f:wait(5))
              if f:cancelled() then cancelled = cancelled + 1
              else assert(f:result() > 0); done = done + 1 end
            end
            results:put({done, cancelled, refused})
          end)
        end
        rt.sleep(0.002)
        ex:shutdown{cancel_futures = cancel}
        local total, cancelled = 0, 0
        for s = 1, 3 do
          assert.is_true(submitters[s]:join(LONG))
          local r = results:get(LONG)
          total = total + r[1] + r[2] + r[3]
          cancelled = cancelled + r[2]
        end
        assert.are.equal(1200, total)
        if not cancel then assert.are.equal(0, cancelled) end
      end
    end)

    it("from one of its own tasks does not wait for itself", function()
      local ex = rt.Executor{max_workers = 2}
      local f = ex:submit(function() ex:shutdown(); return "out" end)
      assert.are.equal("out", f:result(LONG))
      ex:shutdown()
    end)

    it("<close> waits for the queued tasks", function()
      local futs = {}
      do
        local ex <close> = rt.Executor{max_workers = 1}
        for i = 1, 5 do futs[i] = ex:submit(function() rt.sleep(0.001); return i end) end
      end
      for i = 1, 5 do assert.are.equal(i, futs[i]:result(0)) end
    end)
  end)

  describe("rt.wait() / rt.as_completed()", function()
    it("as_completed yields in completion order; a break leaves no watcher", function()
      local ex <close> = rt.Executor{max_workers = 3}
      local gates = {rt.Event(), rt.Event(), rt.Event()}
      local futs = {}
      for i = 1, 3 do futs[i] = ex:submit(function() gates[i]:wait(LONG); return i end) end
      gates[3]:set()
      local order = {}
      for f in rt.as_completed(futs, LONG) do
        order[#order + 1] = f:result()
        if #order == 1 then gates[1]:set() elseif #order == 2 then gates[2]:set() end
      end
      assert.are.same({3, 1, 2}, order)
      for _ in rt.as_completed(futs) do break end   -- luacheck: ignore 512 (closed at the break)
      collectgarbage()
    end)

    it("wait returns done and not_done without repeats, in list order", function()
      local ex <close> = rt.Executor{max_workers = 2}
      local gate = rt.Event()
      local a = ex:submit(function() return 1 end)
      local b = ex:submit(function() gate:wait(LONG) end)
      a:wait(LONG)
      local done, not_done = rt.wait({a, b, a, b}, {timeout = 0})
      assert.are.same({a}, done)
      assert.are.same({b}, not_done)
      done, not_done = rt.wait({b, a}, {return_when = "FIRST_COMPLETED"})
      assert.are.same({a}, done)
      assert.are.same({b}, not_done)
      gate:set()
      done, not_done = rt.wait({b, a}, {timeout = LONG})
      assert.are.same({b, a}, done)
      assert.are.same({}, not_done)
    end)

    it("take an empty list", function()
      local done, not_done = rt.wait({}, {return_when = "FIRST_COMPLETED"})
      assert.are.same({{}, {}}, {done, not_done})
      for _ in rt.as_completed({}) do error("nothing to yield") end
    end)

    it("FIRST_EXCEPTION returns at the first failure", function()
      local ex <close> = rt.Executor{max_workers = 2}
      local gate = rt.Event()
      local slow = ex:submit(function() gate:wait(LONG) end)
      local bad = ex:submit(function() error("x") end)
      local done, not_done = rt.wait({slow, bad}, {return_when = "FIRST_EXCEPTION", timeout = LONG})
      gate:set()
      assert.are.same({bad}, done)
      assert.are.same({slow}, not_done)
    end)

    it("refuse what is not a future, with the standard message", function()
      assert.are.equal("bad argument #1 to 'wait' (duet.Future expected at index 2, got string)",
        strip(raised(function()
          rt.wait({rt.Executor{max_workers = 1}:submit(function() end), "x"})
        end)))
      assert.are.equal("bad argument #1 to 'as_completed' (duet.Future expected at index 1, got duet.Lock)",
        strip(raised(function() rt.as_completed({rt.Lock()}) end)))
      assert.are.equal("bad argument #2 to 'wait' (invalid option 'SOON')",
        strip(raised(function() rt.wait({}, {return_when = "SOON"}) end)))
      assert.are.equal("bad argument #2 to 'wait' (timeout must be a non-negative number)",
        strip(raised(function() rt.wait({}, {timeout = -1}) end)))
    end)
  end)

  describe("rt.Executor{}", function()
    it("refuses bad options with the standard messages", function()
      assert.are.equal("bad argument #1 to 'Executor' (field 'max_workers': integer expected, got float)",
        strip(raised(function() rt.Executor{max_workers = 1.5} end)))
      assert.are.equal("bad argument #1 to 'Executor' (field 'max_workers': integer expected, got string)",
        strip(raised(function() rt.Executor{max_workers = "2"} end)))
      assert.are.equal("bad argument #1 to 'Executor' (max_workers must be at least 1)",
        strip(raised(function() rt.Executor{max_workers = 0} end)))
      assert.are.equal("bad argument #1 to 'submit' (function expected, got nil)",
        strip(raised(function() local ex = rt.Executor{max_workers = 1}; ex:submit(nil) end)))
    end)

    it("copies initializer and initargs into each worker; what cannot move fails at once", function()
      assert.are.equal("cannot move userdata (FILE*) at initargs[2]",
        strip(raised(function() rt.Executor{initializer = print, initargs = {1, io.stdout}} end)))
      local ex <close> = rt.Executor{max_workers = 1, initargs = {"ready"},
        initializer = function(v) WORKER_STATE = v end}    -- the worker's globals
      assert.are.equal("ready", ex:submit(function() return WORKER_STATE end):result(LONG))
      assert.is_nil(rawget(_G, "WORKER_STATE"))
    end)

    -- a child process: no sanitizer run (sh cannot start with one preloaded)
    it("with work queued keeps rt.run (and the process) alive; idle, it does not #nosan", function()
      local out, ok = child([[
        local rt = require("duet").threads
        local log = rt.Queue()
        rt.run(function()
          local ex = rt.Executor{max_workers = 2}     -- never shut down
          for i = 1, 4 do ex:submit(function() rt.sleep(0.02); log:put(i) end) end
        end)
        print("after run", log:size())
        rt.run(function()
          local ex = rt.Executor{max_workers = 2}
          ex:submit(function() end):result()          -- idle from here on
        end)
        print("idle run returned")
      ]], 10)
      assert.is_true(ok, out)
      assert.matches("after run%s4", out)
      assert.matches("idle run returned", out)
    end)
  end)
end)
