-- SharedTable in the threads runtime: a table in C that every thread
-- reaches by reference. What only OS threads show: values moved between
-- Lua states, atomic incr/update under real parallelism, the race of an
-- unlocked read-modify-write, methods vs data keys. The behaviour both
-- runtimes share is in spec/conformance/sharedtable.lua.
local H = require "helpers"
local rt = require "duet.threads"
local LONG = H.LONG
-- Thread targets are copied into their thread's own Lua state. They use
-- only locals, never globals: a busted spec file's globals are its private
-- environment, which is no table a thread could share.
local math, string, tostring = math, string, tostring

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Run fn(i) in n threads at once; returns their first results.
local function in_threads(n, fn)
  local threads, results = {}, {}
  for i = 1, n do threads[i] = rt.spawn(fn, i) end
  for i = 1, n do
    local ok, v = threads[i]:join(LONG)
    assert(ok, tostring(v))
    results[i] = v
  end
  return results
end

describe("threads SharedTable", function()
  describe("keys", function()
    it("normalize floats with an integral value to integers, as Lua does", function()
      H.run(rt, function()
        local t = rt.SharedTable()
        t[1.0] = "one"
        t[2] = "two"
        t[-0.0] = "zero"
        assert.are.equal("one", t[1])
        assert.are.equal("two", t[2.0])
        assert.are.equal("zero", t[0])
        assert.are.equal(2, #t)
        for k in pairs(t) do assert.are.equal("integer", math.type(k)) end
        t[2^63] = "float key"   -- outside the integers: stays a float
        assert.are.equal("float key", t[2^63])
        assert.are.equal("float", math.type(next(rt.SharedTable{[2^63] = 1}:snapshot())))
      end)
    end)

    it("keep strings with any bytes, and booleans, apart from their text", function()
      H.run(rt, function()
        local t = rt.SharedTable()
        t["a\0b"], t.a, t[true], t["true"], t["1"], t[1] = 1, 2, 3, 4, 5, 6
        assert.are.same({["a\0b"] = 1, a = 2, [true] = 3, ["true"] = 4,
                         ["1"] = 5, [1] = 6}, t:snapshot())
      end)
    end)

    it("that cannot be keys read as nil and raise exact errors when written", function()
      H.run(rt, function()
        local t = rt.SharedTable{a = 1}
        assert.is_nil(t[{}])
        assert.is_nil(t[print])
        assert.is_nil(t[0/0])
        assert.is_nil(t[nil])
        assert.has_error(function() t[{}] = 1 end,
          "bad argument #2 to 'newindex' (string, number or boolean key expected, got table)")
        assert.has_error(function() t[nil] = 1 end,
          "bad argument #2 to 'newindex' (string, number or boolean key expected, got nil)")
        assert.has_error(function() t[0/0] = 1 end,
          "bad argument #2 to 'newindex' (key is NaN)")
        assert.has_error(function() rt.SharedTable{[print] = 1} end,
          "bad argument #1 to 'SharedTable' (string, number or boolean key expected, got function)")
        assert.are.same({a = 1}, t:snapshot())
      end)
    end)

    it("survive growth to many thousands of keys and their deletion", function()
      H.run(rt, function()
        local t = rt.SharedTable()
        for i = 1, 5000 do t[i] = i; t["k" .. i] = -i end
        assert.are.equal(5000, #t)
        assert.are.equal(10000, count(t))
        for i = 1, 5000, 2 do t[i] = nil; t["k" .. i] = nil end
        assert.are.equal(5000, count(t))
        assert.are.equal(-4000, t.k4000)
        assert.is_nil(t.k3999)
      end)
    end)
  end)

  describe("values", function()
    it("of every transferable kind round-trip, through another thread too", function()
      H.run(rt, function()
        local q = rt.Queue()
        local cyc = {}
        cyc.me = cyc
        local up = 5
        local t = rt.SharedTable{
          i = math.mininteger, f = 0.1, s = ("x"):rep(100), short = "s",
          b = false, tab = {1, {2}, k = "v"}, cyc = cyc,
          fn = function(x) return x * up end, fmt = string.format, q = q,
          meta = setmetatable({}, {__index = function() return "dflt" end}),
        }
        local th = rt.spawn(function()
          local c = t.cyc
          return math.type(t.i), t.f, #t.s, t.short, t.b, t.tab[2][1],
                 c.me == c, t.fn(3), t.fmt("%02d", 4), t.q == q,
                 t.meta.anything
        end)
        assert.are.same({true, "integer", 0.1, 100, "s", false, 2, true, 15,
                         "04", true, "dflt"}, {th:join(LONG)})
        assert.are.equal(q, t.q)
        local c = t.cyc
        assert.are.equal(c, c.me)
      end)
    end)

    it("are copies: changing a table read from t does not change t", function()
      H.run(rt, function()
        local t = rt.SharedTable{tab = {1}}
        local copy = t.tab
        copy[1] = 99
        assert.are.equal(1, t.tab[1])
        assert.are_not.equal(t.tab, t.tab)   -- a fresh copy each read
      end)
    end)

    it("that cannot move raise naming where they sit and change nothing", function()
      H.run(rt, function()
        local t = rt.SharedTable{x = 1}
        assert.has_error(function() t.x = coroutine.create(print) end,
          "cannot move coroutine at value")
        assert.has_error(function() t.y = {log = io.stdout} end,
          "cannot move userdata (FILE*) at value.log")
        assert.are.same({x = 1}, t:snapshot())
      end)
    end)

    it("may be SharedTables nested to any depth, all by reference", function()
      H.run(rt, function()
        local root = rt.SharedTable{a = rt.SharedTable{b = rt.SharedTable{c = 0}}}
        in_threads(4, function()
          for _ = 1, 100 do root.a.b:incr("c") end
        end)
        assert.are.equal(400, root.a.b.c)
        root.self = root       -- a cycle of references: fine while alive
        assert.are.equal(root, root.self.self)
        root.self = nil        -- (a cycle left in place would never be freed)
      end)
    end)
  end)

  describe("#t", function()
    it("is a border, like Lua's, while the sequence grows and shrinks", function()
      H.run(rt, function()
        local t = rt.SharedTable()
        for i = 1, 100 do
          t[#t + 1] = i
          assert.are.equal(i, #t)
        end
        for i = 100, 51, -1 do
          t[#t] = nil
          assert.are.equal(i - 1, #t)
        end
        t[80] = true           -- not a border any more than Lua's would be
        local n = #t
        assert.is_true(n == 50 or n == 80)
        assert.is_nil(t[n + 1])
        assert.is_true(n == 0 or t[n] ~= nil)
      end)
    end)

    it("is 0 when t[1] is missing", function()
      H.run(rt, function()
        assert.are.equal(0, #rt.SharedTable{[2] = 2, x = 1})
      end)
    end)
  end)

  describe("pairs(t)", function()
    it("iterates a snapshot taken when the loop starts", function()
      H.run(rt, function()
        local t = rt.SharedTable{a = 1, b = 2, c = 3}
        local seen = {}
        for k, v in pairs(t) do
          seen[k] = v
          t[k] = nil           -- deleting and adding while iterating
          t[k .. k] = v        -- neither breaks nor extends the loop
        end
        assert.are.same({a = 1, b = 2, c = 3}, seen)
        assert.are.same({aa = 1, bb = 2, cc = 3}, t:snapshot())
      end)
    end)
  end)

  describe(":incr()", function()
    it("keeps integers integers and does float arithmetic like Lua", function()
      H.run(rt, function()
        local t = rt.SharedTable{i = 1, f = 1.5}
        assert.are.equal("integer", math.type(t:incr("i")))
        assert.are.equal("integer", math.type(t:incr("i", -10)))
        assert.are.equal(-8, t.i)
        assert.are.equal("float", math.type(t:incr("i", 0.5)))
        assert.are.equal(-7.5, t.i)
        assert.are.equal(2.5, t:incr("f"))
        assert.are.equal(3, t:incr("missing", 3))      -- missing counts as 0
        assert.are.equal(0.5, t:incr("missing2", 0.5))
        assert.are.equal(math.mininteger, rt.SharedTable{m = math.maxinteger}:incr("m"))
        assert.are.equal(2, t:incr("s", "2"))          -- a numeric string, as Lua
        assert.are.equal("integer", math.type(t.s))
      end)
    end)

    it("raises for a value that is not a number, changing nothing", function()
      H.run(rt, function()
        local t = rt.SharedTable{s = "10", tab = {}, q = rt.Queue()}
        assert.has_error(function() t:incr("s") end,
          "bad argument #1 to 'incr' (value at key 's' is a string, not a number)")
        assert.has_error(function() t:incr("tab") end,
          "bad argument #1 to 'incr' (value at key 'tab' is a table, not a number)")
        assert.has_error(function() t:incr("q") end,
          "bad argument #1 to 'incr' (value at key 'q' is a duet.Queue, not a number)")
        assert.has_error(function() t:incr("n", {}) end,
          "bad argument #2 to 'incr' (number expected, got table)")
        assert.has_error(function() t:incr() end,
          "bad argument #1 to 'incr' (string, number or boolean key expected, got no value)")
        assert.are.equal("10", t.s)
        assert.is_nil(t.n)
      end)
    end)

    it("is exact across 4 threads x 20,000 increments", function()
      H.run(rt, function()
        local t = rt.SharedTable{n = 0}
        in_threads(4, function(i)
          for _ = 1, 20000 do t:incr("n") end
          t:incr("f", 0.5)
          t:incr(i, i)
        end)
        assert.are.equal(80000, t.n)
        assert.are.equal(2.0, t.f)
        assert.are.same({1, 2, 3, 4}, {t[1], t[2], t[3], t[4]})
      end)
    end)
  end)

  describe(":update()", function()
    it("calls fn in the caller's thread with the current value", function()
      H.run(rt, function()
        local t = rt.SharedTable{list = {1}}
        local here = {}
        local r = t:update("list", function(v)
          here.seen = #v
          v[#v + 1] = 2
          return v
        end)
        assert.are.equal(1, here.seen)       -- fn ran here: it could see `here`
        assert.are.same({1, 2}, r)
        assert.are.same({1, 2}, t.list)
        assert.is_nil(t:update("list", function() return nil end))
        assert.is_nil(t.list)                -- nil deletes
      end)
    end)

    it("changes nothing when fn raises or returns what cannot move", function()
      H.run(rt, function()
        local t = rt.SharedTable{n = 1}
        assert.has_error(function() t:update("n", function() error("boom", 0) end) end, "boom")
        assert.has_error(function() t:update("n", function() return io.stdout end) end,
          "cannot move userdata (FILE*) at value")
        assert.are.equal(1, t.n)
      end)
    end)

    it("is exact across 4 threads even when fn is slow (it retries)", function()
      H.run(rt, function()
        local t = rt.SharedTable{n = 0}
        local calls = in_threads(4, function()
          local calls = 0
          for _ = 1, 500 do
            t:update("n", function(v)
              calls = calls + 1
              for _ = 1, 100 do end        -- widen the window
              return v + 1
            end)
          end
          return calls
        end)
        assert.are.equal(2000, t.n)
        local total = 0
        for _, c in ipairs(calls) do total = total + c end
        assert.is_true(total >= 2000)      -- more when two updates collided
      end)
    end)

    it("does not lose plain writes made while fn runs", function()
      H.run(rt, function()
        local t, go, done = rt.SharedTable{n = 0}, rt.Event(), rt.Event()
        local writer = rt.spawn(function()
          go:wait()
          t.n = 100
          done:set()
        end)
        local calls = 0
        local r = t:update("n", function(v)
          calls = calls + 1
          if calls == 1 then go:set(); done:wait() end  -- a write lands meanwhile
          return v + 1
        end)
        writer:join()
        assert.are.equal(2, calls)
        assert.are.equal(101, r)
        assert.are.equal(101, t.n)
      end)
    end)
  end)

  describe("methods and data keys", function()
    it("t.incr, t.update, t.snapshot are always the methods", function()
      H.run(rt, function()
        local t = rt.SharedTable{incr = "data", update = 1}
        assert.is_function(t.incr)
        assert.is_function(t["update"])
        assert.are.equal(1, t:incr("n"))      -- works whatever t holds
        t.snapshot = "also data"
        assert.are.equal(2, t:incr("n"))
      end)
    end)

    it("a data key named like a method is written, counted and listed", function()
      H.run(rt, function()
        local t = rt.SharedTable()
        t.incr = 5
        assert.are.equal(6, t:incr("incr"))
        assert.are.equal(7, t:update("incr", function(v) return v + 1 end))
        assert.are.same({incr = 7}, t:snapshot())
        local seen = {}
        for k, v in pairs(t) do seen[k] = v end
        assert.are.same({incr = 7}, seen)
        t.incr = nil
        assert.are.same({}, t:snapshot())
      end)
    end)

    it("other keys never see the methods", function()
      H.run(rt, function()
        local t = rt.SharedTable{x = 1}
        assert.is_nil(t.close)
        assert.is_nil(t.get)
        assert.are.equal(1, t.x)
      end)
    end)
  end)

  describe("unlocked read-modify-write", function()
    local function race(n)
      return H.run(rt, function()
        local t = rt.SharedTable{n = 0}
        in_threads(2, function()
          for _ = 1, n do t.n = t.n + 1 end
        end)
        return t.n
      end)
    end

    it("never gains updates", function()
      assert.is_true(race(20000) <= 40000)
    end)

    it("loses updates on two cores (shows the race is real) #stress", function()
      local lost = false
      for _ = 1, 5 do
        if race(200000) < 400000 then lost = true; break end
      end
      assert.is_true(lost)
    end)
  end)

  it("every thread sees every write at once", function()
    H.run(rt, function()
      local t = rt.SharedTable{turn = 1}
      local ping = rt.spawn(function()
        for i = 1, 200 do
          while t.turn ~= 2 * i - 1 do end
          t.turn = 2 * i
        end
      end)
      for i = 1, 200 do
        while t.turn ~= 2 * i do end
        t.turn = 2 * i + 1
      end
      assert.are.same({true}, {ping:join(LONG)})
      assert.are.equal(401, t.turn)
    end)
  end)
end)
