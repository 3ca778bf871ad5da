-- duet: one concurrency API, two runtimes (OS threads and coroutines).
local core = require "duet.core"

local duet = {
  cancelled = core.cancelled,
  timeout = core.timeout,
  broken_barrier = core.broken_barrier,
  broken_process = core.broken_process,
  now = core.now,
  encode = core.encode,
  decode = core.decode,
}

local runtimes = { threads = "duet.threads", coroutines = "duet.coroutines" }

--- The runtime named `name`, or by env DUET_RUNTIME, else "threads".
function duet.runtime(name)
  if name ~= nil and type(name) ~= "string" then
    error(("bad argument #1 to 'runtime' (string expected, got %s)")
      :format(type(name)), 2)
  end
  name = name or os.getenv("DUET_RUNTIME") or "threads"
  local mod = runtimes[name]
  if not mod then
    error(("bad argument #1 to 'runtime' (invalid runtime '%s')"):format(name), 2)
  end
  return require(mod)
end

--- The default excepthook: called for an error that ends a thread (task)
--- nobody is joining.
local function default_excepthook(thread, err, traceback)
  io.stderr:write(("Exception in thread %s:\n%s\n")
    :format(thread and thread.name or "?", traceback or tostring(err)))
end

local excepthook = default_excepthook

-- duet.excepthook is replaceable from any state. Threads report in their
-- own Lua state, so a replacement is also handed to the C core, which moves
-- it into each thread that needs it. A hook that cannot move (it holds a
-- coroutines-runtime object or a file) serves this state's tasks only, and
-- threads report with the default.
-- duet.threads, duet.coroutines and duet.redis load on first use.
return setmetatable(duet, {
  __index = function(_, k)
    if k == "excepthook" then return excepthook end
    if k == "redis" then return require "duet.redis" end   -- links hiredis
    local mod = runtimes[k]
    if mod then return require(mod) end
  end,
  __newindex = function(t, k, v)
    if k ~= "excepthook" then rawset(t, k, v) return end
    if v ~= nil and type(v) ~= "function" then
      error(("bad argument #3 to '__newindex' (function expected, got %s)")
        :format(type(v)), 2)
    end
    v = v or default_excepthook
    if not (v ~= default_excepthook and pcall(core.set_excepthook, v)) then
      core.set_excepthook(nil)
    end
    excepthook = v
  end,
})
