-- rt.RemoteQueue (API.md, "Beyond one machine: Redis"): the Queue API on a
-- Redis stream, on both runtimes and across processes, against the private
-- redis-server that make test starts.
local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local duet = require "duet"
local redis = require "duet.redis"
local H = require "helpers"
local R = require "redis_helpers"

local function strip(e) return (tostring(e):gsub("^.-:%d+: ", "", 1)) end

for _, name in ipairs{ "threads", "coroutines" } do
  local rt = duet.runtime(name)
  describe(name .. ": rt.RemoteQueue", function()
    local function newq(extra)
      local o = { redis = R.url(), name = R.unique("q") }
      for k, v in pairs(extra or {}) do o[k] = v end
      return rt.RemoteQueue(o), o
    end

    it("gives items back first in, first out, to any object of the same name", function()
      H.run(rt, function()
        local q, o = newq()
        local other = rt.RemoteQueue{ redis = o.redis, name = o.name }
        for i = 1, 5 do assert.is_true(q:put(i)) end
        assert.is_true(q:put({ k = "v", 1.5 }))
        assert.equal(6, other:size())
        for i = 1, 5 do assert.equal(i, other:get()) end
        assert.same({ k = "v", 1.5 }, q:get())
        assert.is_true(q:empty())
      end)
    end)

    it("times out without changing anything", function()
      H.run(rt, function()
        local q = newq{ maxsize = 2 }
        assert.equal(2, q.maxsize)
        assert.equal(math.type(2), math.type(newq{ maxsize = 2.0 }.maxsize))  -- 2.0 is 2
        assert.same({ nil, "empty" }, { q:get(H.SHORT) })
        assert.same({ nil, "empty" }, { q:get_nowait() })
        assert.is_true(q:put("a"))
        assert.is_true(q:put("b"))
        assert.is_true(q:full())
        assert.same({ nil, "full" }, { q:put("c", H.SHORT) })
        assert.same({ nil, "full" }, { q:put_nowait("c") })
        assert.same({ nil, "full" }, { q:put_many({ "c" }, 0) })
        assert.equal(2, q:size())
        assert.same({ "a", "b" }, q:get_many(10))
      end)
    end)

    it("points a server's error at the user's line, not at duet's", function()
      H.run(rt, function()
        local q, o = newq()
        local c = redis.connect(o.redis)
        local key = "duet:{" .. o.name .. "}:items"
        c:call("DEL", key)
        c:call("SET", key, "not a stream")
        local line = debug.getinfo(1, "l").currentline
        local ok, e = pcall(function() return q:put(1) end)
        assert.is_false(ok)
        assert.matches("^spec/redis_queue_spec%.lua:" .. (line + 1) .. ": redis: .*WRONGTYPE", e)
        c:call("DEL", key)
      end)
    end)

    it("puts many all or nothing and gets up to max", function()
      H.run(rt, function()
        local q = newq()
        assert.is_true(q:put_many({ 1, 2, 3, n = 3 }))
        assert.is_true(q:put_many({}))
        q:close()   -- then even an empty list is a put on a closed queue
        local ok, e = pcall(function() return q:put_many({}) end)
        assert.is_false(ok)
        assert.equal("put on a closed queue", strip(e))
        assert.same({ 1, 2 }, q:get_many(2))
        assert.same({ 3 }, q:get_many(5))
      end)
    end)

    it("wakes a waiting getter when an item arrives", function()
      H.run(rt, function()
        local q, o = newq()
        -- the getter runs in its own thread (threads runtime) with a queue
        -- object made there from the same name
        local g = rt.spawn(function(rtname, url, qname)
          local r = require("duet").runtime(rtname)
          local mine = r.RemoteQueue{ redis = url, name = qname }
          return mine:get(10)
        end, name, o.redis, o.name)
        q:put("wake")
        local ok, v = g:join(10)
        assert.is_true(ok)
        assert.equal("wake", v)
      end)
    end)

    it("drains after close, then answers nil, 'closed'; puts raise", function()
      H.run(rt, function()
        local q = newq()
        q:put(1)
        q:put(2)
        q:close()
        q:close()
        assert.equal("put on a closed queue", strip(select(2, pcall(q.put, q, 3))))
        local seen = {}
        for item in q:iter() do seen[#seen + 1] = item end
        assert.same({ 1, 2 }, seen)
        assert.same({ nil, "closed" }, { q:get() })
      end)
    end)

    it("hands on an item whose getter died before acknowledging it", function()
      H.run(rt, function()
        local q, o = newq{ visibility_timeout = 0.05 }
        q:put("survivor")
        q:put("next")
        -- a getter that read the first item and died: read in the queue's
        -- consumer group, never acknowledged
        local c = redis.connect(o.redis)
        local got = c:call("XREADGROUP", "GROUP", "getters", "dead-getter", "COUNT", 1,
          "STREAMS", "duet:{" .. o.name .. "}:items", ">")
        assert.equal(1, #got[1][2])
        c:close()
        -- once it has been pending for visibility_timeout, a get takes it
        H.wait_until(rt, function()
          local r = redis.connect(o.redis)
          local p = r:call("XPENDING", "duet:{" .. o.name .. "}:items", "getters",
            "IDLE", 60, "-", "+", 10)
          r:close()
          return #p > 0
        end)
        assert.equal("survivor", q:get(H.LONG))
        assert.equal("next", q:get(H.LONG))
      end)
    end)

    it("sets an unreadable item aside in the dead stream and keeps flowing", function()
      H.run(rt, function()
        local q, o = newq()
        local c = redis.connect(o.redis)
        c:call("XADD", "duet:{" .. o.name .. "}:items", "*", "v", "\1garbage")
        q:put("after")
        assert.equal("after", q:get(H.LONG))
        local dead = c:call("XRANGE", "duet:{" .. o.name .. "}:dead", "-", "+")
        assert.equal(1, #dead)
        local f = {}
        for i = 1, #dead[1][2], 2 do f[dead[1][2][i]] = dead[1][2][i + 1] end
        assert.equal("\1garbage", f.v)
        assert.is_string(f.error)
        c:close()
      end)
    end)

    it("refuses bad arguments and assignment, changing nothing", function()
      H.run(rt, function()
        local q = newq{ maxsize = 3 }
        for _, case in ipairs{
          { function() return rt.RemoteQueue() end,
            "bad argument #1 to 'RemoteQueue' (table expected, got no value)" },
          { function() return rt.RemoteQueue{ name = "x" } end,
            "bad argument #1 to 'RemoteQueue' (field 'redis': string expected, got no value)" },
          { function() return rt.RemoteQueue{ redis = "nope", name = "x" } end,
            "bad argument #1 to 'RemoteQueue' (field 'redis': invalid Redis URL 'nope': expected redis://[user:password@]host[:port][/db])" },
          { function() return rt.RemoteQueue{ redis = R.url() } end,
            "bad argument #1 to 'RemoteQueue' (field 'name': string expected, got no value)" },
          { function() return rt.RemoteQueue{ redis = R.url(), name = "x", maxsize = "3" } end,
            "bad argument #1 to 'RemoteQueue' (field 'maxsize': integer expected, got string)" },
          { function() return rt.RemoteQueue{ redis = R.url(), name = "x", maxsize = 2.5 } end,
            "bad argument #1 to 'RemoteQueue' (field 'maxsize': integer expected, got number)" },
          { function() return q:put(nil) end, "bad argument #1 to 'put' (non-nil value expected)" },
          { function() return q:put(print) end, "bad argument #1 to 'put' (...)" },
          { function() return q:put_many({ 1, 2, 3, 4 }) end,
            "bad argument #1 to 'put_many' (more items than maxsize)" },
          { function() return q:put_many({ 1, n = 1.5 }) end,
            "bad argument #1 to 'put_many' (field 'n' must be a non-negative integer)" },
          { function() return q:put_many({ 1, n = -1 }) end,
            "bad argument #1 to 'put_many' (field 'n' must be a non-negative integer)" },
          { function() return q:get_many(0) end,
            "bad argument #1 to 'get_many' (max must be at least 1)" },
          { function() q.maxsize = 10 end, "field 'maxsize' is read-only" },
        } do
          local ok, e = pcall(case[1])
          assert.is_false(ok)
          assert.is_true(H.message_fits(strip(e), case[2]), strip(e))
        end
        assert.equal(0, q:size())
        assert.equal(3, q.maxsize)
      end)
    end)
  end)
end

-- #notsan: the producers are child processes, started by /bin/sh, which
-- TSan's preload crashes.
describe("rt.RemoteQueue across processes #notsan", function()
  it("carries every item from two producer processes to this one", function()
    local rt = duet.threads
    local qname = R.unique("procs")
    local code = ([[
      local rt = require("duet").threads
      local q = rt.RemoteQueue{ redis = %q, name = %q }
      for i = 1, 200 do q:put({ who = %q, i = i }) end
    ]])
    local q = rt.RemoteQueue{ redis = R.url(), name = qname }
    local children = {}
    for _, who in ipairs{ "a", "b" } do
      children[#children + 1] = R.start_child(code:format(R.url(), qname, who))
    end
    local last, n = { a = 0, b = 0 }, 0
    while n < 400 do
      local items = assert(q:get_many(100, H.LONG * 4))
      for _, it in ipairs(items) do
        -- each producer's items arrive in its order
        assert.equal(last[it.who] + 1, it.i)
        last[it.who] = it.i
        n = n + 1
      end
    end
    for _, ch in ipairs(children) do
      local code, out = R.wait_child(ch)
      assert.equal(0, code, out)
    end
    assert.same({ a = 200, b = 200 }, last)
    assert.same({ nil, "empty" }, { q:get(0) })
  end)
end)
