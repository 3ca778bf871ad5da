-- duet: one concurrency API, two runtimes (OS threads and coroutines).
local core = require "duet.core"

local duet = {
  cancelled = core.cancelled,
  timeout = core.timeout,
  broken_barrier = core.broken_barrier,
  now = core.now,
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

--- Called for an error that ends a thread (task) nobody is joining.
--- Replaceable: assign duet.excepthook = function(thread, err, traceback).
function duet.excepthook(thread, err, traceback)
  io.stderr:write(("Exception in thread %s:\n%s\n")
    :format(thread and thread.name or "?", traceback or tostring(err)))
end

-- duet.threads and duet.coroutines load on first use.
return setmetatable(duet, {
  __index = function(_, k)
    local mod = runtimes[k]
    if mod then return require(mod) end
  end,
})
