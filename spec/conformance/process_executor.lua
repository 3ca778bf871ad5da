-- Conformance: the Executor cases (spec/conformance/executor.lua) run
-- again with rt.ProcessExecutor in place of rt.Executor. A task runs in
-- another process, so the gates the cases share with their tasks are
-- files (FileEvent below) instead of Events; the cases listed in `skip`
-- cannot apply, each for the reason given.
--
-- The cases' tasks capture `rt`; here that is a stand-in runtime (rt with
-- ProcessExecutor as Executor and FileEvent as Event), loaded as the
-- module conformance.processes.<runtime> so that it moves into a worker
-- by name, as rt itself does.

-- An Event across processes: set() creates a file, wait() looks for it
-- every 2 ms. Its methods move with it into a worker (plain Lua, by the
-- transfer rules); the parent removes the files when the run ends.
local FileEvent = {}
FileEvent.__index = FileEvent

function FileEvent:set()
  assert(io.open(self.path, "w")):close()
end

function FileEvent:is_set()
  local f = io.open(self.path)
  if f then f:close() end
  return f ~= nil
end

function FileEvent:wait(timeout)
  local rt = require("duet").runtime(self.runtime)
  local deadline = rt.now() + (timeout or math.huge)
  while not self:is_set() do
    if rt.now() > deadline then return false end
    rt.sleep(0.002)
  end
  return true
end

local skip = {
  ["has __name 'duet.Executor' and a __tostring naming it"] =
    "its name is duet.ProcessExecutor (spec/process_spec.lua)",
  ["runs fn in a worker, not in the caller"] =
    "rt.current() of a worker cannot come back from another process "
    .. "(spec/process_spec.lua compares process ids)",
  ["never runs more than max_workers tasks at once"] =
    "the count lives in a SharedTable, which cannot leave the process",
  ["runs max_workers tasks at once"] =
    "the tasks meet at a Barrier, which cannot leave the process",
  ["runs initializer(initargs...) once in each worker, before its tasks"] =
    "the count lives in a SharedTable, which cannot leave the process "
    .. "(spec/process_spec.lua counts in the workers' globals)",
  ["a raising initializer fails the queued futures and submit, and is not retried in a loop"] =
    "the calls are counted in a SharedTable, which cannot leave the process "
    .. "(spec/process_spec.lua has the case)",
  ["names the workers prefix_0, prefix_1, ..."] =
    "a process pool has no threads to name (no thread_name_prefix, as in Python)",
  ["defaults to Executor-N_k"] =
    "a worker process's rt.current() is its own MainThread",
  ["(timeout) cancels the tasks not started, the awaited one included"] =
    "the tasks record their runs in a SharedTable, which cannot leave the process",
  ["cancels the tasks not started when the waiting thread is cancelled"] =
    "the tasks record their runs in a SharedTable, which cannot leave the process",
}

local M = { files = {} }   -- the gates' files, for the run to remove

-- The stand-in for runtime `name`.
function M.runtime(name)
  local rt = require("duet").runtime(name)
  return setmetatable({
    name = rt.name .. " ProcessExecutor",
    _skip = skip,
    Executor = rt.ProcessExecutor,
    Event = function()
      local path = os.tmpname()
      os.remove(path)
      M.files[#M.files + 1] = path
      return setmetatable({ path = path, runtime = rt.name }, FileEvent)
    end,
  }, { __index = rt })
end

-- Declare the cases for runtime rt.
function M.declare(rt)
  require("conformance.executor")(require("conformance.processes." .. rt.name))
end

return M
