-- I/O-bound versus CPU-bound work, timed.
--
--   lua5.4 examples/io_vs_cpu.lua [--io-steps 10] [--io-sleep 0.05] [--cpu-steps 40000000]
--
-- Each time is the best of --tries runs (default 3).
--
-- I/O-bound: a worker that mostly waits (here: sleeps) leaves the processor
-- free, so 20 of them take about as long as one, on either runtime.
-- CPU-bound: a worker that computes needs a processor all the time. On the
-- threads runtime two workers each doing half the job run on two cores at
-- once and take about half the time of one (given two free cores). On the
-- coroutines runtime everything runs on one core, and a task that never
-- blocks keeps it until it is done: two halves take as long as the whole.
-- The last row runs both kinds together: on coroutines the CPU-bound task
-- holds up the sleepers, on threads it does not.
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { io_workers = 20, io_steps = 10, io_sleep = 0.05, cpu_steps = 40000000,
              tries = 3 },
}
local rt = opts.rt

-- Wait `steps` times for `pause` seconds.
local function io_bound(steps, pause)
  for _ = 1, steps do rt.sleep(pause) end
end

-- Compute for `steps` loop turns.
local function cpu_bound(steps)
  local x = 0
  for i = 1, steps do x = x + i % 7 end
  return x
end

-- Run every job of `jobs` ({fn, args...} each) at once, one thread each,
-- and wait for them all.
local function run_jobs(jobs)
  local threads = {}
  for i, job in ipairs(jobs) do threads[i] = rt.spawn(table.unpack(job)) end
  for _, th in ipairs(threads) do assert(th:join()) end
end

-- The seconds that takes (the best of --tries runs).
local function time_jobs(jobs)
  return (common.best_time(rt, opts.tries, run_jobs, jobs))
end

local function io_jobs(n)
  local jobs = {}
  for i = 1, n do jobs[i] = { io_bound, opts.io_steps, opts.io_sleep } end
  return jobs
end

-- The whole CPU job, split evenly among n workers.
local function cpu_jobs(n)
  local jobs = {}
  for i = 1, n do jobs[i] = { cpu_bound, opts.cpu_steps // n } end
  return jobs
end

rt.run(function()
  local io_work = ("I/O-bound, %d sleeps of %g s each"):format(opts.io_steps, opts.io_sleep)
  local cpu_work = ("CPU-bound, %s steps in all"):format(common.thousands(opts.cpu_steps))
  print(("%-36s %7s %8s  %s"):format("workload (" .. rt.name .. ")", "workers", "seconds",
    "time vs 1 worker"))

  local function row(what, workers, seconds, base)
    local line = ("%-36s %7s %8.2f"):format(what, workers, seconds)
    if base then line = line .. ("  %.2fx"):format(seconds / base) end
    print(line)
  end

  local io1 = time_jobs(io_jobs(1))
  row(io_work, 1, io1)
  row(io_work, opts.io_workers, time_jobs(io_jobs(opts.io_workers)), io1)

  local cpu1 = time_jobs(cpu_jobs(1))
  row(cpu_work, 1, cpu1)
  row(cpu_work, 2, time_jobs(cpu_jobs(2)), cpu1)

  local mixed = io_jobs(opts.io_workers)
  mixed[#mixed + 1] = cpu_jobs(1)[1]
  row("both at once", opts.io_workers .. " + 1", time_jobs(mixed))
end)
