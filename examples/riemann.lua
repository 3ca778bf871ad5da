-- A CPU-bound job split among threads: the integral of sin(x) over [0, pi]
-- (exactly 2) as a Riemann sum of many thin rectangles. The rectangles are
-- independent, so each thread adds up its own share and the shares are
-- added at the end; the order does not matter.
--
--   lua5.4 examples/riemann.lua [--rectangles 5000000] [--threads 4] [--tries 3] [--processes]
--
-- On the threads runtime the speed-up grows with the threads up to the
-- number of free cores. On the coroutines runtime all the work runs on one
-- core, so there is none: coroutines help with waiting, not computing.
-- --processes adds runs on a ProcessExecutor of 1, 2, ... worker processes,
-- which scale on either runtime: each worker is a Lua interpreter of its
-- own.
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { rectangles = 5000000, threads = 4, tries = 3, processes = false },
  about = "threads: the runs use 1, 2, ... up to this many threads, then an executor"
    .. " (and with --processes, as many worker processes);"
    .. " each time is the best of --tries runs",
}
local rt = opts.rt

local A, B = 0, math.pi
local WIDTH = (B - A) / opts.rectangles

-- The area of rectangles first..last (midpoint rule). A thread's results
-- come back to the caller through join() or the future, as copies.
local function area(first, last)
  local sin, sum = math.sin, 0
  for i = first, last do sum = sum + sin(A + (i - 0.5) * WIDTH) end
  return sum * WIDTH
end

-- Split rectangles 1..n into `parts` ranges {first, last}.
local function split(n, parts)
  local ranges = {}
  for p = 1, parts do
    ranges[p] = { (p - 1) * n // parts + 1, p * n // parts }
  end
  return ranges
end

-- One thread per part.
local function on_threads(parts)
  local threads = {}
  for i, r in ipairs(split(opts.rectangles, parts)) do
    threads[i] = rt.spawn(area, r[1], r[2])
  end
  local total = 0
  for _, th in ipairs(threads) do
    local _, part = assert(th:join())
    total = total + part
  end
  return total
end

-- An executor with `workers` workers, given four parts per worker.
local function on_executor(workers)
  local ex <close> = rt.Executor{ max_workers = workers }
  local parts = ex:map(function(r) return area(r[1], r[2]) end,
                       split(opts.rectangles, 4 * workers))
  local total = 0
  for _, part in ipairs(parts) do total = total + part end
  return total
end

-- A pool of `workers` processes, given one part per worker. Its start is
-- timed too: a worker process is a fresh interpreter (a few ms).
local function on_processes(workers)
  local ex <close> = rt.ProcessExecutor{ max_workers = workers }
  local parts = ex:map(function(r) return area(r[1], r[2]) end,
                       split(opts.rectangles, workers))
  local total = 0
  for _, part in ipairs(parts) do total = total + part end
  return total
end

rt.run(function()
  print(("Riemann sum of sin(x) over [0, pi], %s rectangles (exact value: 2), %s runtime")
    :format(common.thousands(opts.rectangles), rt.name))
  print(("%-22s %-16s %8s  %s"):format("how", "result", "seconds", "speed-up"))
  local base
  local function row(how, seconds, result)
    base = base or seconds
    print(("%-22s %-16.12f %8.2f  %.2fx"):format(how, result, seconds, base / seconds))
  end
  for n = 1, opts.threads do
    row(n == 1 and "1 thread" or n .. " threads", common.best_time(rt, opts.tries, on_threads, n))
  end
  row(("executor, %d workers"):format(opts.threads),
    common.best_time(rt, opts.tries, on_executor, opts.threads))
  if opts.processes then
    for n = 1, opts.threads do
      row(n == 1 and "1 process" or n .. " processes",
        common.best_time(rt, opts.tries, on_processes, n))
    end
  end
end)
