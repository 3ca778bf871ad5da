-- duet.threads: the OS-threads runtime, a thin layer over duet.core.
local core = require "duet.core"

local rt = {
  name = "threads",
  now = core.now,
  sleep = core.sleep,
  current = core.current,
  Thread = core.Thread,
  spawn = core.spawn,
  stack_size = core.stack_size,
}

-- The rest is looked up on first use, so that a thread's state opens only
-- the parts of duet.core it needs: every constructor of duet.core
-- (CapWords: Lock, Queue, ...); rt.wait(futures, {timeout=, return_when=})
-- and rt.as_completed(futures, [timeout]) for an Executor's futures; and
-- the sockets of duet.socket (rt.wrap, rt.wait_readable, rt.wait_writable),
-- whose waits block the OS thread; rt.ProcessExecutor (duet.process).
local from_core = { wait = "wait_futures", as_completed = "as_completed" }
local from_socket = { wrap = true, wait_readable = true, wait_writable = true }
-- Objects on Redis (duet.remote.*), loaded on first use.
local from_remote = { RemoteExecutor = "duet.remote.executor",
  RemoteQueue = "duet.remote.queue" }

setmetatable(rt, {
  __index = function(t, k)
    local v
    if from_socket[k] then
      v = require("duet.socket").threads()[k]
    elseif k == "ProcessExecutor" then
      v = require("duet.process").threads_executor
    elseif from_remote[k] then
      local make = require(from_remote[k])[k]
      v = function(opts) return make(t, opts) end
    elseif k == "TokenBucket" then
      -- {redis = url, ...}: the bucket shared through Redis
      local TokenBucket = core.TokenBucket
      v = function(...)
        local opts = ...
        if type(opts) == "table" and opts.redis ~= nil then
          return require("duet.remote.tokenbucket").TokenBucket(t, opts)
        end
        -- called from here, the C check's error would point at this line
        -- (or, under pcall, name duet.core.TokenBucket): raise it again at
        -- the caller's
        local ok, tb = pcall(TokenBucket, ...)
        if not ok then
          require("duet.check").error((tostring(tb):gsub("'duet%.core%.", "'")))
        end
        return tb
      end
    elseif from_core[k] or (type(k) == "string" and k:match("^%u")) then
      v = core[from_core[k] or k]
    end
    if v ~= nil then rawset(t, k, v) end
    return v
  end,
})

--- Run main(...) and return its results, after every non-daemon thread it
--- started has finished. Errors in main propagate with a traceback.
function rt.run(main, ...)
  if type(main) ~= "function" then
    error(("bad argument #1 to 'run' (function expected, got %s)")
      :format(type(main) == "nil" and "no value" or type(main)), 2)
  end
  local res = table.pack(xpcall(main, debug.traceback, ...))
  core.wait_threads()
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

return rt
