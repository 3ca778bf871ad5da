-- The conformance suite: every family in spec/conformance/ runs once per
-- runtime, and the same cases must pass on both (see docs/API.md).
-- A runtime whose module does not exist yet is pending; one that exists but
-- fails to load is an error.

local busted = require "busted"
local describe, it, pending = busted.describe, busted.it, busted.pending
local setup, teardown = busted.setup, busted.teardown
local duet = require "duet"

local families = {
  "runtime", "errors", "thread", "lock", "semaphore", "condition", "event",
  "barrier", "queue", "sharedtable", "executor", "tokenbucket", "socket",
  "badargs",
}

-- DUET_CONFORMANCE=queue,lock runs only those families (while working on one).
if os.getenv("DUET_CONFORMANCE") then
  families = {}
  for f in os.getenv("DUET_CONFORMANCE"):gmatch("[^,%s]+") do families[#families + 1] = f end
end

-- Threads in these specs raise on purpose and are joined afterwards; keep
-- the default hook from printing each of them. (The excepthook cases set
-- their own hook and put this one back.)
duet.excepthook = function() end

-- DUET_RUNTIMES=coroutines runs the families for that runtime only.
local runtimes = { "threads", "coroutines" }
if os.getenv("DUET_RUNTIMES") then
  runtimes = {}
  for r in os.getenv("DUET_RUNTIMES"):gmatch("[^,%s]+") do runtimes[#runtimes + 1] = r end
end

for _, name in ipairs(runtimes) do
  describe(name, function()
    local ok, rt = pcall(duet.runtime, name)
    if not ok and tostring(rt):find("module 'duet%." .. name .. "' not found") then
      pending(name .. " runtime does not exist yet")
      return
    end
    if not ok then
      it("loads", function() error(rt, 0) end)
      return
    end
    if rt.run == nil then
      pending(name .. " has no run yet")
      return
    end
    for _, family in ipairs(families) do
      require("conformance." .. family)(rt, {})
    end
  end)
end

-- Once more on the coroutines runtime with seeded preemption and the
-- virtual clock: the same cases must pass when tasks are switched at any
-- point of their own code, which holds only if every step of the runtime
-- itself stays atomic.
local SEED = 42
local function includes(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end
if includes(runtimes, "coroutines") then
  describe(("coroutines, preempted (seed %d, virtual clock)"):format(SEED), function()
    local rt = duet.runtime("coroutines")
    setup(function() duet.runtime("coroutines", { preempt = { seed = SEED, min = 1, max = 20 } }) end)
    teardown(function() duet.runtime("coroutines", {}) end)
    for _, family in ipairs(families) do
      require("conformance." .. family)(rt, { virtual_clock = true })
    end
    -- the Executor's cases once more, on rt.ProcessExecutor
    for _, family in ipairs(families) do
      if family == "executor" and rt.ProcessExecutor then
        describe("ProcessExecutor", function()
          local kit = require "conformance.process_executor"
          busted.teardown(function()
            for _, path in ipairs(kit.files) do os.remove(path) end
          end)
          kit.declare(rt)
        end)
      end
    end
  end)
end
