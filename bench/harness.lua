-- harness: the logic of `make bench` (bench/run.lua is its command line).
--
-- Every workload is a case of a script: bench/<script>.lua for duet, run
-- once per runtime, and bench/peers/<script>_threads.py and
-- bench/peers/<script>_asyncio.py for Python. A (script, case, column) is
-- a job; each job runs in its own process under `timeout`, and prints
--
--   RESULT <case> <metric> <value> <unit>
--
-- lines (on stdout) and `ERROR <case> <message>` (on stderr) when it fails.
-- The harness runs every job `runs` times (run 1 of all jobs, then the
-- other runs, cheapest job first), takes the median of each metric, and
-- renders one Markdown table.
-- A job that failed, timed out or was never run shows "n/a" with its reason
-- under the table: never a made-up number.
local M = {}

-- A Lua peer column applies to the cases (RESULT case ids) it lists.
local function set(list)
  local t = {}
  for _, k in ipairs(list) do t[k] = true end
  return t
end
local B3 = { "B3.spawn1k", "B3.spawn10k" }
local B8 = { "B8.idle1k", "B8.idle10k", "B8.sleep10k" }

-- The columns of figures, in table order: duet, Python, then the Lua
-- peers (lang "luapeer": bench/peers/<script><suffix>.lua, run only when
-- `module` loads, else "n/a (not installed)").
M.columns = {
  { key = "threads", title = "duet threads", short = "threads", lang = "lua", runtime = "threads" },
  { key = "coroutines", title = "duet coroutines", short = "coroutines", lang = "lua", runtime = "coroutines" },
  { key = "pythreads", title = "Python threads", short = "Py threads", lang = "py", suffix = "_threads" },
  { key = "asyncio", title = "asyncio", short = "asyncio", lang = "py", suffix = "_asyncio" },
  { key = "cqueues", title = "cqueues", short = "cqueues", lang = "luapeer", suffix = "_cqueues",
    module = "cqueues", cases = set{ "B2.tables", B3[1], B3[2], "B3.tasks100k", B8[1], B8[2], B8[3],
      "B10.c10", "B10.c100", "B10.c1000", "B10.c5000" } },
  { key = "luv", title = "luv", short = "luv", lang = "luapeer", suffix = "_luv",
    module = "luv", cases = set{ B3[1], B3[2], "B4.tasks", B8[1], B8[2], B8[3] } },
  { key = "lanes", title = "Lanes", short = "Lanes", lang = "luapeer", suffix = "_lanes",
    module = "lanes", cases = set{ "B2.tables", B3[1], B3[2], "B4.tasks", "B5.uncontended",
      B8[1], B8[2], B8[3] } },
  -- No effil column: effil builds for Lua 5.1 to 5.3 only (its
  -- src/cpp/utils.h stops at LUA_VERSION_NUM > 503).
}

local ALL = { "threads", "coroutines", "pythreads", "asyncio" }

-- The rows. `case` is the RESULT case id "<B-number>.<case>" of script
-- `script` (its --case argument is the part after the dot); `metric` names
-- the RESULT's metric; a figure is shown as value * scale in `unit`;
-- `better` is "higher", "lower" or nil (informative only, no ratio); `cols`
-- lists the columns where the row applies (the others show "-"). Figures
-- are as measured: nothing is subtracted.
local function def(id, script, case, metric, unit, scale, better, label, cols)
  return { id = id, script = script, case = case, metric = metric, unit = unit,
    scale = scale, better = better, label = label, cols = cols }
end

M.rows = {
  def("B1.unbounded", "b1_queue", "B1.unbounded", "rate", "M items/s", 1e-6, "higher",
    "B1 queue 1M ints, 1 producer -> 1 consumer, unbounded"),
  def("B1.bounded", "b1_queue", "B1.bounded", "rate", "M items/s", 1e-6, "higher",
    "B1 queue 1M ints, 1 pair, maxsize 1000"),
  def("B1.pairs2", "b1_queue", "B1.pairs2", "rate", "M items/s", 1e-6, "higher",
    "B1 queue 1M ints, 2 pairs, maxsize 1000 each"),
  def("B1.pairs4", "b1_queue", "B1.pairs4", "rate", "M items/s", 1e-6, "higher",
    "B1 queue 1M ints, 4 pairs, maxsize 1000 each"),
  def("B1.batch", "b1_queue", "B1.batch", "rate", "M items/s", 1e-6, "higher",
    "B1 queue 1M ints, put_many/get_many of 100"),
  def("B2.tables", "b2_messages", "B2.tables", "rate", "k msgs/s", 1e-3, "higher",
    "B2 200k table messages {id, name, values}"),
  def("B2.floor", "b2_messages", "B2.floor", "rate", "k msgs/s", 1e-3, "higher",
    "B2 the same, through a plain Lua list: no duet, no task (the floor)", { "coroutines" }),
  def("B2.floor_queue", "b2_messages", "B2.floor_queue", "rate", "k msgs/s", 1e-3, "higher",
    "B2 the same, through the least Lua queue class: no duet, no task", { "coroutines" }),
  def("B3.spawn1k", "b3_spawn", "B3.spawn1k", "per_spawn", "us each", 1, "lower",
    "B3 spawn + join 1,000 empty threads/tasks"),
  def("B3.spawn10k", "b3_spawn", "B3.spawn10k", "per_spawn", "us each", 1, "lower",
    "B3 spawn + join 10,000 empty threads/tasks"),
  def("B3.tasks100k", "b3_spawn", "B3.tasks100k", "per_spawn", "us each", 1, "lower",
    "B3 spawn + run 100,000 trivial tasks", { "coroutines", "asyncio" }),
  def("B4.tasks", "b4_executor", "B4.tasks", "per_task", "us/task", 1, "lower",
    "B4 executor 100k tasks x*2, 4 workers"),
  -- ProcessExecutor; the Python column is ProcessPoolExecutor.
  def("B4p.tasks", "bp_process", "BP.tasks", "per_task", "us/task", 1, "lower",
    "B4p process pool 10k tasks x*2, 2 workers (Py: ProcessPoolExecutor)",
    { "threads", "coroutines", "pythreads" }),
  def("B4p.rate", "bp_process", "BP.tasks", "rate", "k tasks/s", 1e-3, "higher",
    "B4p tasks per second", { "threads", "coroutines", "pythreads" }),
  def("B3p.start", "bp_process", "BP.start", "per_start", "ms each", 1, "lower",
    "B3p start a worker process: new pool of 1, one task, shutdown",
    { "threads", "coroutines", "pythreads" }),
  def("B5.uncontended", "b5_lock", "B5.uncontended", "per_pair", "ns/pair", 1, "lower",
    "B5 lock acquire+release, uncontended, 1M"),
  def("B5.incr", "b5_lock", "B5.incr", "total", "s", 1, "lower",
    "B5 2 x 200k locked increments (SharedTable)"),
  def("B6.cutlery", "b6_cutlery", "B6.cutlery", "total", "s", 1, "lower",
    "B6 cutlery, 10 bots x 10k tables, with lock"),
  -- The baseline of "1 duet thread within 3% of plain Lua"; it has no peer.
  def("B7.plain", "b7_cpu", "B7.plain", "t1", "s", 1, "lower",
    "B7 sin sum 20M steps, plain Lua 5.4, no duet", { "threads" }),
  -- asyncio is left out of B7: 2 tasks on one core are plain Python twice.
  def("B7.t1", "b7_cpu", "B7.scaling", "t1", "s", 1, "lower",
    "B7 sin sum 20M steps, 1 thread/task", { "threads", "coroutines", "pythreads" }),
  def("B7.t2", "b7_cpu", "B7.scaling", "t2", "s", 1, "lower",
    "B7 sin sum 20M steps, 2 threads/tasks", { "threads", "coroutines", "pythreads" }),
  def("B7.speedup", "b7_cpu", "B7.scaling", "speedup", "x (t1/t2)", 1, "higher",
    "B7 speedup, 1 -> 2 threads/tasks", { "threads", "coroutines", "pythreads" }),
  def("B7p.t1", "bp_process", "BP.riemann", "t1", "s", 1, "lower",
    "B7p sin sum 20M steps, 1 worker process", { "threads", "coroutines", "pythreads" }),
  def("B7p.t2", "bp_process", "BP.riemann", "t2", "s", 1, "lower",
    "B7p sin sum 20M steps, 2 worker processes", { "threads", "coroutines", "pythreads" }),
  def("B7p.speedup", "bp_process", "BP.riemann", "speedup", "x (t1/t2)", 1, "higher",
    "B7p speedup, 1 -> 2 worker processes", { "threads", "coroutines", "pythreads" }),
  def("B8.idle1k", "b8_memory", "B8.idle1k", "rss_per_thread", "KB RSS each", 1, "lower",
    "B8 1,000 threads/tasks blocked on a queue"),
  def("B8.idle10k", "b8_memory", "B8.idle10k", "rss_per_thread", "KB RSS each", 1, "lower",
    "B8 10,000 threads/tasks blocked on a queue"),
  def("B8.floor_thread", "b8_memory", "B8.floor_thread", "rss_per_thread", "KB RSS each", 1, "lower",
    "B8 floor: 1,000 bare Lua states, each on a pthread, blocked (no duet)", { "threads" }),
  def("B8.floor_task", "b8_memory", "B8.floor_task", "rss_per_thread", "KB RSS each", 1, "lower",
    "B8 floor: 10,000 bare Lua coroutines, each yielded (no duet)", { "coroutines" }),
  def("B8.sleep10k", "b8_memory", "B8.sleep10k", "total", "s", 1, "lower",
    "B8 10,000 threads/tasks each sleep 0.1 s, all done"),
  def("B9.calls", "b9_tokenbucket", "B9.take4", "calls", "M calls/s", 1e-6, "higher",
    "B9 TokenBucket take() from 4 threads/tasks"),
  def("B9.granted", "b9_tokenbucket", "B9.take4", "granted", "k tokens/s", 1e-3, nil,
    "B9 tokens granted (refill 1M/s, capacity 1000)"),
  def("B10.c10", "b10_echo", "B10.c10", "rate", "k msgs/s", 1e-3, "higher",
    "B10 echo, 10 clients x 100 lines, loopback"),
  def("B10.c100", "b10_echo", "B10.c100", "rate", "k msgs/s", 1e-3, "higher",
    "B10 echo, 100 clients x 100 lines"),
  def("B10.c1000", "b10_echo", "B10.c1000", "rate", "k msgs/s", 1e-3, "higher",
    "B10 echo, 1,000 clients x 100 lines"),
  def("B10.c5000", "b10_echo", "B10.c5000", "rate", "k msgs/s", 1e-3, "higher",
    "B10 echo, 5,000 clients x 100 lines", { "coroutines" }),
  def("B10.c10.rss", "b10_echo", "B10.c10", "rss_per_conn", "KB peak RSS/conn", 1, "lower",
    "B10 echo memory, 10 clients"),
  def("B10.c100.rss", "b10_echo", "B10.c100", "rss_per_conn", "KB peak RSS/conn", 1, "lower",
    "B10 echo memory, 100 clients"),
  def("B10.c1000.rss", "b10_echo", "B10.c1000", "rss_per_conn", "KB peak RSS/conn", 1, "lower",
    "B10 echo memory, 1,000 clients"),
  def("B10.c5000.rss", "b10_echo", "B10.c5000", "rss_per_conn", "KB peak RSS/conn", 1, "lower",
    "B10 echo memory, 5,000 clients", { "coroutines" }),
  def("B10.floor", "b10_echo", "B10.floor", "rss_per_conn", "KB peak RSS/conn", 1, "lower",
    "B10 memory floor: 1,000 LuaSocket connections held open (no duet, no task)", { "coroutines" }),
  -- Through a private redis-server; no Python peer (no redis-py here).
  def("B11.w1", "b11_redis", "B11.w1", "rate", "k tasks/s", 1e-3, "higher",
    "B11 RemoteExecutor x*2 via Redis, 1 worker process", { "threads", "coroutines" }),
  def("B11.w2", "b11_redis", "B11.w2", "rate", "k tasks/s", 1e-3, "higher",
    "B11 RemoteExecutor x*2 via Redis, 2 worker processes", { "threads", "coroutines" }),
  def("B11.w4", "b11_redis", "B11.w4", "rate", "k tasks/s", 1e-3, "higher",
    "B11 RemoteExecutor x*2 via Redis, 4 worker processes", { "threads", "coroutines" }),
  def("B11.limit", "b11_redis", "B11.w4", "limit", "k XADD/s", 1e-3, nil,
    "B11 the limit: redis-benchmark XADD, same server, same run", { "threads", "coroutines" }),
  def("B11.of_limit", "b11_redis", "B11.w4", "of_limit", "x limit", 1, nil,
    "B11 4-worker rate / XADD limit", { "threads", "coroutines" }),
  def("B11.take", "b11_redis", "B11.take", "calls", "k calls/s", 1e-3, "higher",
    "B11 Redis TokenBucket take(), 4 threads/tasks", { "threads", "coroutines" }),
}

--- The RESULT lines of a job's stdout: { [case] = { [metric] = value } }.
function M.parse(stdout)
  local out = {}
  for line in (stdout or ""):gmatch("[^\n]+") do
    local case, metric, value = line:match("^RESULT%s+(%S+)%s+(%S+)%s+(%S+)")
    local v = tonumber(value)
    -- inf/nan would be a made-up number (for example a zero elapsed time).
    if case and v and v == v and v ~= math.huge and v ~= -math.huge then
      out[case] = out[case] or {}
      out[case][metric] = v
    end
  end
  return out
end

--- The first line of the first `ERROR <case> <message>` on stderr, or of
--- the last non-empty line of stderr when there is none.
function M.error_reason(stderr)
  stderr = stderr or ""
  local msg = stderr:match("ERROR%s+%S+%s+([^\n]*)")
  if not msg then
    for line in stderr:gmatch("[^\n]+") do
      if line:match("%S") then msg = line end
    end
  end
  if not msg then return nil end
  msg = msg:gsub("^%s+", ""):gsub("[%s:]+$", "")
  -- Paths in tracebacks make the same reason look different; keep it short.
  if #msg > 110 then msg = msg:sub(1, 107) .. "..." end
  return msg
end

--- Why a job failed, from its exit status (as given by io.popen():close()).
function M.status_reason(how, code, timeout, cut_by_budget)
  if how == "exit" and (code == 124 or code == 137) then
    return (cut_by_budget and "cut off by the time budget after %.0f s" or "timed out after %.0f s")
      :format(timeout)
  elseif how == "signal" or (how == "exit" and code > 128) then
    return ("killed by signal %d"):format(how == "signal" and code or code - 128)
  end
  return ("exit status %d"):format(code or -1)
end

--- The median of a list of numbers (nil when empty).
function M.median(list)
  if #list == 0 then return nil end
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

--- A figure with 3 significant digits, without exponent for usual sizes.
function M.fmt(v)
  local a = math.abs(v)
  if a == 0 then return "0" end
  if a >= 1e6 or a < 1e-3 then return ("%.3g"):format(v) end
  local digits = 3 - (math.floor(math.log(a, 10)) + 1)
  if digits < 0 then digits = 0 end
  return ("%." .. digits .. "f"):format(v)
end

local function applies(row, col)
  if col.cases then return col.cases[row.case] == true end
  for _, k in ipairs(row.cols or ALL) do
    if k == col.key then return true end
  end
  return false
end
M.applies = applies

local function job_key(case, col) return case .. "@" .. col.key end

--- The distinct jobs the rows need: { {script=, case=, column=, key=} }.
function M.jobs(rows, columns)
  local list, seen = {}, {}
  for _, r in ipairs(rows) do
    for _, col in ipairs(columns) do
      local key = job_key(r.case, col)
      if applies(r, col) and not seen[key] then
        seen[key] = true
        list[#list + 1] = { script = r.script, case = r.case, column = col, key = key }
      end
    end
  end
  return list
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

--- The shell command of one run of a job (without the timeout).
function M.command(job, opts)
  local col = job.column
  local parts
  if col.lang == "lua" then
    parts = { opts.lua, opts.bench_dir .. "/" .. job.script .. ".lua", col.runtime }
  elseif col.lang == "luapeer" then
    parts = { opts.lua, opts.bench_dir .. "/peers/" .. job.script .. col.suffix .. ".lua" }
  else
    -- -B: no __pycache__ next to the peers.
    parts = { opts.python, "-B", opts.bench_dir .. "/peers/" .. job.script .. col.suffix .. ".py" }
  end
  parts[#parts + 1] = "--case"
  parts[#parts + 1] = job.case:match("%.(.+)$")
  if opts.quick then parts[#parts + 1] = "--quick" end
  for i, p in ipairs(parts) do parts[i] = shell_quote(p) end
  return table.concat(parts, " ")
end

--- Run a shell command with a time limit; returns stdout, stderr, how, code.
function M.run_command(cmd, timeout)
  local errfile = os.tmpname()
  local full = ("timeout -k 3 %d %s 2>%s"):format(math.max(1, math.ceil(timeout)), cmd, shell_quote(errfile))
  local p = assert(io.popen(full, "r"))
  local stdout = p:read("a")
  local _, how, code = p:close()
  local f = io.open(errfile, "r")
  local stderr = f and f:read("a") or ""
  if f then f:close() end
  os.remove(errfile)
  return stdout, stderr, how, code
end

-- The wall clock for the time budget: duet's monotonic clock if it loads.
local okcore, core = pcall(require, "duet.core")
M.clock = okcore and core.now or os.time

--- Whether `lua` can load module `name` (asked once, in a process of its own).
local available_cache = {}
function M.available(lua, name)
  local key = lua .. "\0" .. name
  if available_cache[key] == nil then
    local ok = os.execute(("%s -e %s >/dev/null 2>&1"):format(shell_quote(lua),
      shell_quote(("require(%q)"):format(name))))
    available_cache[key] = ok == true
  end
  return available_cache[key]
end

--- Run every job `opts.runs` times within `opts.budget` seconds: run 1 of
--- every job in table order, then the further runs of one job after the
--- other, cheapest first (by its first run's time), so that a budget spent
--- on a busy machine leaves a few slow jobs short of runs rather than many
--- quick ones.
--- opts: runs, budget, job_timeout, quick, lua, python, bench_dir,
--- runner (default M.run_command), clock (default M.clock), available
--- (default M.available: function(lua, module), for a Lua peer's module;
--- a job whose module is missing is never run), log (nil, or
--- a function given run, job, command, stdout, stderr, how, code, seconds).
--- Returns { [job.key] = { values = {[metric] = {...}}, runs = n, reason = str } }.
function M.collect(jobs, opts)
  local runner = opts.runner or M.run_command
  local clock = opts.clock or M.clock
  local start = clock()
  local results = {}
  local available = opts.available or M.available
  for _, job in ipairs(jobs) do
    local r = { values = {}, runs = 0, failed = false }
    local mod = job.column.module
    if mod and not available(opts.lua, mod) then
      r.failed, r.missing, r.reason = true, true, "not installed (" .. mod .. ")"
    end
    results[job.key] = r
  end

  local function run_once(job, run)
    local r = results[job.key]
    if r.failed then return end
    local remaining = opts.budget - (clock() - start)
    if remaining < 1 then
      r.reason = r.reason or (r.runs == 0 and "not run: time budget spent"
        or "fewer runs: time budget spent")
      r.failed = true
      return
    end
    local timeout = math.min(opts.job_timeout, remaining)
    local cmd = M.command(job, opts)
    local t0 = clock()
    local stdout, stderr, how, code = runner(cmd, timeout)
    local seconds = clock() - t0
    r.seconds = r.seconds or seconds
    if opts.log then opts.log(run, job, cmd, stdout, stderr, how, code, seconds) end
    local got = M.parse(stdout)[job.case] or {}
    for metric, v in pairs(got) do
      r.values[metric] = r.values[metric] or {}
      table.insert(r.values[metric], v)
    end
    if next(got) then r.runs = r.runs + 1 end
    if how == "exit" and code == 0 and next(got) then return end
    -- Not implemented yet, crashed or hung: running it again only spends
    -- the budget. Figures it printed before failing count.
    r.failed = true
    local msg = M.error_reason(stderr)
    if how == "exit" and code == 0 then
      r.reason = "no RESULT line"
    elseif how == "exit" and code < 124 and stderr:match("ERROR%s") then
      r.reason = msg -- the script's own account of what failed
    else
      r.reason = M.status_reason(how, code, timeout, timeout < opts.job_timeout)
        .. (msg and (": " .. msg) or "")
    end
  end

  for _, job in ipairs(jobs) do run_once(job, 1) end
  local order = {}
  for i, job in ipairs(jobs) do order[i] = { job = job, i = i, t = results[job.key].seconds or 0 } end
  table.sort(order, function(a, b)
    if a.t ~= b.t then return a.t < b.t end
    return a.i < b.i
  end)
  for _, o in ipairs(order) do
    for run = 2, opts.runs do run_once(o.job, run) end
  end
  return results
end

--- The figure of one cell: value (scaled) or nil, and its text ("*" when
--- it rests on fewer runs than asked).
function M.cell(results, row, col, runs)
  if not applies(row, col) then return nil, "—" end
  local r = results[job_key(row.case, col)]
  if r and r.missing then return nil, "n/a (not installed)" end
  local vals = r and r.values[row.metric]
  local m = vals and M.median(vals)
  if not m then return nil, "n/a" end
  local v = m * row.scale
  return v, M.fmt(v) .. (#vals < runs and "*" or "")
end

--- The "duet / best peer" cell of a row: peer_lang "py" (Python) or
--- "luapeer" (the Lua peers).
function M.ratio(results, row, columns, runs, peer_lang)
  peer_lang = peer_lang or "py"
  if not row.better then return "—" end
  local function best(lang)
    local bv, bcol
    for _, col in ipairs(columns) do
      if col.lang == lang then
        local v = M.cell(results, row, col, runs)
        if v and (not bv or (row.better == "higher" and v > bv) or (row.better == "lower" and v < bv)) then
          bv, bcol = v, col
        end
      end
    end
    return bv, bcol
  end
  local dv, dcol = best("lua")
  local pv, pcol = best(peer_lang)
  if not dv or not pv or pv == 0 then
    local any = false
    for _, col in ipairs(columns) do
      if col.lang == peer_lang and applies(row, col) then any = true end
    end
    return any and "n/a" or "—"
  end
  return ("%s (%s / %s)"):format(M.fmt(dv / pv), dcol.short, pcol.short)
end

local function pad(s, w, right)
  local n = utf8.len(s) or #s
  if n >= w then return s end
  return right and (string.rep(" ", w - n) .. s) or (s .. string.rep(" ", w - n))
end

--- The whole report (Markdown): header, the table, the legend and the
--- reasons for every n/a. meta: date, machine, nproc, loadavg, lua, python,
--- runs, quick; optional: elapsed (seconds), loadavg_end.
function M.render(results, meta, rows, columns)
  rows, columns = rows or M.rows, columns or M.columns
  local runs = meta.runs
  local head = { "workload", "unit", "better" }
  for _, col in ipairs(columns) do head[#head + 1] = col.title end
  head[#head + 1] = "duet / best Python"
  head[#head + 1] = "duet / best Lua peer"
  local body = {}
  for _, row in ipairs(rows) do
    local line = { row.label, row.unit, row.better or "—" }
    for _, col in ipairs(columns) do
      local _, text = M.cell(results, row, col, runs)
      line[#line + 1] = text
    end
    line[#line + 1] = M.ratio(results, row, columns, runs, "py")
    line[#line + 1] = M.ratio(results, row, columns, runs, "luapeer")
    body[#body + 1] = line
  end
  local widths = {}
  for i, h in ipairs(head) do widths[i] = #h end
  for _, line in ipairs(body) do
    for i, s in ipairs(line) do widths[i] = math.max(widths[i], utf8.len(s) or #s) end
  end
  local function render_line(cells)
    local out = {}
    for i, s in ipairs(cells) do out[i] = pad(s, widths[i], i > 3) end
    return "| " .. table.concat(out, " | ") .. " |"
  end
  local lines = {}
  local function add(s) lines[#lines + 1] = s end
  add("# duet benchmarks" .. (meta.quick and " (quick: smaller sizes, 1 run; not for comparison)" or ""))
  add("")
  add(("- date: %s"):format(meta.date))
  add(("- machine: %s, %s cores (nproc); load average at start: %s%s"):format(
    meta.machine, meta.nproc, meta.loadavg,
    meta.loadavg_end and ("; at the end: " .. meta.loadavg_end) or ""))
  local peers = {}
  for _, col in ipairs(columns) do
    if col.lang == "luapeer" then
      peers[#peers + 1] = col.title .. (meta.peers and meta.peers[col.key] and (" " .. meta.peers[col.key]) or "")
    end
  end
  if #peers > 0 then add("- Lua peers: " .. table.concat(peers, ", ")) end
  add(("- %s; %s; each figure is the median of %d run%s%s"):format(meta.lua, meta.python, runs,
    runs == 1 and "" or "s", meta.elapsed and (", whole run %.0f s"):format(meta.elapsed) or ""))
  add("")
  add(render_line(head))
  local sep = {}
  for i = 1, #head do
    sep[i] = i > 3 and (string.rep("-", widths[i] - 1) .. ":") or string.rep("-", widths[i])
  end
  add(render_line(sep))
  for _, line in ipairs(body) do add(render_line(line)) end
  add("")
  add("better: which direction is better for that unit. duet / best Python: the best duet figure")
  add("divided by the best Python figure (threads or asyncio); duet / best Lua peer: the same")
  add("against the best of cqueues, luv and Lanes. Above 1 favours duet where higher is")
  add("better, below 1 where lower is better. n/a: not implemented yet, failed or not run")
  add("(reasons below); n/a (not installed): that Lua module is missing; —: does not apply")
  add("(no equivalent in that runtime or library); *: from fewer runs than asked.")
  -- The reasons, grouped by column and reason.
  local groups, order = {}, {}
  for _, col in ipairs(columns) do
    for _, row in ipairs(rows) do
      local _, text = M.cell(results, row, col, runs)
      local r = results[job_key(row.case, col)]
      local reason = r and r.reason
      if (text:sub(1, 3) == "n/a" or text:sub(-1) == "*") and reason then
        local key = col.title .. "\0" .. reason
        if not groups[key] then
          groups[key] = { col = col.title, reason = reason, ids = {}, seen = {} }
          order[#order + 1] = key
        end
        local g = groups[key]
        if not g.seen[row.id] then
          g.seen[row.id] = true
          g.ids[#g.ids + 1] = row.id
        end
      end
    end
  end
  if #order > 0 then
    add("")
    add("Why figures are missing or short:")
    add("")
    for _, key in ipairs(order) do
      local g = groups[key]
      add(("- %s, %s: %s"):format(g.col, table.concat(g.ids, ", "), g.reason))
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function first_line(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  if not p then return nil end
  local s = p:read("l")
  p:close()
  return s
end

--- The 1, 5 and 15 minute load averages, as one string.
function M.loadavg()
  return (read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)") or "?"
end

--- Facts about the machine for the header, read now (at the start).
function M.machine_meta(opts)
  local cpuinfo = read_file("/proc/cpuinfo") or ""
  return {
    date = os.date("!%Y-%m-%d %H:%M UTC"),
    machine = (cpuinfo:match("model name%s*:%s*([^\n]+)") or "unknown CPU")
      .. ", " .. (first_line("uname -sr") or "unknown OS"),
    nproc = first_line("nproc") or "?",
    loadavg = M.loadavg(),
    lua = first_line(opts.lua .. " -v") and (first_line(opts.lua .. " -v"):match("^(Lua %S+)") or opts.lua) or opts.lua,
    python = (first_line(opts.python .. " -V") or "python: missing"):gsub("\n", ""),
    runs = opts.runs,
    quick = opts.quick,
    peers = {
      cqueues = first_line(opts.lua .. [[ -e 'print(require("cqueues").VERSION)']]),
      luv = first_line(opts.lua .. [[ -e 'print(require("luv").version_string())']]),
      lanes = first_line(opts.lua .. [[ -e 'print(require("lanes").ABOUT.version)']]) or "(not installed)",
    },
  }
end

return M
