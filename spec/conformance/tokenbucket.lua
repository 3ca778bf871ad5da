-- Conformance: TokenBucket.
--
-- Counts are checked against the clock, never against fixed timings: each
-- case reads rt.now() before and after the calls it measures and derives the
-- lowest and highest count the contract allows from those readings, so a
-- slow or loaded machine cannot make a correct bucket fail.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local describe, it = busted.describe, busted.it
local SHORT, LONG = H.SHORT, H.LONG

local EPS = 1e-6     -- float noise, in tokens and in seconds
local TINY = 1e-6    -- a rate so slow that no whole token appears in a run

-- Make a bucket with `opts`; return it and the clock readings around it.
local function timed_bucket(rt, opts)
  local a0 = rt.now()
  local tb = rt.TokenBucket(opts)
  return tb, a0, rt.now()
end

-- tb:tokens() and the clock readings around the call.
local function timed_tokens(rt, tb)
  local b0 = rt.now()
  local n = tb:tokens()
  return n, b0, rt.now()
end

-- Assert lo <= n <= hi (with float slack), with a readable message.
local function within(n, lo, hi)
  assert.is_true(n >= lo - EPS and n <= hi + EPS,
    ("%s tokens, expected between %s and %s"):format(n, lo, hi))
end

return function(rt)
  describe("TokenBucket", function()
    if not H.has(rt, "TokenBucket") then return end

    H.describe_name(rt, "duet.TokenBucket", function()
      return rt.TokenBucket{capacity = 1, rate = 1}
    end)

    describe("{capacity=, rate=}", function()
      it("starts full", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{capacity = 5, rate = 1}
          assert.are.equal(5, tb:tokens())
        end)
      end)

      it("{tokens=} sets the starting count", function()
        H.run(rt, function()
          local tb, a0 = timed_bucket(rt, {capacity = 10, rate = TINY, tokens = 3})
          local n, _, b1 = timed_tokens(rt, tb)
          within(n, 3, 3 + TINY * (b1 - a0))
          local empty = rt.TokenBucket{capacity = 10, rate = TINY, tokens = 0}
          assert.is_false(empty:take())
        end)
      end)

      it("refills continuously at rate tokens per second", function()
        H.run(rt, function()
          local tb, a0, a1 = timed_bucket(rt, {capacity = 1000, rate = 100, tokens = 0})
          rt.sleep(0.03)
          local n, b0, b1 = timed_tokens(rt, tb)
          within(n, 100 * (b0 - a1), 100 * (b1 - a0))
          rt.sleep(0.01)
          local m, c0, c1 = timed_tokens(rt, tb)
          within(m, 100 * (c0 - a1), 100 * (c1 - a0))
          assert.is_true(m >= n)
        end)
      end)

      it("never holds more than capacity", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{capacity = 3, rate = 1000, tokens = 0}
          rt.sleep(SHORT)  -- 20 tokens' worth of refill
          assert.are.equal(3, tb:tokens())
          assert.is_true(tb:take(3))
        end)
      end)
    end)

    describe("{max_tokens=, refill_tokens=, refill_period=}", function()
      it("starts full", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{max_tokens = 10, refill_tokens = 2, refill_period = 1}
          assert.are.equal(10, tb:tokens())
        end)
      end)

      it("adds refill_tokens every refill_period", function()
        H.run(rt, function()
          local P = 0.02
          local tb, a0, a1 = timed_bucket(rt, {max_tokens = 100, refill_tokens = 2,
                                               refill_period = P, tokens = 0})
          rt.sleep(0.05)
          local n, b0, b1 = timed_tokens(rt, tb)
          within(n, 2 * math.floor((b0 - a1 - EPS) / P),
                    2 * math.floor((b1 - a0 + EPS) / P))
          assert.are.equal(0, n % 2)  -- whole refills only
        end)
      end)

      it("never holds more than max_tokens", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{max_tokens = 4, refill_tokens = 2,
                                    refill_period = 0.001, tokens = 0}
          rt.sleep(SHORT)
          assert.are.equal(4, tb:tokens())
        end)
      end)

      it("{tokens=} sets the starting count", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{max_tokens = 10, refill_tokens = 1,
                                    refill_period = 1e6, tokens = 4}
          assert.are.equal(4, tb:tokens())
        end)
      end)

      it(":wait() blocks until a refill brings enough", function()
        H.run(rt, function()
          local P = 0.02
          local tb, a0 = timed_bucket(rt, {max_tokens = 10, refill_tokens = 2,
                                           refill_period = P, tokens = 0})
          assert.is_true(tb:wait(2))
          assert.is_true(rt.now() - a0 >= P - EPS)
          -- whole refills leave a whole count, which reads as an integer
          assert.are.equal("integer", math.type(tb:tokens()))
        end)
      end)
    end)

    describe(":take()", function()
      it("takes 1 by default, or n, returning true", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{capacity = 5, rate = TINY}
          assert.is_true(tb:take())
          within(tb:tokens(), 4, 4 + EPS)
          assert.is_true(tb:take(3))
          within(tb:tokens(), 1, 1 + EPS)
        end)
      end)

      it("returns false and takes none when there are too few", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{capacity = 5, rate = TINY, tokens = 2}
          assert.is_false(tb:take(3))
          within(tb:tokens(), 2, 2 + EPS)
          assert.is_true(tb:take(2))
          assert.is_false(tb:take())
        end)
      end)

      it("is shared by every thread: 4 threads take exactly the tokens there are", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{capacity = 100, rate = TINY}
          local threads = {}
          for i = 1, 4 do
            threads[i] = rt.spawn(function()
              local n = 0
              while tb:take() do n = n + 1 end
              return n
            end)
          end
          local total = 0
          for _, th in ipairs(threads) do
            local ok, n = th:join(LONG)
            assert.is_true(ok)
            total = total + n
          end
          assert.are.equal(100, total)
        end)
      end)
    end)

    describe(":wait()", function()
      it("returns true at once when there are enough tokens", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{capacity = 5, rate = TINY}
          assert.is_true(tb:wait())
          assert.is_true(tb:wait(2, 0))
          within(tb:tokens(), 2, 2 + EPS)
        end)
      end)

      it("blocks until the tokens have been refilled, then takes them", function()
        H.run(rt, function()
          local tb, a0 = timed_bucket(rt, {capacity = 10, rate = 100, tokens = 0})
          assert.is_true(tb:wait(2))
          local n, _, b1 = timed_tokens(rt, tb)
          assert.is_true(b1 - a0 >= 0.02 - EPS, "waited " .. (b1 - a0))
          within(n, 0, 100 * (b1 - a0) - 2)
        end)
      end)

      it("(timeout) returns true when the tokens come in time", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{capacity = 10, rate = 100, tokens = 0}
          assert.is_true(tb:wait(1, LONG))
        end)
      end)

      it("(timeout) returns false and takes none when they do not", function()
        H.run(rt, function()
          local tb, a0, a1 = timed_bucket(rt, {capacity = 10, rate = 1, tokens = 0})
          assert.is_false(tb:wait(1, SHORT))
          assert.is_false(tb:wait(5, 0))
          local n, b0, b1 = timed_tokens(rt, tb)
          within(n, 1 * (b0 - a1), 1 * (b1 - a0))
        end)
      end)

      it("lets other threads run while it waits", function()
        H.run(rt, function()
          local tb = rt.TokenBucket{capacity = 1, rate = 1e-3, tokens = 0}
          local waiter = rt.spawn(function() return tb:wait(1, LONG) end)
          local other = rt.spawn(function() return "ran" end)
          assert.are.same({true, "ran"}, {other:join(LONG)})
          assert.is_true(waiter:is_alive())
          waiter:cancel()
          waiter:join(LONG)
        end)
      end)
    end)
  end)
end
