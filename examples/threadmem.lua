-- What idle threads cost in memory: start N threads that only wait, and
-- compare the process's memory before and while they wait (Linux: read
-- from /proc/self/status).
--
--   lua5.4 examples/threadmem.lua [--threads 10000] [--stack-size 0]
--
-- VIRT is address space reserved (mostly each OS thread's stack, 1 MiB by
-- default here); RES is memory actually in use. On the threads runtime every
-- thread also has its own small Lua state. --stack-size (bytes, at least
-- 262144; 0 for the default) sets the stack of threads started after it.
-- On the coroutines runtime a task is a coroutine: no OS thread, no stack
-- to reserve, a few hundred bytes each.
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { threads = 10000, stack_size = 0 },
}
local rt = opts.rt

-- VmSize and VmRSS in KiB, or nil without /proc.
local function memory()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local status = f:read("a")
  f:close()
  return tonumber(status:match("VmSize:%s*(%d+)")), tonumber(status:match("VmRSS:%s*(%d+)"))
end

local function mib(kib) return ("%.1f MiB"):format(kib / 1024) end

-- An idle thread: say it is ready, then wait for the signal to end.
local function idle(ready, done)
  ready:release()
  done:wait()
end

if not memory() then
  print("this example reads /proc/self/status, which this system does not have")
  os.exit(0)
end

rt.run(function()
  local pid = io.open("/proc/self/stat"):read("n")
  print(("PID = %d, %s runtime"):format(pid, rt.name))
  if rt.stack_size then
    if opts.stack_size ~= 0 then rt.stack_size(opts.stack_size) end
    print(("stack size per thread: %d KiB"):format(rt.stack_size() // 1024))
  else
    print("stack size per thread: none (tasks are coroutines on one OS thread)")
  end

  local virt0, res0 = memory()
  print(("before:  VIRT %10s   RES %10s"):format(mib(virt0), mib(res0)))

  local ready, done = rt.Semaphore(0), rt.Event()
  local threads = {}
  for i = 1, opts.threads do threads[i] = rt.spawn(idle, ready, done) end
  for _ = 1, opts.threads do ready:acquire() end

  local virt1, res1 = memory()
  print(("%s idle threads: VIRT %10s   RES %10s"):format(
    common.thousands(opts.threads), mib(virt1), mib(res1)))
  print(("per thread: VIRT %.1f KiB, RES %.1f KiB"):format(
    (virt1 - virt0) / opts.threads, (res1 - res0) / opts.threads))

  done:set()
  for _, th in ipairs(threads) do assert(th:join()) end
  print("all threads joined")
end)
