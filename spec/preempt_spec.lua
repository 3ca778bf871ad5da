-- Seeded runs of the coroutines runtime: preemption from a seed, the
-- virtual clock, exact replay, and duet.explore.
-- busted looks a spec file's globals up on first use, which costs that
-- first run more instructions than the next: the ones used inside runs are
-- locals, so that every run of a seed runs the same code.
local ipairs, table, math, setmetatable, coroutine, assert, error, pcall =
  ipairs, table, math, setmetatable, coroutine, assert, error, pcall
local tonumber, debug = tonumber, debug
local duet = require "duet"
local H = require "helpers"
local rt = duet.runtime("coroutines")

-- Put options in force for one case, then back to the plain runtime.
local function with(options, fn)
  duet.runtime("coroutines", options)
  local ok, err = pcall(fn)
  duet.runtime("coroutines", {})
  if not ok then error(err, 0) end
end

-- The unlocked cutlery: bots move knives between a kitchen and their own
-- counts with unprotected read-modify-writes; returns the kitchen's counts
-- at the end (100 each when no change is lost) and the bots' order of work.
local function cutlery(bots, tables, lock)
  local kitchen = { knives = 100, forks = 100 }
  local log = {}
  local function add(c, k, f)
    c.knives = c.knives + k
    c.forks = c.forks + f
  end
  local function change(c, k, f)
    if lock then lock:with(add, c, k, f) else add(c, k, f) end
  end
  local threads = {}
  for b = 1, bots do
    local mine = { knives = 0, forks = 0 }
    threads[b] = rt.spawn(function()
      for _ = 1, tables do
        change(kitchen, -4, -4); change(mine, 4, 4)
        change(mine, -4, -4); change(kitchen, 4, 4)
      end
      log[#log + 1] = b
    end)
  end
  for _, th in ipairs(threads) do th:join() end
  return ("knives=%d forks=%d order=%s"):format(kitchen.knives, kitchen.forks,
    table.concat(log, ","))
end

-- The traced places as one string.
local function trace_text()
  local out = {}
  for i, e in ipairs(rt.trace()) do out[i] = e.task .. "@" .. e.where end
  return table.concat(out, ";")
end

describe("coroutines runtime, seeded", function()
  describe("replay", function()
    it("gives the same output and trace for the same seed, 10 runs", function()
      local first_out, first_trace
      for _ = 1, 10 do
        with({ preempt = { seed = 7 } }, function()
          local out = rt.run(cutlery, 5, 50)
          local tr = trace_text()
          assert.is_true(#rt.trace() > 0)
          if first_out == nil then first_out, first_trace = out, tr end
          assert.are.equal(first_out, out)
          assert.are.equal(first_trace, tr)
        end)
      end
    end)

    it("replays in every rt.run under the same options, not only the first, clock from 0", function()
      with({ preempt = { seed = 7 } }, function()
        local function run()
          return rt.run(function()
            local out = cutlery(5, 50)
            rt.sleep(2)
            return out, rt.now()
          end)
        end
        local out, clock = run()
        local tr = trace_text()
        assert.are.equal(2, clock)
        for _ = 1, 3 do
          assert.are.same({ out, clock }, { run() })
          assert.are.equal(tr, trace_text())
        end
      end)
    end)

    it("wakes the tasks in rt.wait and rt.as_completed in the same order in every process #notsan", function()
      local code = [[
        local duet = require "duet"
        local rt = duet.runtime("coroutines", { preempt = { seed = 3 } })
        print(rt.run(function()
          local f, log, ths = rt.Future(), {}, {}
          for i = 1, 12 do
            ths[i] = rt.spawn(function()
              if i % 2 == 0 then rt.wait({ f }, { return_when = "FIRST_COMPLETED" })
              else for _ in rt.as_completed({ f }) do end end
              log[#log + 1] = i
            end)
          end
          rt.sleep(0.1)
          f:set_result(1)
          for i = 1, 12 do ths[i]:join() end
          return table.concat(log, ",")
        end))
      ]]
      local first = H.subprocess(code)
      assert.matches("^%d+,", first)
      for _ = 1, 4 do assert.are.equal(first, (H.subprocess(code))) end
    end)

    it("shows at least two outcomes of the unlocked cutlery over 20 seeds", function()
      local seen, n = {}, 0
      for seed = 1, 20 do
        with({ preempt = { seed = seed } }, function()
          local out = rt.run(cutlery, 5, 50):match("^[^o]*")
          if not seen[out] then seen[out], n = true, n + 1 end
        end)
      end
      assert.is_true(n >= 2, "outcomes: " .. n)
    end)

    it("keeps the counts of the locked cutlery right under every seed", function()
      for seed = 1, 20 do
        with({ preempt = { seed = seed } }, function()
          local out = rt.run(function() return cutlery(5, 50, rt.Lock()) end)
          assert.matches("^knives=100 forks=100 ", out)
        end)
      end
    end)

    it("neither moves nor reads the user's math.random", function()
      math.randomseed(99)
      local expect = { math.random(1000), math.random(1000), math.random(1000) }
      math.randomseed(99)
      local got = {}
      with({ preempt = { seed = 3, min = 1, max = 5 } }, function()
        rt.run(function()
          local t = rt.spawn(function() for _ = 1, 200 do local _ = {} end end)
          got[1] = math.random(1000)
          t:join()
          got[2] = math.random(1000)
        end)
      end)
      got[3] = math.random(1000)
      assert.are.same(expect, got)
    end)
  end)

  describe("preemption", function()
    it("is off by default: a task's coroutine has no hook", function()
      local hook = rt.run(function() return (debug.gethook(coroutine.running())) end)
      assert.is_nil(hook)
    end)

    it("puts a hook on each task's coroutine when on", function()
      with({ preempt = { seed = 1 } }, function()
        local hook = rt.run(function() return (debug.gethook(coroutine.running())) end)
        assert.is_not_nil(hook)
      end)
    end)

    it("switches tasks in plain Lua code that never blocks", function()
      with({ preempt = { seed = 1, min = 10, max = 10 } }, function()
        local order = rt.run(function()
          local log = {}
          local function count(name)
            for i = 1, 200 do if i % 50 == 0 then log[#log + 1] = name end end
          end
          local a, b = rt.spawn(count, "a"), rt.spawn(count, "b")
          a:join(); b:join()
          return table.concat(log)
        end)
        assert.are_not.equal("aaaabbbb", order)
        assert.are_not.equal("bbbbaaaa", order)
      end)
    end)

    it("never lands inside a non-yieldable C call or inside duet's code", function()
      with({ preempt = { seed = 5, min = 1, max = 1 } }, function()
        rt.run(function()
          local tasks = {}
          for k = 1, 3 do
            tasks[k] = rt.spawn(function()
              local list = {}
              for i = 1, 200 do list[i] = (i * 7919) % 211 end
              table.sort(list, function(x, y) return x > y end)
              local s = ("abcdefghij"):rep(20):gsub(".", function(c) return c:upper() end)
              local mt = setmetatable({}, { __index = function(_, key) return key * 2 end })
              local t = {}
              for i = 1, 100 do t[i] = i end
              table.sort(t, function(x, y) return mt[x] > mt[y] end)
              local q = rt.Queue()
              for i = 1, 50 do q:put(i) end
              for _ = 1, 50 do q:get() end
              return #s + t[1]
            end)
          end
          for _, th in ipairs(tasks) do assert.are.same({ true, 300 }, { th:join() }) end
        end)
        local trace = rt.trace()
        assert.is_true(#trace > 0)
        for _, e in ipairs(trace) do
          assert.is_nil(e.where:find("duet/"), e.where)
        end
      end)
    end)

    it("leaves a coroutine a task creates alone", function()
      with({ preempt = { seed = 2, min = 1, max = 3 } }, function()
        local got = rt.run(function()
          local other = rt.spawn(function() for _ = 1, 100 do local _ = {} end end)
          local gen = coroutine.wrap(function()
            for i = 1, 100 do coroutine.yield(i) end
          end)
          local sum = 0
          for _ = 1, 100 do sum = sum + gen() end
          other:join()
          return sum
        end)
        assert.are.equal(5050, got)
      end)
    end)

    it("keeps SharedTable:update atomic", function()
      with({ preempt = { seed = 4, min = 1, max = 2 } }, function()
        local n = rt.run(function()
          local t = rt.SharedTable{ n = 0 }
          local ths = {}
          for k = 1, 4 do
            ths[k] = rt.spawn(function()
              for _ = 1, 50 do t:update("n", function(v) local w = v; for _ = 1, 5 do w = w + 0 end; return w + 1 end) end
            end)
          end
          for _, th in ipairs(ths) do th:join() end
          return t.n
        end)
        assert.are.equal(200, n)
      end)
    end)
  end)

  describe("virtual clock", function()
    it("finishes an hour's sleep at once, at exactly an hour", function()
      with({ clock = "virtual" }, function()
        local t0, t1 = rt.run(function()
          local t0 = rt.now()
          rt.sleep(3600)
          return t0, rt.now()
        end)
        assert.are.equal(3600, t1 - t0)
      end)
    end)

    it("times a timeout out on virtual time", function()
      with({ preempt = { seed = 1 } }, function()
        local ok, dt = rt.run(function()
          local q, t0 = rt.Queue(), rt.now()
          local _, why = q:get(600)
          return why, rt.now() - t0
        end)
        assert.are.equal("empty", ok)
        assert.are.equal(600, dt)
      end)
    end)

    it("refills a TokenBucket on virtual time", function()
      with({ clock = "virtual" }, function()
        local got = rt.run(function()
          local tb = rt.TokenBucket{ capacity = 10, rate = 1 }
          assert.is_true(tb:take(10))
          assert.is_false(tb:take(1))
          rt.sleep(5)
          return tb:tokens()
        end)
        assert.are.equal(5, got)
      end)
    end)

    it("is the default with preempt and can be turned off", function()
      with({ preempt = { seed = 1 }, clock = "real" }, function()
        assert.are.equal(duet.now, rt.now)
      end)
      with({ preempt = { seed = 1 } }, function()
        assert.are_not.equal(duet.now, rt.now)
      end)
      assert.are.equal(duet.now, rt.now)
    end)
  end)

  describe("options", function()
    local function fails(options, msg)
      assert.has_error(function() duet.runtime("coroutines", options) end, msg)
      assert.are.equal(duet.now, rt.now)   -- nothing changed
    end
    it("refuse a non-integer seed", function()
      fails({ preempt = { seed = 1.5 } },
        "bad argument #2 to 'runtime' (field 'preempt.seed': integer expected, got non-integer number)")
      fails({ preempt = { seed = "x" } },
        "bad argument #2 to 'runtime' (field 'preempt.seed': integer expected, got string)")
      fails({ preempt = {} },
        "bad argument #2 to 'runtime' (field 'preempt.seed': integer expected, got no value)")
    end)
    it("refuse min > max and counts below 1", function()
      fails({ preempt = { seed = 1, min = 10, max = 5 } },
        "bad argument #2 to 'runtime' (field 'preempt': min (10) is greater than max (5))")
      fails({ preempt = { seed = 1, min = 0 } },
        "bad argument #2 to 'runtime' (field 'preempt.min': must be at least 1)")
    end)
    it("refuse an unknown clock or option", function()
      fails({ clock = "sundial" },
        "bad argument #2 to 'runtime' (field 'clock': invalid option 'sundial')")
      fails({ preemt = {} }, "bad argument #2 to 'runtime' (unknown option 'preemt')")
      fails(5, "bad argument #2 to 'runtime' (table expected, got number)")
    end)
    it("cannot change inside rt.run", function()
      local ok, err = pcall(rt.run, function()
        duet.runtime("coroutines", { clock = "virtual" })
      end)
      assert.is_false(ok)
      assert.matches("cannot change the runtime's options inside rt.run", err)
    end)
  end)

  describe("duet.explore()", function()
    -- Two tasks each add 1 to a count 20 times with a read and a write.
    local function racy(rt_)
      local t = { n = 0 }
      local function bump()
        for _ = 1, 20 do
          local v = t.n
          t.n = v + 1
        end
      end
      local a, b = rt_.spawn(bump), rt_.spawn(bump)
      a:join(); b:join()
      assert(t.n == 40, "lost updates: n = " .. t.n)
    end

    it("finds an unlocked read-modify-write race and names its seed", function()
      local ok, err = pcall(duet.explore, racy, { runs = 100 })
      assert.is_false(ok)
      local seed = tonumber(err:match("seed (%d+) failed"))
      assert.is_not_nil(seed)
      assert.matches("replay it with DUET_SEED=" .. seed, err, 1, true)
      assert.matches("lost updates", err)
      assert.matches("Thread%-%d+ at .-preempt_spec%.lua:%d+", err)
      -- the seed alone replays the same failure, trace and all
      local ok2, err2 = pcall(duet.explore, racy, { runs = 1, seed = seed })
      assert.is_false(ok2)
      assert.are.equal(err:gsub("%(run %d+ of %d+%)", ""), (err2:gsub("%(run %d+ of %d+%)", "")))
      assert.are.equal(duet.now, rt.now)   -- the options are put back
    end)

    it("passes 200 runs of the locked version", function()
      local runs = duet.explore(function(rt_)
        local t, lock = { n = 0 }, rt_.Lock()
        local function bump()
          for _ = 1, 20 do
            lock:with(function() local v = t.n; t.n = v + 1 end)
          end
        end
        local a, b = rt_.spawn(bump), rt_.spawn(bump)
        a:join(); b:join()
        assert(t.n == 40, "lost updates: n = " .. t.n)
      end, { runs = 200 })
      assert.are.equal(200, runs)
    end)

    it("finds a lock-order deadlock", function()
      local ok, err = pcall(duet.explore, function(rt_)
        local a, b = rt_.Lock(), rt_.Lock()
        local function take(first, second)
          for _ = 1, 20 do
            first:acquire()
            local x = 0
            for i = 1, 10 do x = x + i end
            second:acquire(); second:release(); first:release()
          end
        end
        local t1, t2 = rt_.spawn(take, a, b), rt_.spawn(take, b, a)
        t1:join(); t2:join()
      end)
      assert.is_false(ok)
      assert.matches("seed %d+ failed", err)
      assert.matches("deadlock: 3 task%(s%) blocked forever", err)
    end)

    it("keeps the last `trace` preemptions", function()
      local _, err = pcall(duet.explore, function()
        for _ = 1, 1000 do local _ = {} end
        error("boom")
      end, { preempt = { min = 5, max = 5, trace = 3 } })
      assert.matches("the last 3 of %d+ preemption", err)
    end)

    it("points a failed seed's error at the line that called explore", function()
      local line = debug.getinfo(1, "l").currentline
      local _, err = pcall(function() duet.explore(function() error("boom") end, { runs = 2 }) end)
      assert.matches("^spec/preempt_spec%.lua:" .. (line + 1) .. ": duet%.explore: seed %d+ failed", err)
    end)

    it("refuses bad arguments", function()
      assert.has_error(function() duet.explore(5) end,
        "bad argument #1 to 'explore' (function expected, got number)")
      assert.has_error(function() duet.explore(function() end, { runs = 0 }) end,
        "bad argument #2 to 'explore' (field 'runs': must be at least 1)")
      assert.has_error(function() duet.explore(function() end, { seed = 0.5 }) end,
        "bad argument #2 to 'explore' (field 'seed': integer expected, got non-integer number)")
      assert.has_error(function() duet.explore(function() end, { preempt = { seed = 3 } }) end,
        "bad argument #2 to 'explore' (field 'preempt.seed': explore draws the seeds (give 'seed', the first))")
    end)
  end)
end)
