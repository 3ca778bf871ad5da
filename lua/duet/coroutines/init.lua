-- duet.coroutines: the coroutines runtime. One OS thread, cooperative tasks
-- on a scheduler written in Lua; tasks switch only where they block in a
-- duet call, so plain Lua code between two such calls is never interleaved.
local check = require "duet.check"
local S = require "duet.coroutines.scheduler"
local thread = require "duet.coroutines.thread"

local rt = { name = "coroutines" }
S.runtime = rt             -- for preempt.lua, which loads on first use

local load_lazy

--- Run main(...) as the main task; return its results once it and every
--- non-daemon task have finished (daemons still alive are cancelled).
function rt.run(main, ...)
  check.func("run", 1, main)
  if S.seeded() then load_lazy() end
  return S.run(main, ...)
end

rt.sleep = S.sleep

rt.now = S.now        -- the virtual clock's, in seeded runs (preempt.lua)
rt.current = S.current
rt.Thread = thread.Thread
rt.spawn = thread.spawn

-- a module's names that start with "_" are for duet's own modules; a
-- name the script has set already stays as it set it
local function export(mod)
  for k, v in pairs(require(mod)) do
    if k:sub(1, 1) ~= "_" and rawget(rt, k) == nil then rt[k] = v end
  end
end
export "duet.coroutines.sync"
export "duet.coroutines.queue"

-- What fewer scripts use loads on first use: a third of the runtime's Lua
-- that every script would parse at start-up (spec/coroutines_spec.lua
-- checks that these names cover the modules' exports).
local sockets = require("duet.socket").coroutines(S)
local function process_executor()
  rt.ProcessExecutor = require("duet.process").coroutines(S,
    require "duet.coroutines.executor", sockets.wait_readable,
    sockets.wait_writable)
end
local lazy = {
  Future = "duet.coroutines.executor", Executor = "duet.coroutines.executor",
  wait = "duet.coroutines.executor", as_completed = "duet.coroutines.executor",
  SharedTable = "duet.coroutines.sharedtable",
  ProcessExecutor = process_executor,
  trace = function() rt.trace = require("duet.coroutines.preempt").trace end,
}
-- A seed replays the same preemptions only if every run executes the same
-- code under the preempter's count: no module may load inside the first.
function load_lazy()
  for k in pairs(lazy) do local _ = rt[k] end
  require "duet.coroutines.tokenbucket"
end
setmetatable(rt, { __index = function(_, k)
  local from = lazy[k]
  if from == nil then return nil end
  if type(from) == "function" then from() else export(from) end
  return rawget(rt, k)
end })

-- Objects on Redis (duet.remote.*), loaded on first use; TokenBucket
-- {redis = url, ...} is the bucket shared through Redis.
function rt.RemoteExecutor(opts)
  return require("duet.remote.executor").RemoteExecutor(rt, opts)
end
function rt.RemoteQueue(opts)
  return require("duet.remote.queue").RemoteQueue(rt, opts)
end
function rt.TokenBucket(...)
  local opts = ...
  if type(opts) == "table" and opts.redis ~= nil then
    return require("duet.remote.tokenbucket").TokenBucket(rt, opts)
  end
  return (require("duet.coroutines.tokenbucket").TokenBucket(...))
end

-- Sockets (duet.socket): rt.wrap, rt.wait_readable, rt.wait_writable; a
-- task waiting on a descriptor suspends until the scheduler's poll says so.
for k, v in pairs(sockets) do rt[k] = v end

-- Seeded preemption and the virtual clock from the start (DUET_SEED; else
-- preempt.lua loads with duet.runtime's options, duet.explore or rt.trace).
local seed = os.getenv("DUET_SEED")
if seed and seed ~= "" then require("duet.coroutines.preempt").setup() end

return rt
