-- duet.coroutines: the coroutines runtime. One OS thread, cooperative tasks
-- on a scheduler written in Lua; tasks switch only where they block in a
-- duet call, so plain Lua code between two such calls is never interleaved.
local check = require "duet.check"
local S = require "duet.coroutines.scheduler"
local thread = require "duet.coroutines.thread"

local rt = { name = "coroutines" }

--- Run main(...) as the main task; return its results once it and every
--- non-daemon task have finished (daemons still alive are cancelled).
function rt.run(main, ...)
  check.func("run", 1, main)
  return S.run(main, ...)
end

rt.sleep = S.sleep

rt.now = S.now        -- the virtual clock's, in seeded runs (preempt.lua)
rt.current = S.current
rt.Thread = thread.Thread
rt.spawn = thread.spawn

-- a module's names that start with "_" are for duet's own modules
local function export(mod)
  for k, v in pairs(require(mod)) do
    if k:sub(1, 1) ~= "_" then rt[k] = v end
  end
end
export "duet.coroutines.sync"
export "duet.coroutines.queue"
export "duet.coroutines.sharedtable"
export "duet.coroutines.executor"
export "duet.coroutines.tokenbucket"

-- Objects on Redis (duet.remote.*), loaded on first use; TokenBucket
-- {redis = url, ...} is the bucket shared through Redis.
function rt.RemoteExecutor(opts)
  return require("duet.remote.executor").RemoteExecutor(rt, opts)
end
function rt.RemoteQueue(opts)
  return require("duet.remote.queue").RemoteQueue(rt, opts)
end
local TokenBucket = rt.TokenBucket
function rt.TokenBucket(...)
  local opts = ...
  if type(opts) == "table" and opts.redis ~= nil then
    return require("duet.remote.tokenbucket").TokenBucket(rt, opts)
  end
  return (TokenBucket(...))
end

-- Sockets (duet.socket): rt.wrap, rt.wait_readable, rt.wait_writable; a
-- task waiting on a descriptor suspends until the scheduler's poll says so.
for k, v in pairs(require("duet.socket").coroutines(S)) do rt[k] = v end

-- Seeded preemption and the virtual clock (rt.trace; DUET_SEED).
require("duet.coroutines.preempt").setup(rt)

-- ProcessExecutor: child processes whose sockets join the same poll.
rt.ProcessExecutor = require("duet.process").coroutines(S,
  require "duet.coroutines.executor", rt.wait_readable, rt.wait_writable)

return rt
