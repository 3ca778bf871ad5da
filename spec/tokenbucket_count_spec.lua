-- The arithmetic both runtimes' TokenBuckets count with: csrc/tokenbucket.c
-- (duet.core.bucket_refill/bucket_due) and its twin in the coroutines
-- bucket, which must give the same results.
-- A waiter sleeps until the due time and refills then; on a virtual clock
-- (seeded preemption) it wakes at exactly that time, so the refill must
-- find what due() promised, or the wait would spin at one instant forever.
local core = require "duet.core"
local refill, due = core.bucket_refill, core.bucket_due
local lua_bucket = require "duet.coroutines.tokenbucket"

-- Wake at each due time, as a virtual clock would, until n are there;
-- the number of wakes (nil: more than `limit`).
local function wakes(b, n, limit)
  local now = b.t
  for i = 1, limit do
    b.tokens, b.t = refill(b.tokens, b.t, b.cap, b.rate, b.refill, b.period, now)
    if b.tokens >= n then return i - 1 end
    local at = due(b.tokens, b.t, b.cap, b.rate, b.refill, b.period, now, n)
    assert.is_true(at > now, "due at " .. at .. ", not after " .. now)
    now = at
  end
end

describe("TokenBucket counting", function()
  it("a continuous bucket's waiter gets its tokens within a few wakes, at any time", function()
    for i = 0, 2000 do
      local t = 41189.574318462 + i * 0.00137
      local b = { tokens = 0, t = t, cap = 10, rate = 100, refill = 0, period = 0 }
      local w = wakes(b, 2, 10)
      assert.is_truthy(w, "t = " .. t)
      assert.is_true(b.t >= t + 0.02 * (1 - 1e-9))
    end
  end)

  it("a discrete bucket's waiter gets its refill at the first wake, at any time", function()
    for i = 0, 2000 do
      local t = 41189.574318462 + i * 0.00137
      local b = { tokens = 0, t = t, cap = 10, rate = 0, refill = 2, period = 0.02 }
      assert.are.equal(1, wakes(b, 2, 10), "t = " .. t)
      assert.are.equal(2, b.tokens)
    end
  end)

  it("counts in the coroutines bucket exactly as in C", function()
    local forms = {
      { cap = 10, rate = 100, refill = 0, period = 0 },
      { cap = 10, rate = 0, refill = 2, period = 0.02 },
      { cap = 3.5, rate = 0, refill = 0.7, period = 1 / 3 },
      { cap = 1e6, rate = 1 / 7, refill = 0, period = 0 },
    }
    for _, f in ipairs(forms) do
      for i = 0, 500 do
        local t = 41189.574318462 + i * 0.00137
        local now = t + (i % 7) * f.cap / 9 * (f.period > 0 and f.period or 1 / f.rate)
        local tokens = (i % 5) / 4 * f.cap
        local self = { _tokens = tokens, _t = t, _cap = f.cap, _rate = f.rate,
                       _refill = f.refill, _period = f.period }
        lua_bucket._refill(self, now)
        local ct, ctt = refill(tokens, t, f.cap, f.rate, f.refill, f.period, now)
        assert.are.equal(ct, self._tokens)
        assert.are.equal(ctt, self._t)
        local n = f.cap
        if self._tokens < n then
          assert.are.equal(due(ct, ctt, f.cap, f.rate, f.refill, f.period, now, n),
                           lua_bucket._due(self, n, now))
        end
      end
    end
  end)

  it("counts whole periods only, and never past the capacity", function()
    local tokens, t = refill(0, 10, 5, 0, 2, 0.02, 10.05)
    assert.are.equal(4, tokens)                 -- two periods, an integer
    assert.are.equal(10.04, t)
    tokens = refill(3, 10, 5, 0, 2, 0.02, 20)
    assert.are.equal(5, tokens)
    tokens, t = refill(3, 10, 5, 0, 2, 0.02, 9) -- an older reading adds none
    assert.are.equal(3, tokens)
    assert.are.equal(10, t)
  end)
end)
