-- Regression (issue 15, item 4, for the Redis objects): a RemoteExecutor,
-- a redis Connection and a Redis TokenBucket are plain tables, and any
-- assignment was taken: `ex.submit = 5` hid the method. They now refuse
-- as every duet object does.
local duet = require "duet"
local redis = require "duet.redis"
local H = require "helpers"
local R = require "redis_helpers"

for _, name in ipairs { "threads", "coroutines" } do
  local rt = duet[name]
  describe("regression: Redis objects' fields (" .. name .. ")", function()
    it("refuse assignment, and keep working", function()
      H.run(rt, function()
        local conn = redis.connect(R.url())
        local tb = rt.TokenBucket{ redis = R.url(), key = R.unique("tb"), capacity = 2, rate = 1e-6 }
        local ex = rt.RemoteExecutor{ redis = R.url(), queue = R.unique("ex") }
        for _, o in ipairs { { conn, "call", "duet.redis.Connection" },
                             { tb, "take", "duet.TokenBucket" },
                             { ex, "submit", "duet.RemoteExecutor" } } do
          local obj, method, tname = o[1], o[2], o[3]
          assert.matches("field '" .. method .. "' is read%-only",
            H.errmsg(function() obj[method] = 5 end))
          assert.matches("cannot set field 'colour' of " .. tname:gsub("%.", "%%."),
            H.errmsg(function() obj.colour = "red" end))
          assert.is_nil(rawget(obj, "colour"))
          assert.are.equal("function", type(obj[method]))
        end
        assert.are.equal("PONG", conn:call("PING"))
        assert.is_true(tb:take(1))
        ex:shutdown{ wait = false }
        conn:close()
      end)
    end)
  end)
end
