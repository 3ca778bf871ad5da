-- duet.redis: the client (API.md, "Beyond one machine: Redis"), against the
-- private redis-server that make test starts (spec/redis_server.sh), on
-- both runtimes. Nothing is mocked.
local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local duet = require "duet"
local redis = require "duet.redis"
local H = require "helpers"
local R = require "redis_helpers"

local function strip(e) return (tostring(e):gsub("^.-:%d+: ", "", 1)) end

describe("duet.redis.connect", function()
  it("refuses what is not a redis:// URL, with a bad argument error", function()
    for _, case in ipairs{
      { nil, "bad argument #1 to 'connect' (string expected, got no value)" },
      { 42, "bad argument #1 to 'connect' (string expected, got number)" },
      { "http://localhost", "bad argument #1 to 'connect' (invalid Redis URL 'http://localhost': expected redis://[user:password@]host[:port][/db])" },
      { "redis://h:99999/0", "bad argument #1 to 'connect' (invalid Redis URL 'redis://h:99999/0': port out of range)" },
      { "redis://", "bad argument #1 to 'connect' (invalid Redis URL 'redis://': expected redis://[user:password@]host[:port][/db])" },
    } do
      local ok, e = pcall(redis.connect, case[1])
      assert.is_false(ok)
      assert.equal(case[2], strip(e))
    end
  end)

  it("reads user, password, host, port and db from the URL", function()
    assert.same({ host = "h", port = 6379, db = 0 }, redis.parse_url("redis://h"))
    assert.same({ host = "10.0.0.1", port = 7000, db = 3, password = "pw" },
      redis.parse_url("redis://pw@10.0.0.1:7000/3"))
    assert.same({ host = "h", port = 1, db = 0, user = "u", password = "p:q" },
      redis.parse_url("redis://u:p:q@h:1"))
  end)

  it("reports an unreachable server once its retry time is over", function()
    -- a port nobody listens on: bind one, note it, close it
    local socket = require "socket"
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    local ok, e = pcall(redis.connect, ("redis://127.0.0.1:%d"):format(port),
      { retry_for = 0.1, runtime = duet.threads })
    assert.is_false(ok)
    assert.matches(("redis: cannot reach 127.0.0.1:%d: "):format(port), e, 1, true)
  end)
end)

for _, name in ipairs{ "threads", "coroutines" } do
  local rt = duet.runtime(name)
  describe(name .. ": a duet.redis connection", function()
    it("sends commands and reads each kind of reply", function()
      H.run(rt, function()
        local c = redis.connect(R.url())
        local k = R.unique("client")
        assert.equal("PONG", c:call("PING"))
        assert.equal("OK", c:call("SET", k, "v\0with nul"))
        assert.equal("v\0with nul", c:call("GET", k))
        assert.is_nil(c:call("GET", k .. "-none"))
        assert.equal(3, c:call("RPUSH", k .. "-l", "a", 2, 3.5))
        assert.same({ "a", "2", "3.5" }, c:call("LRANGE", k .. "-l", 0, -1))
        assert.equal(2, c:call("DEL", k, k .. "-l"))
        c:close()
      end)
    end)

    it("raises an error reply as 'redis: MESSAGE' and stays usable", function()
      H.run(rt, function()
        local c = redis.connect(R.url())
        local k = R.unique("wrongtype")
        c:call("SET", k, "x")
        local ok, e = pcall(c.call, c, "LPUSH", k, "y")
        assert.is_false(ok)
        assert.matches("^redis: WRONGTYPE", strip(e))
        ok, e = pcall(c.call, c, "NOSUCHCOMMAND")
        assert.is_false(ok)
        assert.matches("^redis: ERR unknown command", strip(e))
        local line = debug.getinfo(1, "l").currentline
        ok, e = pcall(function() return c:eval("return redis.call('LPUSH', KEYS[1], 'y')", { k }) end)
        assert.is_false(ok)
        assert.matches("^spec/redis_client_spec%.lua:" .. (line + 1) .. ": redis: .*WRONGTYPE", e)
        assert.equal("x", c:call("GET", k))
        c:call("DEL", k)
        c:close()
      end)
    end)

    it("checks call's arguments and a closed connection", function()
      H.run(rt, function()
        local c = redis.connect(R.url())
        assert.equal("bad argument #1 to 'call' (string expected, got no value)",
          strip(select(2, pcall(c.call, c))))
        assert.equal("bad argument #3 to 'call' (string or number expected, got table)",
          strip(select(2, pcall(c.call, c, "SET", "k", {}))))
        c:close()
        c:close()
        assert.equal("attempt to use a closed connection",
          strip(select(2, pcall(c.call, c, "PING"))))
      end)
    end)

    it("pipelines commands, an error reply in place", function()
      H.run(rt, function()
        local c = redis.connect(R.url())
        local k = R.unique("pipe")
        local r = c:pipeline{ { "SET", k, "1" }, { "INCR", k }, { "LPUSH", k, "x" },
          { "GET", k } }
        assert.equal("OK", r[1])
        assert.equal(2, r[2])
        assert.matches("^WRONGTYPE", r[3].err)
        assert.equal("2", r[4])
        assert.same({}, c:pipeline{})
        c:call("DEL", k)
        c:close()
      end)
    end)

    it("runs a server-side script, loading it again after SCRIPT FLUSH", function()
      H.run(rt, function()
        local c = redis.connect(R.url())
        local script = "return {KEYS[1], ARGV[1], #ARGV}"
        assert.same({ "a", "b", 2 }, c:eval(script, { "a" }, { "b", "c" }))
        c:call("SCRIPT", "FLUSH")
        assert.same({ "x", "y", 1 }, c:eval(script, { "x" }, { "y" }))
        c:close()
      end)
    end)

    it("selects the URL's database", function()
      H.run(rt, function()
        local k = R.unique("db")
        local c1 = redis.connect(R.url_db(1))
        local c0 = redis.connect(R.url_db(0))
        c1:call("SET", k, "one")
        assert.is_nil(c0:call("GET", k))
        assert.equal("one", c1:call("GET", k))
        c1:call("DEL", k)
        c0:close()
        c1:close()
      end)
    end)

    it("logs in with the URL's user and password, and refuses a wrong one", function()
      H.run(rt, function()
        local admin = redis.connect(R.url())
        local user = R.unique("user")
        admin:call("ACL", "SETUSER", user, "on", ">s3cret", "~*", "+@all")
        local url = R.url():gsub("^redis://", "redis://" .. user .. ":s3cret@")
        local c = redis.connect(url)
        assert.equal(user, c:call("ACL", "WHOAMI"))
        c:close()
        local bad = R.url():gsub("^redis://", "redis://" .. user .. ":wrong@")
        local ok, e = pcall(redis.connect, bad)
        assert.is_false(ok)
        assert.matches("^redis: WRONGPASS", strip(e))
        admin:call("ACL", "DELUSER", user)
        admin:close()
      end)
    end)

    it("reconnects when the server drops the connection", function()
      H.run(rt, function()
        local c = redis.connect(R.url())
        local id = c:call("CLIENT", "ID")
        local admin = redis.connect(R.url())
        assert.equal(1, admin:call("CLIENT", "KILL", "ID", id))
        assert.equal("PONG", c:call("PING"))
        assert.are_not.equal(id, c:call("CLIENT", "ID"))
        admin:close()
        c:close()
      end)
    end)

    it("blocks only its own " .. (name == "threads" and "thread" or "task")
      .. " while it waits for a reply", function()
      H.run(rt, function()
        local k = R.unique("blocking")
        -- the waiter's BLPOP can only return once the other side has run
        -- and pushed: the push is what it waits for
        local waiter = rt.spawn(function(url, key)
          local c = require("duet.redis").connect(url)
          local r = c:call("BLPOP", key, 10)
          c:close()
          return r and r[2]
        end, R.url(), k)
        local c = redis.connect(R.url())
        -- wait until the waiter is really blocked in Redis, then push
        H.wait_until(rt, function()
          return c:call("CLIENT", "LIST"):find("cmd=blpop", 1, true)
        end)
        c:call("RPUSH", k, "hello")
        local ok, v = waiter:join(10)
        assert.is_true(ok)
        assert.equal("hello", v)
        c:close()
      end)
    end)
  end)
end

-- #notsan: restarting the server runs /bin/sh, which TSan's preload crashes.
describe("duet.redis and a server restart #notsan", function()
  for _, name in ipairs{ "threads", "coroutines" } do
    it(name .. ": a connection reconnects and the data is still there", function()
      local rt = duet.runtime(name)
      H.run(rt, function()
        local c = redis.connect(R.url())
        local k = R.unique("restart")
        c:call("SET", k, "kept")
        local run_id = c:call("INFO", "server"):match("run_id:(%x+)")
        R.restart_server()
        assert.equal("kept", c:call("GET", k))
        assert.are_not.equal(run_id, c:call("INFO", "server"):match("run_id:(%x+)"))
        c:call("DEL", k)
        c:close()
      end)
    end)
  end
end)

describe("duet.redis.pack / unpack (the portable codec)", function()
  it("carries nil, booleans, integers, floats, strings and tables", function()
    local t = { 1, "two", 3.5, true, nested = { k = false, [10] = -7 } }
    local r = table.pack(redis.unpack(redis.pack(1, nil, "s\0x", t, math.mininteger, 0.1)))
    assert.equal(6, r.n)
    assert.equal(1, r[1])
    assert.equal("integer", math.type(r[1]))
    assert.is_nil(r[2])
    assert.equal("s\0x", r[3])
    assert.same(t, r[4])
    assert.equal(math.mininteger, r[5])
    assert.equal(0.1, r[6])
  end)

  it("writes a version byte and big-endian numbers", function()
    assert.equal("\1\0\0\0\1\3\0\0\0\0\0\0\1\2", redis.pack(258))
  end)

  it("refuses functions, userdata, coroutines and cycles", function()
    for _, v in ipairs{ print, io.stdout, coroutine.create(print) } do
      assert.is_false(pcall(redis.pack, v))
    end
    local cyc = {}
    cyc.self = cyc
    assert.is_false(pcall(redis.pack, cyc))
  end)

  it("raises on malformed or foreign bytes, never crashes", function()
    local good = redis.pack({ 1, 2, 3 }, "x")
    for i = 0, #good - 1 do
      local ok = pcall(redis.unpack, good:sub(1, i))
      assert.is_false(ok, "a message cut to " .. i .. " bytes was accepted")
    end
    assert.is_false(pcall(redis.unpack, "\2" .. good:sub(2)))  -- a future version
  end)
end)
