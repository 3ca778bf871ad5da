-- rt.TokenBucket{redis = url, key = name, ...} (API.md, "Beyond one
-- machine: Redis"): one bucket in Redis shared by every process, on both
-- runtimes, against the private redis-server that make test starts.
-- Counts are checked against the server's own clock (TIME, the clock the
-- bucket's script refills from), never against fixed timings.
local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local duet = require "duet"
local redis = require "duet.redis"
local H = require "helpers"
local R = require "redis_helpers"

local function strip(e) return (tostring(e):gsub("^.-:%d+: ", "", 1)) end

local function server_time(c)
  local t = c:call("TIME")
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end

for _, name in ipairs{ "threads", "coroutines" } do
  local rt = duet.runtime(name)
  describe(name .. ": a Redis TokenBucket", function()
    it("takes what it holds and refuses the rest, as the local bucket", function()
      H.run(rt, function()
        local key = R.unique("tb")
        -- a slow refill: nothing noticeable comes back during the case
        local tb = rt.TokenBucket{ redis = R.url(), key = key, capacity = 3, rate = 1e-6 }
        assert.is_true(tb:take())
        assert.is_true(tb:take(2))
        assert.is_false(tb:take())
        assert.is_false(tb:wait(1, H.SHORT))
        assert.is_true(tb:tokens() < 1)
        -- another object with the same key is the same bucket
        local same = rt.TokenBucket{ redis = R.url(), key = key, capacity = 3, rate = 1e-6 }
        assert.is_false(same:take())
      end)
    end)

    it("starts with `tokens` and refills at `rate` (discrete form too)", function()
      H.run(rt, function()
        local tb = rt.TokenBucket{ redis = R.url(), key = R.unique("tb"), capacity = 5,
          rate = 1000, tokens = 0 }
        assert.is_true(tb:wait(5, H.LONG))
        local d = rt.TokenBucket{ redis = R.url(), key = R.unique("tb"), max_tokens = 2,
          refill_tokens = 2, refill_period = 0.01, tokens = 0 }
        assert.is_false(d:take(1))
        assert.is_true(d:wait(2, H.LONG))
      end)
    end)

    it("comes back full once its key has gone, as after expiring when full", function()
      H.run(rt, function()
        local key = R.unique("tb")
        local tb = rt.TokenBucket{ redis = R.url(), key = key, capacity = 2, rate = 1e-6,
          tokens = 0 }
        assert.is_false(tb:take())   -- a new bucket starts with `tokens`
        local c = redis.connect(R.url())
        c:call("DEL", "duet:bucket:{" .. key .. "}")   -- what expiry does
        c:close()
        assert.is_true(tb:take(2))
      end)
    end)

    it("refuses bad arguments, taking nothing", function()
      H.run(rt, function()
        local tb = rt.TokenBucket{ redis = R.url(), key = R.unique("tb"), capacity = 2,
          rate = 1e-6 }
        for _, case in ipairs{
          { function() return rt.TokenBucket{ redis = R.url(), capacity = 1, rate = 1 } end,
            "bad argument #1 to 'TokenBucket' (field 'key': string expected, got no value)" },
          { function() return rt.TokenBucket{ redis = "x", key = "k", capacity = 1, rate = 1 } end,
            "bad argument #1 to 'TokenBucket' (field 'redis': invalid Redis URL 'x': expected redis://[user:password@]host[:port][/db])" },
          { function() return rt.TokenBucket{ redis = R.url(), key = "k", capacity = 0, rate = 1 } end,
            "bad argument #1 to 'TokenBucket' (field 'capacity' must be positive)" },
          { function() return tb:take(3) end,
            "bad argument #1 to 'take' (n exceeds the bucket's capacity)" },
          { function() return tb:take(-1) end, "bad argument #1 to 'take' (n must be positive)" },
          { function() return tb:wait(1, "soon") end, "bad argument #2 to 'wait' (...)" },
        } do
          local ok, e = pcall(case[1])
          assert.is_false(ok)
          assert.is_true(H.message_fits(strip(e), case[2]), strip(e))
        end
        assert.is_true(tb:take(2))
      end)
    end)
  end)
end

-- #notsan: child processes, started by /bin/sh, which TSan's preload crashes.
describe("a Redis TokenBucket shared by 4 processes #notsan", function()
  it("never grants more than capacity + rate * elapsed", function()
    local key = R.unique("shared")
    local capacity, rate = 20, 200
    local c = redis.connect(R.url(), { runtime = duet.threads })
    local code = ([[
      local rt = require("duet").runtime(%q)
      local n = rt.run(function()
        local tb = rt.TokenBucket{ redis = %q, key = %q, capacity = %d, rate = %d }
        local got = 0
        for _ = 1, 150 do
          if tb:take() then got = got + 1 end
        end
        -- and a few waits, which must end with a grant
        for _ = 1, 5 do assert(tb:wait(1, 30)); got = got + 1 end
        return got
      end)
      io.write(n)
    ]])
    local t0 = server_time(c)
    local children = {}
    for i = 1, 4 do
      local rtname = i % 2 == 0 and "coroutines" or "threads"
      children[i] = R.start_child(code:format(rtname, R.url(), key, capacity, rate))
    end
    local total = 0
    for i = 1, 4 do
      local status, out = R.wait_child(children[i], 60)
      assert.equal(0, status, out)
      local n = assert(tonumber(out), out)
      assert.is_true(n >= 5)                      -- its waits were granted
      total = total + n
    end
    local elapsed = server_time(c) - t0
    assert.is_true(total <= capacity + rate * elapsed + 1e-9,
      ("granted %d in %.3f s, at most %.1f allowed"):format(total, elapsed,
        capacity + rate * elapsed))
    c:close()
  end)
end)
