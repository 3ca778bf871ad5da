-- rt.RemoteExecutor and bin/duet-worker (API.md, "Beyond one machine:
-- Redis"), on both runtimes, against the private redis-server that make
-- test starts. Workers are real processes; one is killed with SIGKILL and
-- the server is restarted mid-run, and every result still arrives, once.
-- #notsan throughout: the workers are child processes, started by /bin/sh,
-- which TSan's preload crashes.
local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local duet = require "duet"
local redis = require "duet.redis"
local H = require "helpers"
local R = require "redis_helpers"

local function strip(e) return (tostring(e):gsub("^.-:%d+: ", "", 1)) end

-- The workers started and not stopped yet: a spec that fails before it
-- stops its own leaves them to after_each, which kills them.
local running = {}

-- Start n workers and wait until each says it is serving (a worker still
-- loading when a spec stops it would leave no log line).
local function workers(n, queue, extra)
  local list = {}
  for i = 1, n do
    list[i] = R.start_worker(("--redis %s --queue %s --concurrency 1 %s")
      :format(R.url(), queue, extra or ""))
    running[list[i]] = true
  end
  for i = 1, n do assert.is_true(R.wait_serving(list[i]), "worker " .. i .. " never started") end
  return list
end

local function stop_all(rt, list)
  local logs = {}
  for i, w in ipairs(list) do
    logs[i] = R.stop_worker(rt, w)
    running[w] = nil
  end
  return logs
end

busted.after_each(function()
  for w in pairs(running) do
    R.kill(w.pid, "KILL")
    os.remove(w.log)
    running[w] = nil
  end
end)

-- How many of futs are done.
local function done_count(futs)
  local n = 0
  for i = 1, #futs do if futs[i]:done() then n = n + 1 end end
  return n
end

for _, name in ipairs{ "threads", "coroutines" } do
  local rt = duet.runtime(name)
  describe(name .. ": rt.RemoteExecutor #notsan", function()
    it("runs tasks by name on worker processes and returns their results", function()
      H.run(rt, function()
        local queue = R.unique("ex")
        local ex <close> = rt.RemoteExecutor{ redis = R.url(), queue = queue }
        local ws = workers(2, queue)
        local f = ex:submit("redis_tasks.double", 21)
        assert.equal(42, f:result(H.LONG * 4))
        assert.same({ "b", "a" }, { ex:submit("redis_tasks.pair", "a", "b"):result(H.LONG) })
        assert.same({ n = 3, 2, 4, 6 }, ex:map("redis_tasks.double", { 1, 2, 3 }, H.LONG))
        -- mixed with a local future in rt.wait and rt.as_completed
        local mine = rt.Future()
        local remote = ex:submit("redis_tasks.double", 5)
        mine:set_result("local")
        local done = rt.wait({ mine, remote }, { timeout = H.LONG })
        assert.equal(2, #done)
        local seen = 0
        for fut in rt.as_completed({ remote, mine }, H.LONG) do
          assert.is_true(fut:done())
          seen = seen + 1
        end
        assert.equal(2, seen)
        assert.equal(10, remote:result())
        ex:shutdown()
        local logs = stop_all(rt, ws)
        assert.matches("serving queue " .. queue:gsub("%p", "%%%0"), logs[1])
        assert.matches("stopped %(SIGTERM%)", logs[1])
      end)
    end)

    it("fails a future with the task's error, an unknown module or function", function()
      H.run(rt, function()
        local queue = R.unique("ex")
        local ex <close> = rt.RemoteExecutor{ redis = R.url(), queue = queue }
        local ws = workers(1, queue)
        local cases = {
          { ex:submit("redis_tasks.fail", "it broke"), "it broke" },
          { ex:submit("no_such_module_here.f"), "^cannot load module 'no_such_module_here' for task 'no_such_module_here.f'" },
          { ex:submit("redis_tasks.nothing"), "^module 'redis_tasks' has no function 'nothing'$" },
        }
        for _, c in ipairs(cases) do
          local ok, e = pcall(c[1].result, c[1], H.LONG * 4)
          assert.is_false(ok)
          assert.matches(c[2], tostring(e))
          assert.matches(c[2], tostring(c[1]:exception()))
        end
        local t = ex:submit("redis_tasks.fail_table", 42)
        assert.same({ code = 42 }, t:exception(H.LONG))
        ex:shutdown()
        stop_all(rt, ws)
      end)
    end)

    it("fails a future whose task the server refused, and still shuts down", function()
      H.run(rt, function()
        local queue = R.unique("ex")
        local ex = rt.RemoteExecutor{ redis = R.url(), queue = queue }
        local c = redis.connect(R.url())
        local tasks = "duet:{" .. queue .. "}:tasks"
        c:call("DEL", tasks)
        c:call("SET", tasks, "not a stream")   -- every XADD is refused now
        local fut = ex:submit("redis_tasks.double", 1)
        local err = fut:exception(H.LONG)
        assert.matches("^redis: WRONGTYPE", tostring(err))
        ex:shutdown()   -- waits for no result of the refused task
        c:call("DEL", tasks)
        c:close()
      end)
    end)

    it("refuses bad arguments at the constructor and at submit", function()
      H.run(rt, function()
        local ex = rt.RemoteExecutor{ redis = R.url(), queue = R.unique("ex") }
        for _, case in ipairs{
          { function() return rt.RemoteExecutor{ queue = "q" } end,
            "bad argument #1 to 'RemoteExecutor' (field 'redis': string expected, got no value)" },
          { function() return rt.RemoteExecutor{ redis = "localhost:6379", queue = "q" } end,
            "bad argument #1 to 'RemoteExecutor' (field 'redis': invalid Redis URL 'localhost:6379': expected redis://[user:password@]host[:port][/db])" },
          { function() return rt.RemoteExecutor{ redis = R.url(), queue = "q", max_retries = -1 } end,
            "bad argument #1 to 'RemoteExecutor' (field 'max_retries': non-negative integer expected, got -1)" },
          { function() return ex:submit(function() end) end,
            "bad argument #1 to 'submit' (task name 'module.function' expected, got function)" },
          { function() return ex:submit("nodot") end,
            "bad argument #1 to 'submit' (task name 'module.function' expected, got 'nodot')" },
          { function() return ex:submit("m.f", print) end, "bad argument #2 to 'submit' (...)" },
        } do
          local ok, e = pcall(case[1])
          assert.is_false(ok)
          assert.is_true(H.message_fits(strip(e), case[2]), strip(e))
        end
        ex:shutdown()
        assert.equal("cannot schedule new futures after shutdown",
          strip(select(2, pcall(ex.submit, ex, "m.f"))))
      end)
    end)

    it("lets no reclaim take the tasks a live worker holds in a batch longer than the visibility timeout", function()
      H.run(rt, function()
        local queue = R.unique("ex")
        -- max_retries 0: a task taken from a live worker would fail as lost
        local ex <close> = rt.RemoteExecutor{ redis = R.url(), queue = queue,
          visibility_timeout = 1, max_retries = 0 }
        local futs = {}
        for i = 1, 8 do futs[i] = ex:submit("redis_tasks.slow", i, 0.3) end
        local ws = workers(2, queue)
        local got = {}
        for i = 1, 8 do got[i] = { pcall(futs[i].result, futs[i], H.LONG * 4) } end
        stop_all(rt, ws)   -- before any assert, so that a failure leaves no worker
        for i = 1, 8 do assert.same({ true, i }, got[i]) end
      end)
    end)

    it("sends a task whose worker dies each time to the dead-letter stream", function()
      H.run(rt, function()
        local queue = R.unique("dead")
        local ex <close> = rt.RemoteExecutor{ redis = R.url(), queue = queue,
          visibility_timeout = 0.2, max_retries = 1 }
        local fut = ex:submit("redis_tasks.crash")
        -- delivery 1 kills a worker, delivery 2 (the one retry) another,
        -- and the third worker finds it delivered too often
        local ws = workers(3, queue)
        local ok, e = pcall(fut.result, fut, 60)
        assert.is_false(ok)
        assert.matches("lost: delivered 3 times", tostring(e))
        local c = redis.connect(R.url())
        local dead = c:call("XRANGE", "duet:{" .. queue .. "}:dead", "-", "+")
        assert.equal(1, #dead)
        local f = {}
        for i = 1, #dead[1][2], 2 do f[dead[1][2][i]] = dead[1][2][i + 1] end
        assert.equal("redis_tasks.crash", f.fn)
        assert.matches("lost", f.error)
        c:close()
        ex:shutdown()
        stop_all(rt, ws)
      end)
    end)
  end)
end

describe("rt.RemoteExecutor when things go wrong #notsan", function()
  local rt = duet.threads

  -- it would keep reconnecting for an hour (bench/b11_redis.lua's workers
  -- outlived their server and the run)
  it("a worker that cannot reach its server stops on SIGTERM", function()
    for _, runtime in ipairs { "threads", "coroutines" } do
      local w = R.start_worker(("--redis redis://127.0.0.1:1/0 --queue %s --runtime %s")
        :format(R.unique("gone"), runtime))
      assert.is_true(R.wait_serving(w), "the worker never started")
      R.kill(w.pid, "TERM")
      local gone = R.wait_exit(rt, w, 30)
      local log = R.stop_worker(rt, w)
      assert.is_true(gone, runtime .. ": still running after SIGTERM: " .. log)
      assert.matches("stopped %(SIGTERM%)", log)
    end
  end)

  -- Only giving up on an unreachable server is how a stopped worker ends;
  -- the child has had its SIGTERM before the loop starts, and the loop's
  -- first command then fails on a tasks key that holds a string.
  it("a worker told to stop still reports an error that is not the server's absence", function()
    local queue = R.unique("wrongtype")
    local c = redis.connect(R.url())
    c:call("SET", "duet:{" .. queue .. "}:tasks", "not a stream")
    c:close()
    local ch = R.start_child(([[
      local duet = require "duet"
      local rc = require "duet.redis_core"
      local worker = require "duet.remote.worker"
      rc.catch_stop_signals()
      local f = assert(io.open("/proc/self/stat"))
      local pid = f:read("n")
      f:close()
      os.execute("kill -TERM " .. pid)
      assert(rc.stop_signal() == "SIGTERM", "no stop signal")
      local ok, err = pcall(worker.loop, %q, %q, { rt = duet.threads, consumer = "c" })
      print(ok and "returned" or "raised", err)
      -- and a server it cannot reach ends it, even with no time left to retry
      print(pcall(worker.loop, "redis://127.0.0.1:1/0", "q",
        { rt = duet.threads, consumer = "c", retry_for = 0 }))
    ]]):format(R.url(), queue))
    local code, out = R.wait_child(ch)
    assert.equal(0, code, out)
    assert.matches("^raised%s[^\n]*WRONGTYPE[^\n]*\ntrue\t0\n$", out)
  end)

  it("delivers 10,000 results once each, though a worker is killed with SIGKILL", function()
    local queue = R.unique("kill")
    local ex = rt.RemoteExecutor{ redis = R.url(), queue = queue, visibility_timeout = 0.5 }
    local ws = workers(3, queue, "--batch 20")
    local N = 10000
    local calls = rt.SharedTable()
    local futs = {}
    for i = 1, N do
      local fut = ex:submit("redis_tasks.work", i)
      fut:add_done_callback(function() calls:incr(i) end)
      futs[i] = fut
    end
    H.wait_until(rt, function() return done_count(futs) >= N / 10 end)
    R.kill(ws[1].pid, "KILL")
    assert.is_true(R.wait_exit(rt, ws[1]))
    for i = 1, N do
      assert.equal(2 * i, futs[i]:result(60))
    end
    ex:shutdown()
    for i = 1, N do assert.equal(1, calls[i], "callbacks of task " .. i) end
    stop_all(rt, { ws[2], ws[3] })
  end)

  it("carries on when the Redis server restarts mid-run: nothing is lost", function()
    local queue = R.unique("restart")
    local ex = rt.RemoteExecutor{ redis = R.url(), queue = queue }
    local ws = workers(2, queue, "--batch 20")
    local N = 3000
    local futs = {}
    for i = 1, N do futs[i] = ex:submit("redis_tasks.work", i) end
    H.wait_until(rt, function() return done_count(futs) >= N / 10 end)
    R.restart_server()
    for i = N + 1, N + 500 do futs[i] = ex:submit("redis_tasks.work", i) end
    for i = 1, #futs do
      assert.equal(2 * i, futs[i]:result(60))
    end
    ex:shutdown()
    stop_all(rt, ws)
  end)
end)
