-- bench/run.lua: `make bench` — duet beside its Python peers, one table.
--
--   lua5.4 bench/run.lua [--quick] [--runs N] [--only PATTERN] [--out FILE]
--                        [--log FILE] [--budget SECONDS] [--timeout SECONDS]
--
-- Runs every workload of bench/harness.lua on duet threads, duet
-- coroutines, Python threads and asyncio, each job in its own process under
-- `timeout`, and prints one Markdown table of medians. A full run (not
-- --quick, not --only) also writes the table to bench/RESULTS.md (or to
-- --out FILE). --quick: smaller sizes, 1 run, about 30 s; its figures are
-- not for comparison. Every job's output goes to bench/out/last-run.log (or
-- --log FILE).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local harness = require "harness"

local function usage(msg)
  io.stderr:write("run.lua: " .. msg .. "\n"
    .. "usage: lua5.4 bench/run.lua [--quick] [--runs N] [--only PATTERN] [--out FILE]"
    .. " [--log FILE] [--budget SECONDS] [--timeout SECONDS]\n")
  os.exit(2)
end

local opts = { quick = false, bench_dir = here }
local i = 1
while i <= #arg do
  local a = arg[i]
  local function value()
    i = i + 1
    return arg[i] or usage(a .. " needs a value")
  end
  if a == "--quick" then opts.quick = true
  elseif a == "--runs" then opts.runs = tonumber(value()) or usage("--runs needs a number")
  elseif a == "--only" then opts.only = value()
  elseif a == "--out" then opts.out = value()
  elseif a == "--log" then opts.log_path = value()
  elseif a == "--budget" then opts.budget = tonumber(value()) or usage("--budget needs a number")
  elseif a == "--timeout" then opts.job_timeout = tonumber(value()) or usage("--timeout needs a number")
  else usage("unknown argument " .. a) end
  i = i + 1
end

-- Sizes and limits: a full run stays under 5 minutes, a quick one under 30 s.
opts.runs = opts.runs or (opts.quick and 1 or 3)
opts.budget = opts.budget or (opts.quick and 27 or 270)
opts.job_timeout = opts.job_timeout or (opts.quick and 5 or 40)
opts.lua = os.getenv("LUA") or (arg[-1] and arg[-1]:match("lua") and arg[-1]) or "lua5.4"
opts.python = os.getenv("PYTHON") or "python3"

-- The duet scripts find duet in the source tree, as `make` exports it
-- (or, run by hand, in the tree this script sits in).
local root = here:match("^(.*)/bench$") or (here .. "/..")
local function add_env(name, value)
  return ("%s=%s"):format(name, harness.shell_quote(os.getenv(name) or value))
end
local env = table.concat({
  add_env("LUA_PATH", ("%s/lua/?.lua;%s/lua/?/init.lua;;"):format(root, root)),
  add_env("LUA_CPATH", root .. "/lua/?.so;;"),
}, " ")
local runner = function(cmd, timeout)
  return harness.run_command("env " .. env .. " " .. cmd, timeout)
end

local rows = harness.rows
if opts.only then
  rows = {}
  for _, r in ipairs(harness.rows) do
    if r.id:find(opts.only, 1, true) or r.label:find(opts.only, 1, true) then rows[#rows + 1] = r end
  end
  if #rows == 0 then usage("--only " .. opts.only .. " matches no workload") end
end

local meta = harness.machine_meta(opts)
io.stderr:write(("bench: %s; nproc %s; load average %s; %d run(s)%s\n"):format(
  meta.date, meta.nproc, meta.loadavg, opts.runs, opts.quick and ", quick" or ""))

if not opts.log_path then
  os.execute("mkdir -p " .. harness.shell_quote(here .. "/out"))
  opts.log_path = here .. "/out/last-run.log"
end
local log = io.open(opts.log_path, "w")
opts.runner = runner
opts.log = function(run, job, cmd, stdout, stderr, how, code, seconds)
  local status = (how == "exit" and code == 0) and "ok" or ("failed (" .. tostring(how) .. " " .. tostring(code) .. ")")
  io.stderr:write(("  run %d  %-14s %-16s %6.2f s  %s\n"):format(run, job.case, job.column.title, seconds, status))
  if log then
    log:write(("== run %d: %s\n-- %s %s, %.2f s\n%s-- stderr\n%s\n"):format(
      run, cmd, how, code, seconds, stdout, stderr))
    log:flush()
  end
end

local started = harness.clock()
local results = harness.collect(harness.jobs(rows, harness.columns), opts)
meta.elapsed = harness.clock() - started
meta.loadavg_end = harness.loadavg()
if log then log:close() end

local report = harness.render(results, meta, rows, harness.columns)
io.stdout:write(report)
if opts.out or (not opts.quick and not opts.only) then
  local path = opts.out or (here .. "/RESULTS.md")
  local f = assert(io.open(path, "w"))
  f:write(report)
  f:close()
  io.stderr:write("bench: table written to " .. path .. "\n")
end
