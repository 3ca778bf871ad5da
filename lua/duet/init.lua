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

-- Each runtime's options (duet.runtime's second argument): checked and put
-- in force by the module named here.
local configurers = { threads = "duet.jitter", coroutines = "duet.coroutines.preempt" }

--- The runtime named `name`, or by env DUET_RUNTIME, else "threads"; with
--- `options`, those options put in force (seeded runs).
function duet.runtime(name, options)
  if name ~= nil and type(name) ~= "string" then
    error(("bad argument #1 to 'runtime' (string expected, got %s)")
      :format(type(name)), 2)
  end
  if options ~= nil and type(options) ~= "table" then
    error(("bad argument #2 to 'runtime' (table expected, got %s)")
      :format(type(options)), 2)
  end
  name = name or os.getenv("DUET_RUNTIME") or "threads"
  local mod = runtimes[name]
  if not mod then
    error(("bad argument #1 to 'runtime' (invalid runtime '%s')"):format(name), 2)
  end
  local rt = require(mod)
  if options then require(configurers[name]).configure(options, "runtime", 2) end
  return rt
end

--- Run fn under one seed after another on the coroutines runtime with
--- preemption; raise at the first seed where it fails (naming the seed).
function duet.explore(fn, options)
  require "duet.coroutines"
  return require("duet.coroutines.preempt").explore(fn, options)
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
