-- The `make bench` driver (bench/harness.lua, bench/run.lua): parsing,
-- medians, n/a for what fails, the table. Never asserts a timing.
package.path = "./bench/?.lua;" .. package.path
local harness = require "harness"

local function by_key(list)
  local t = {}
  for _, x in ipairs(list) do t[x.key] = x end
  return t
end

-- A fake runner: `script(cmd, run)` gives stdout, stderr, how, code.
local function fake_runner(script)
  local calls = {}
  local runs = {}
  return function(cmd, timeout)
    runs[cmd] = (runs[cmd] or 0) + 1
    calls[#calls + 1] = { cmd = cmd, timeout = timeout }
    return script(cmd, runs[cmd])
  end, calls
end

local META = {
  date = "2026-01-02 03:04 UTC", machine = "Test CPU, Linux", nproc = "2",
  loadavg = "0.10 0.20 0.30", lua = "Lua 5.4.4", python = "Python 3.11.7", runs = 3,
}

-- Lanes is never "installed" here, cqueues and luv always: the
-- specs do not depend on what this machine has.
local function fake_available(_, mod) return mod == "cqueues" or mod == "luv" end

local OPTS = { runs = 3, budget = 1000, job_timeout = 40, lua = "lua5.4",
  python = "python3", bench_dir = "bench", available = fake_available }

local function row(id)
  for _, r in ipairs(harness.rows) do if r.id == id then return r end end
  error("no row " .. id)
end

-- duet's and Python's columns only (the Lua peers have tests of their own).
local PYCOLS = {}
for _, col in ipairs(harness.columns) do
  if col.lang ~= "luapeer" then PYCOLS[#PYCOLS + 1] = col end
end

local function with_opts(extra)
  local o = {}
  for k, v in pairs(OPTS) do o[k] = v end
  for k, v in pairs(extra) do o[k] = v end
  return o
end

describe("bench harness", function()
  describe("parse()", function()
    it("reads RESULT lines and ignores everything else", function()
      local got = harness.parse(table.concat({
        "hello",
        "RESULT B1.unbounded rate 3.5e+06 items/s",
        "RESULT B7.scaling t1 0.5 s",
        "RESULT B7.scaling t2 0.25 s",
        "RESULT broken",
        "RESULT B5.incr total nan s",
        "RESULT B5.incr total2 inf s",
      }, "\n"))
      assert.same({
        ["B1.unbounded"] = { rate = 3.5e6 },
        ["B7.scaling"] = { t1 = 0.5, t2 = 0.25 },
      }, got)
    end)

    it("gives an empty table for no output", function()
      assert.same({}, harness.parse(nil))
      assert.same({}, harness.parse(""))
    end)
  end)

  describe("median()", function()
    it("takes the middle of an odd count and the mean of the two middles of an even one", function()
      assert.equal(2, harness.median({ 3, 1, 2 }))
      assert.equal(2.5, harness.median({ 4, 1, 2, 3 }))
      assert.equal(7, harness.median({ 7 }))
      assert.is_nil(harness.median({}))
    end)

    it("leaves its argument unsorted", function()
      local l = { 3, 1, 2 }
      harness.median(l)
      assert.same({ 3, 1, 2 }, l)
    end)
  end)

  describe("fmt()", function()
    it("shows three significant digits", function()
      assert.equal("3.50", harness.fmt(3.5))
      assert.equal("123", harness.fmt(123.4))
      assert.equal("12346", harness.fmt(12345.6))
      assert.equal("0.0123", harness.fmt(0.012345))
      assert.equal("1.23e+07", harness.fmt(12345678))
      assert.equal("0", harness.fmt(0))
    end)
  end)

  describe("error_reason()", function()
    it("takes the first line of the ERROR message", function()
      assert.equal("bench/b1_queue.lua:33: attempt to call a nil value (field 'Queue')",
        harness.error_reason("ERROR B1.unbounded bench/b1_queue.lua:33: attempt to call a nil value"
          .. " (field 'Queue')\nstack traceback:\n\t[C]: in ?\n"))
    end)

    it("falls back to the last line of stderr and drops a trailing colon", function()
      assert.equal("module 'duet.coroutines' not found",
        harness.error_reason("lua5.4: oops\nmodule 'duet.coroutines' not found:\n\n"))
      assert.is_nil(harness.error_reason(""))
    end)

    it("keeps a long message short", function()
      assert.equal(110, #harness.error_reason("ERROR X " .. string.rep("x", 300)))
    end)
  end)

  describe("status_reason()", function()
    it("names timeouts and signals", function()
      assert.equal("timed out after 40 s", harness.status_reason("exit", 124, 40))
      assert.equal("timed out after 40 s", harness.status_reason("exit", 137, 40))
      assert.equal("killed by signal 11", harness.status_reason("exit", 139, 40))
      assert.equal("killed by signal 6", harness.status_reason("signal", 6, 40))
      assert.equal("exit status 1", harness.status_reason("exit", 1, 40))
    end)
  end)

  describe("jobs() and command()", function()
    it("makes one job per case and applicable column, shared by rows of one case", function()
      local jobs = by_key(harness.jobs(harness.rows, harness.columns))
      assert.truthy(jobs["B7.scaling@threads"])
      assert.truthy(jobs["B3.tasks100k@coroutines"])
      assert.is_nil(jobs["B3.tasks100k@threads"])
      assert.is_nil(jobs["B7.plain@asyncio"])
      assert.is_nil(jobs["B7.plain@pythreads"])
      local n = 0
      for k in pairs(jobs) do if k:match("^B7%.scaling@") then n = n + 1 end end
      assert.equal(3, n) -- asyncio has no B7
    end)

    it("runs duet scripts per runtime and peers per flavour, one case each", function()
      local jobs = by_key(harness.jobs(harness.rows, harness.columns))
      assert.equal("'lua5.4' 'bench/b1_queue.lua' 'coroutines' '--case' 'unbounded'",
        harness.command(jobs["B1.unbounded@coroutines"], OPTS))
      assert.equal("'python3' '-B' 'bench/peers/b1_queue_asyncio.py' '--case' 'batch' '--quick'",
        harness.command(jobs["B1.batch@asyncio"], with_opts{ quick = true }))
    end)

    it("has a script and a peer for every job", function()
      for _, job in ipairs(harness.jobs(harness.rows, harness.columns)) do
        local lang = job.column.lang
        local path = lang == "lua" and ("bench/" .. job.script .. ".lua")
          or ("bench/peers/" .. job.script .. job.column.suffix .. (lang == "luapeer" and ".lua" or ".py"))
        local f = io.open(path, "r")
        assert(f, "missing " .. path)
        local src = f:read("a")
        f:close()
        local case = job.case:match("%.(.+)$")
        assert(src:find('"' .. case .. '"', 1, true) or src:find(case .. " =", 1, true),
          path .. " has no case " .. case)
      end
    end)
  end)

  describe("collect() and render()", function()
    local rows = {
      row("B1.unbounded"), -- higher is better
      row("B3.spawn1k"),   -- lower is better
      row("B3.tasks100k"), -- coroutines and asyncio only
    }
    local jobs = harness.jobs(rows, PYCOLS)

    local function script(cmd, run)
      if cmd:find("'threads'", 1, true) then
        return "", "ERROR B1.unbounded bench/b1_queue.lua:33: attempt to call a nil value (field 'Queue')\n"
          .. "stack traceback:\n", "exit", 1
      elseif cmd:find("'coroutines'", 1, true) then
        if cmd:find("unbounded", 1, true) then return "", "", "exit", 124 end
        local case = cmd:match("'%-%-case' '(%w+)'")
        return ("RESULT B3.%s per_spawn %d us\n"):format(case, ({ 2, 1, 3 })[run]), "", "exit", 0
      elseif cmd:find("_threads.py", 1, true) then
        return ("RESULT B1.unbounded rate %d items/s\nRESULT B3.spawn1k per_spawn %d us\n")
          :format(({ 100000, 300000, 200000 })[run], ({ 100, 120, 80 })[run]), "", "exit", 0
      else
        local case = cmd:match("'%-%-case' '(%w+)'")
        if case == "unbounded" then
          return ("RESULT B1.unbounded rate %d items/s\n"):format(({ 900000, 800000, 1000000 })[run]),
            "", "exit", 0
        end
        return ("RESULT B3.%s per_spawn %d us\n"):format(case, ({ 90, 80, 100 })[run]), "", "exit", 0
      end
    end

    it("takes medians, runs a failing job once, and never makes up a figure", function()
      local runner, calls = fake_runner(script)
      local results = harness.collect(jobs, with_opts{ runner = runner })
      local r = results["B1.unbounded@threads"]
      assert.same({}, r.values)
      assert.matches("field 'Queue'", r.reason)
      assert.equal("timed out after 40 s", results["B1.unbounded@coroutines"].reason)
      assert.same({ 100000, 300000, 200000 }, results["B1.unbounded@pythreads"].values.rate)
      assert.equal(3, results["B3.spawn1k@coroutines"].runs)
      local per = {}
      for _, c in ipairs(calls) do per[c.cmd] = (per[c.cmd] or 0) + 1 end
      for cmd, n in pairs(per) do
        local failing = cmd:find("'threads'", 1, true) or
          (cmd:find("'coroutines'", 1, true) and cmd:find("unbounded", 1, true))
        assert.equal(failing and 1 or 3, n, cmd)
      end
    end)

    it("prints one table with the machine, n/a, -, medians and ratios", function()
      local runner = fake_runner(script)
      local results = harness.collect(jobs, with_opts{ runner = runner })
      local out = harness.render(results, META, rows, PYCOLS)
      assert.matches("2026%-01%-02 03:04 UTC", out)
      assert.matches("2 cores %(nproc%); load average at start: 0.10 0.20 0.30", out)
      assert.matches("median of 3 runs", out)
      META.loadavg_end = "4.00 5.00 6.00"
      assert.matches("load average at start: 0.10 0.20 0.30; at the end: 4.00 5.00 6.00",
        harness.render(results, META, rows, PYCOLS))
      META.loadavg_end = nil
      local lines = {}
      for line in out:gmatch("[^\n]+") do
        if line:match("^| B") then
          local cells = {}
          for c in line:gmatch("|%s*([^|]-)%s*%f[|]") do cells[#cells + 1] = c end
          lines[#lines + 1] = cells
        end
      end
      assert.equal(3, #lines)
      -- workload, unit, better, threads, coroutines, Python threads, asyncio, ratio
      assert.same({ "M items/s", "higher", "n/a", "n/a", "0.200", "0.900" }, { table.unpack(lines[1], 2, 7) })
      assert.equal("n/a", lines[1][8])
      assert.same({ "lower", "n/a", "2.00", "100", "90.0", "0.0222 (coroutines / asyncio)" },
        { table.unpack(lines[2], 3, 8) })
      assert.same({ "—", "2.00", "—", "90.0" }, { table.unpack(lines[3], 4, 7) })
      -- no Lua peer column: the Lua ratio does not apply
      assert.equal("—", lines[2][9])
      assert.matches("duet threads, B1.unbounded, B3.spawn1k: bench/b1_queue.lua:33: attempt to call", out)
      assert.matches("duet coroutines, B1.unbounded: timed out after 40 s", out)
    end)

    it("stops starting jobs when the time budget is spent", function()
      local t = 0
      local runner = fake_runner(function(cmd, run)
        t = t + 10
        return script(cmd, run)
      end)
      local results = harness.collect(jobs, with_opts{ runner = runner, budget = 35, clock = function() return t end })
      local ran, skipped = 0, 0
      for _, r in pairs(results) do
        if r.reason == "not run: time budget spent" then skipped = skipped + 1 end
        if r.runs > 0 then ran = ran + 1 end
      end
      assert.equal(2, ran)
      assert.equal(#jobs - 4, skipped) -- 4 started: 2 gave figures, 2 failed
      local out = harness.render(results, META, rows, PYCOLS)
      assert.matches("not run: time budget spent", out)
    end)

    it("runs the cheapest jobs first after run 1, so a spent budget cuts the slow ones", function()
      local t = 0
      local seen = {}
      local runner = fake_runner(function(cmd, run)
        -- Python threads jobs are slow (10 s), the rest quick (1 s).
        t = t + (cmd:find("_threads.py", 1, true) and 10 or 1)
        if run == 2 then seen[#seen + 1] = cmd end
        return script(cmd, run)
      end)
      local results = harness.collect(jobs, with_opts{ runner = runner, clock = function() return t end })
      assert.equal(3, results["B1.unbounded@asyncio"].runs)
      assert.is_nil(seen[#seen]:find("_asyncio", 1, true))
      assert.truthy(seen[#seen]:find("_threads.py", 1, true))
      assert.truthy(seen[#seen - 1]:find("_threads.py", 1, true))
      -- Run 1 takes 28 s; 21 s more give the quick jobs all their runs,
      -- one slow job its 3 and the other none beyond its first.
      t = 0
      results = harness.collect(jobs, with_opts{ runner = fake_runner(function(cmd, run)
        t = t + (cmd:find("_threads.py", 1, true) and 10 or 1)
        return script(cmd, run)
      end), budget = 49, clock = function() return t end })
      for key, r in pairs(results) do
        if not key:find("pythreads", 1, true) and (r.values.rate or r.values.per_spawn) then
          assert.equal(3, r.runs, key)
        end
      end
      assert.equal(3, results["B1.unbounded@pythreads"].runs)
      assert.equal(1, results["B3.spawn1k@pythreads"].runs)
      assert.equal("fewer runs: time budget spent", results["B3.spawn1k@pythreads"].reason)
    end)

    it("marks a figure from fewer runs than asked", function()
      local runner = fake_runner(function(cmd, run)
        if run == 2 and cmd:find("_asyncio", 1, true) then return "", "boom\n", "exit", 1 end
        return script(cmd, run)
      end)
      local results = harness.collect(jobs, with_opts{ runner = runner })
      local out = harness.render(results, META, rows, PYCOLS)
      assert.matches("| +90%.0%* |", out)
      assert.matches("asyncio, B1.unbounded, B3.spawn1k, B3.tasks100k: exit status 1: boom", out)
    end)
  end)

  describe("Lua peers", function()
    local cols = by_key(harness.columns)

    it("cover the rows issue 16 asks for, and only rows with an equivalent", function()
      for _, id in ipairs({ "B2.tables", "B3.spawn1k", "B3.spawn10k", "B3.tasks100k", "B8.idle1k",
        "B8.idle10k", "B10.c10", "B10.c100", "B10.c1000" }) do
        assert.is_true(harness.applies(row(id), cols.cqueues), "cqueues " .. id)
      end
      for _, id in ipairs({ "B3.spawn1k", "B3.spawn10k", "B4.tasks", "B8.idle1k", "B8.idle10k" }) do
        assert.is_true(harness.applies(row(id), cols.luv), "luv " .. id)
      end
      assert.is_false(harness.applies(row("B4.tasks"), cols.cqueues))
      assert.is_false(harness.applies(row("B2.tables"), cols.luv))
      assert.is_false(harness.applies(row("B10.c10"), cols.luv))
      assert.is_false(harness.applies(row("B5.uncontended"), cols.cqueues))
      for _, id in ipairs({ "B2.tables", "B3.spawn1k", "B3.spawn10k", "B4.tasks", "B5.uncontended",
        "B8.idle1k", "B8.idle10k", "B8.sleep10k" }) do
        assert.is_true(harness.applies(row(id), cols.lanes), "Lanes " .. id)
      end
      assert.is_false(harness.applies(row("B10.c10"), cols.lanes))
      for _, c in ipairs({ cols.cqueues, cols.luv, cols.lanes }) do
        assert.equal("luapeer", c.lang)
        assert.truthy(c.module)
      end
    end)

    it("run as lua5.4 bench/peers/<script>_<peer>.lua --case NAME", function()
      local jobs = by_key(harness.jobs(harness.rows, harness.columns))
      assert.equal("'lua5.4' 'bench/peers/b3_spawn_cqueues.lua' '--case' 'spawn1k'",
        harness.command(jobs["B3.spawn1k@cqueues"], OPTS))
      assert.equal("'lua5.4' 'bench/peers/b4_executor_luv.lua' '--case' 'tasks' '--quick'",
        harness.command(jobs["B4.tasks@luv"], with_opts{ quick = true }))
      assert.is_nil(jobs["B4.tasks@cqueues"])
    end)

    it("never run a peer whose module is missing, show it not installed, and get their own ratio", function()
      local rows = { row("B3.spawn1k"), row("B2.tables"), row("B5.uncontended") }
      local runner, calls = fake_runner(function(cmd, run)
        local case = cmd:match("'%-%-case' '(%w+)'")
        local v
        if cmd:find("_cqueues.lua", 1, true) then v = ({ 2, 4, 3 })[run]
        elseif cmd:find("_luv.lua", 1, true) then v = 200
        elseif cmd:find("'coroutines'", 1, true) then v = 6
        else v = 100 end
        local metric = ({ spawn1k = "per_spawn", tables = "rate", uncontended = "per_pair" })[case]
        return ("RESULT %s %s %d x\n"):format(cmd:find("spawn", 1, true) and "B3." .. case
          or cmd:find("messages", 1, true) and "B2." .. case or "B5." .. case, metric, v), "", "exit", 0
      end)
      local jobs = harness.jobs(rows, harness.columns)
      local results = harness.collect(jobs, with_opts{ runner = runner })
      for _, c in ipairs(calls) do
        assert.is_nil(c.cmd:find("_lanes", 1, true), c.cmd)
      end
      assert.is_true(results["B3.spawn1k@lanes"].missing)
      assert.same({ 2, 4, 3 }, results["B3.spawn1k@cqueues"].values.per_spawn)
      local out = harness.render(results, META, rows, harness.columns)
      assert.matches("duet / best Lua peer", out)
      local lines = {}
      for line in out:gmatch("[^\n]+") do
        if line:match("^| B") then
          local cells = {}
          for c in line:gmatch("|%s*([^|]-)%s*%f[|]") do cells[#cells + 1] = c end
          lines[#lines + 1] = cells
        end
      end
      -- workload, unit, better, threads, coroutines, Py threads, asyncio,
      -- cqueues, luv, Lanes, duet / best Python, duet / best Lua peer
      assert.same({ "3.00", "200", "n/a (not installed)",
        "0.0600 (coroutines / Py threads)", "2.00 (coroutines / cqueues)" },
        { table.unpack(lines[1], 8, 12) })
      -- B2: cqueues and Lanes (k msgs/s); B5: Lanes only, missing here
      assert.same({ "0.00300", "—", "n/a (not installed)" }, { table.unpack(lines[2], 8, 10) })
      assert.same({ "—", "—", "n/a (not installed)" }, { table.unpack(lines[3], 8, 10) })
      assert.equal("n/a", lines[3][12])   -- its only Lua peer is missing
      assert.matches("Lanes, B3.spawn1k, B2.tables, B5.uncontended: not installed %(lanes%)", out)
    end)
  end)

  describe("bench/run.lua --quick", function()
    it("runs the Lua peers: a figure when the module loads, else n/a (not installed) #notsan", function()
      local log = os.tmpname()
      local p = io.popen("lua5.4 bench/run.lua --quick --only B3.spawn1k --log " .. log .. " 2>/dev/null")
      local out = p:read("a")
      local ok = p:close()
      os.remove(log)
      assert.is_true(ok)
      local line = out:match("\n(| B3 spawn %+ join 1,000[^\n]*)")
      assert.truthy(line, out)
      local cells = {}
      for c in line:gmatch("|%s*([^|]-)%s*%f[|]") do cells[#cells + 1] = c end
      for i, mod in ipairs({ "cqueues", "luv", "lanes" }) do
        if pcall(require, mod) then
          assert.matches("^[%d.]+$", cells[7 + i], mod)
        else
          assert.equal("n/a (not installed)", cells[7 + i], mod)
        end
      end
    end)

    it("runs the real scripts and prints the table, n/a where a runtime lacks the workload #notsan", function()
      local log = os.tmpname()
      local p = io.popen("lua5.4 bench/run.lua --quick --only B5.uncontended --log " .. log .. " 2>/dev/null")
      local out = p:read("a")
      local ok = p:close()
      os.remove(log)
      assert.is_true(ok)
      assert.matches("| workload", out)
      local line = out:match("\n(| B5 lock[^\n]*)")
      assert.truthy(line, out)
      local cells = {}
      for c in line:gmatch("|%s*([^|]-)%s*%f[|]") do cells[#cells + 1] = c end
      for i = 4, 7 do
        assert(cells[i] == "n/a" or cells[i]:match("^[%d.e+-]+%*?$"), "cell " .. i .. ": " .. cells[i])
      end
      -- Python is always there on this project's machines.
      assert.matches("^[%d.]+$", cells[6])
      assert.matches("^[%d.]+$", cells[7])
      -- B5's one Lua peer is Lanes
      assert.equal("—", cells[8])
      assert.equal("—", cells[9])
      if pcall(require, "lanes") then
        assert.matches("^[%d.]+%*?$", cells[10])
      else
        assert.equal("n/a (not installed)", cells[10])
      end
    end)
  end)
end)
