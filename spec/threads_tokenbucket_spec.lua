-- The threads runtime's TokenBucket (API.md, "Token bucket"): one C object
-- shared by reference by every thread, refilled from the clock with no
-- refill thread. What every runtime shares is checked by
-- spec/conformance/tokenbucket.lua; this file holds what is particular to
-- OS threads: exact counts when threads take at once, waits from several
-- threads, cancel while waiting, and the exact messages.
--
-- Counts are checked against the clock, never against fixed timings: each
-- case reads rt.now() around what it measures and derives the bounds the
-- arithmetic allows from those readings, so a slow or loaded machine cannot
-- make a correct bucket fail.

local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local duet = require "duet"
local rt = duet.threads

local LONG = 5                          -- bounds waits that must succeed
local EPS = 1e-6

--- Message without the "file:line: " prefix.
local function strip(e)
  return (tostring(e):gsub("^.-:%d+: ", "", 1))
end

local function raised(fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return nil end
  return e
end

--- Start `n` threads running fn(tb, i); their joined results, in order.
local function run_threads(n, fn, tb)
  local ths = {}
  for i = 1, n do ths[i] = rt.spawn(fn, tb, i) end
  local out = {}
  for i = 1, n do
    local ok, v = ths[i]:join(LONG * 4)
    assert.is_true(ok, tostring(v))
    out[i] = v
  end
  return out
end

local function sum(list)
  local s = 0
  for _, v in ipairs(list) do s = s + v end
  return s
end

describe("threads runtime: TokenBucket", function()
  it("is one object in every thread", function()
    local tb = rt.TokenBucket{capacity = 10, rate = 1e-6}
    local ok, other = rt.spawn(function() tb:take(3); return tostring(tb) end):join(LONG)
    assert.is_true(ok)
    assert.are.equal(tostring(tb):match("0x%x+$"), other:match("0x%x+$"))
    assert.matches("^duet.TokenBucket %(7/10 tokens%): 0x", tostring(tb))
  end)

  it("4 threads taking at once are never granted more than the arithmetic allows", function()
    for _, opts in ipairs({
      {capacity = 50, rate = 2000},
      {max_tokens = 50, refill_tokens = 5, refill_period = 0.002},
    }) do
      local a0 = rt.now()
      local tb = rt.TokenBucket(opts)
      local granted = run_threads(4, function(bucket)
        local n, stop = 0, require("duet").threads.now() + 0.05
        local now = require("duet").threads.now
        while now() < stop do
          if bucket:take() then n = n + 1 end
        end
        return n
      end, tb)
      local b1 = rt.now()
      local total = sum(granted)
      local allowed = opts.rate and 50 + opts.rate * (b1 - a0)
                      or 50 + 5 * math.floor((b1 - a0) / 0.002 + EPS)
      assert.is_true(total <= allowed, ("granted %d, allowed %g"):format(total, allowed))
      assert.is_true(total >= 50, "granted " .. total)   -- the full start at least
      -- and what is left adds up: nothing granted twice, nothing lost
      local left = tb:tokens()
      assert.is_true(left >= 0 and left <= 50)
    end
  end)

  it("takes exactly the tokens there are when 4 threads race for them", function()
    for _ = 1, 20 do
      local tb = rt.TokenBucket{capacity = 1000, rate = 1e-9}
      local got = run_threads(4, function(bucket)
        local n = 0
        while bucket:take(3) do n = n + 3 end
        while bucket:take() do n = n + 1 end
        return n
      end, tb)
      assert.are.equal(1000, sum(got))
      assert.are.equal(0, tb:tokens() // 1)
    end
  end)

  it(":wait() from several threads: each gets its tokens, no sooner than they accrue", function()
    local a0 = rt.now()
    local tb = rt.TokenBucket{capacity = 5, rate = 500, tokens = 0}
    local got = run_threads(4, function(bucket)
      local n = 0
      for _ = 1, 5 do
        if bucket:wait(1, 5) then n = n + 1 end
      end
      return n
    end, tb)
    local b1 = rt.now()
    assert.are.equal(20, sum(got))
    -- 20 tokens from empty at 500/s take at least 0.04 s
    assert.is_true(b1 - a0 >= 20 / 500 - EPS, "took " .. (b1 - a0))
  end)

  it(":wait() is cancellable and takes nothing when cancelled", function()
    local tb = rt.TokenBucket{capacity = 5, rate = 1e-3, tokens = 4}
    local waiter = rt.spawn(function() return tb:wait(5) end)
    rt.sleep(0.01)
    waiter:cancel()
    local ok, e = waiter:join(LONG)
    assert.is_false(ok)
    assert.is_true(e == duet.cancelled, tostring(e))
    assert.is_true(tb:take(4))
  end)

  it("a discrete bucket grants whole refills only", function()
    local P = 0.005
    local a0 = rt.now()
    local tb = rt.TokenBucket{max_tokens = 99, refill_tokens = 3, refill_period = P, tokens = 0}
    local a1 = rt.now()
    assert.is_true(tb:wait(3, LONG))
    rt.sleep(0.02)
    local b0 = rt.now()
    local n = tb:tokens()
    local b1 = rt.now()
    assert.are.equal(0, n % 3)
    assert.are.equal("integer", math.type(n))
    -- 3 per whole period since it was made, less the 3 taken, capped at 99
    assert.is_true(n >= math.min(96, 3 * math.floor((b0 - a1 - EPS) / P) - 3), n)
    assert.is_true(n <= math.min(99, 3 * math.floor((b1 - a0 + EPS) / P) - 3), n)
  end)

  it("reads a whole count as an integer", function()
    local tb = rt.TokenBucket{capacity = 5, rate = 1}
    assert.are.equal("integer", math.type(tb:tokens()))
    assert.are.equal("5", tostring(tb:tokens()))
  end)

  it("refuses bad arguments with the standard messages, changing nothing", function()
    local tb = rt.TokenBucket{capacity = 5, rate = 1e-9}
    local cases = {
      {function() tb:take(6) end, "bad argument #1 to 'take' (n exceeds the bucket's capacity)"},
      {function() tb:take(0) end, "bad argument #1 to 'take' (n must be positive)"},
      {function() tb:take("x") end, "bad argument #1 to 'take' (number expected, got string)"},
      {function() tb:wait(6) end, "bad argument #1 to 'wait' (n exceeds the bucket's capacity)"},
      {function() tb:wait(1, -1) end, "bad argument #2 to 'wait' (timeout must be a non-negative number)"},
      {function() rt.TokenBucket{capacity = 1, rate = 1, max_tokens = 1} end,
       "bad argument #1 to 'TokenBucket' (give either capacity and rate, or max_tokens, refill_tokens and refill_period)"},
      {function() rt.TokenBucket{capacity = 1} end,
       "bad argument #1 to 'TokenBucket' (field 'rate': number expected, got nil)"},
      {function() rt.TokenBucket{capacity = 0, rate = 1} end,
       "bad argument #1 to 'TokenBucket' (field 'capacity' must be positive)"},
      {function() rt.TokenBucket{capacity = 2, rate = 1, tokens = 3} end,
       "bad argument #1 to 'TokenBucket' (field 'tokens' must be between 0 and the capacity)"},
      {function() rt.TokenBucket{capacity = 2, rate = 1, tokens = "1"} end,
       "bad argument #1 to 'TokenBucket' (field 'tokens': number expected, got string)"},
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], strip(raised(c[1])))
    end
    assert.are.equal(5, tb:tokens() // 1)
  end)
end)
