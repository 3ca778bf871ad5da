-- The best practice for threads: hand the work to an executor, pass
-- everything a task needs in through submit(), get its results back from
-- its future, and let the worker touch no global state at all.
--
--   lua5.4 examples/executor.lua [--jobs 8] [--workers 10]
--
-- The same pattern in Python:
--   with ThreadPoolExecutor(max_workers=10) as exe:
--       future = exe.submit(worker, data)
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { jobs = 8, workers = 10 },
}
local rt = opts.rt

-- The worker: everything it reads is its argument, everything it gives
-- back is its return value (or its error). On the threads runtime `data`
-- arrives as a copy and the results are copied back, so no other thread can
-- see a half-done job.
local function worker(data)
  local sum = 0
  for i, v in ipairs(data.values) do
    if type(v) ~= "number" then
      error(("value %d is not a number: %q"):format(i, tostring(v)), 0)
    end
    sum = sum + v
  end
  return #data.values, sum
end

rt.run(function()
  -- Job i adds up 1..10*i; the last job holds a value that is not a
  -- number, to show that an error comes back through the future too.
  local jobs = {}
  for i = 1, opts.jobs do
    local values = {}
    for v = 1, 10 * i do values[v] = v end
    jobs[i] = { name = "job " .. i, values = values }
  end
  jobs[#jobs + 1] = { name = "bad job", values = { 1, 2, "three" } }

  -- `<close>`: leaving this block shuts the executor down and waits for it.
  do
    local ex <close> = rt.Executor{ max_workers = opts.workers }
    local futures = {}
    for i, job in ipairs(jobs) do futures[i] = ex:submit(worker, job) end
    print(("%d jobs submitted to an executor with %d workers (%s)")
      :format(#jobs, opts.workers, rt.name))

    for i, fut in ipairs(futures) do
      local err = fut:exception()        -- waits for the job to finish
      if err then
        print(("%s: failed: %s"):format(jobs[i].name, err))
      else
        print(("%s: %d numbers, sum %d"):format(jobs[i].name, fut:result()))
      end
    end
  end
  print("executor shut down")
end)
