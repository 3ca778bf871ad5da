-- 1 + 2 + 3 + ..., one step per thread, every step printed in order:
--
--   1 + 0 = 1
--   --------------------
--   1 + 1 = 2
--   --------------------
--   2 + 2 = 4
--   ...
--
--   lua5.4 examples/sum_sequence.lua [--steps 100] [--fuzz 0]
--
-- Each step reads the running sum and counter, computes, and writes them
-- back: a read-modify-write, so it holds a lock, and no two steps can use
-- the same stale values. But the threads still take the lock in whatever
-- order they happen to run, and a step that printed its own line could
-- print out of turn. So no step prints: each hands its line to a queue
-- while it holds the lock, and one printer thread prints the queue in
-- order. --fuzz N makes each step first sleep a random time up to N
-- seconds, which shuffles the order the threads run in, but not the output.
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { steps = 100, fuzz = 0 },
}
local rt = opts.rt
local printf = common.printf

local function step(state, lock, lines, fuzz)
  if fuzz > 0 then rt.sleep(math.random() * fuzz) end
  lock:with(function()
    local next_sum = state.sum + state.counter
    lines:put(("%d + %d = %d"):format(state.sum, state.counter, next_sum))
    state.sum = next_sum
    state.counter = state.counter + 1
  end)
end

local function printer(lines)
  for line in lines:iter() do
    printf("%s\n%s", line, ("-"):rep(20))
  end
end

rt.run(function()
  local state = rt.SharedTable{ sum = 1, counter = 0 }
  local lock, lines = rt.Lock(), rt.Queue()
  local print_thread = rt.spawn(printer, lines)

  local steps = {}
  for i = 1, opts.steps do steps[i] = rt.spawn(step, state, lock, lines, opts.fuzz) end
  for _, th in ipairs(steps) do assert(th:join()) end
  lines:close()                     -- the printer ends once it has printed all
  assert(print_thread:join())

  -- sum = 1 + (0 + 1 + ... + (steps - 1))
  printf("after %d steps: sum = %d (expected %d)", opts.steps, state.sum,
    1 + opts.steps * (opts.steps - 1) // 2)
end)
