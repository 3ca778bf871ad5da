-- Conformance: SharedTable.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local describe, it = busted.describe, busted.it

-- A plain table of everything pairs(t) gives.
local function collect(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

return function(rt)
  describe("SharedTable", function()
    if not H.has(rt, "SharedTable") then return end

    H.describe_name(rt, "duet.SharedTable", function() return rt.SharedTable() end)

    describe("rt.SharedTable()", function()
      it("() is empty", function()
        H.run(rt, function()
          local t = rt.SharedTable()
          assert.are.equal(0, #t)
          assert.is_nil(t.x)
          assert.are.same({}, collect(t))
        end)
      end)

      it("(init) starts with the contents of init", function()
        H.run(rt, function()
          local t = rt.SharedTable{"a", "b", x = 1, y = {z = 2}}
          assert.are.same({"a", "b", x = 1, y = {z = 2}}, collect(t))
          assert.are.equal(2, #t)
        end)
      end)
    end)

    it("prints its size, as 'duet.SharedTable (size 2): 0x...'", function()
      H.run(rt, function()
        local t = rt.SharedTable{a = 1, snapshot = 2}   -- a method's name too
        t.b = 3
        t.b = nil
        assert.matches("^duet%.SharedTable %(size 2%): ", tostring(t))
      end)
    end)

    describe("t[k] / t[k] = v", function()
      it("stores and reads string, integer, float and boolean keys", function()
        H.run(rt, function()
          local t = rt.SharedTable()
          t.s = "string key"
          t[1] = "integer key"
          t[2.5] = "float key"
          t[true] = "true key"
          t[false] = "false key"
          assert.are.equal("string key", t.s)
          assert.are.equal("integer key", t[1])
          assert.are.equal("float key", t[2.5])
          assert.are.equal("true key", t[true])
          assert.are.equal("false key", t[false])
        end)
      end)

      it("keeps value types: integer, float, string, boolean, table", function()
        H.run(rt, function()
          local t = rt.SharedTable()
          t.i, t.f, t.s, t.b, t.no = 3, 3.0, "s", true, false
          t.tab = {1, {2}, k = "v"}
          assert.are.equal("integer", math.type(t.i))
          assert.are.equal("float", math.type(t.f))
          assert.are.equal("s", t.s)
          assert.is_true(t.b)
          assert.is_false(t.no)
          assert.are.same({1, {2}, k = "v"}, t.tab)
        end)
      end)

      it("deletes a key when assigned nil", function()
        H.run(rt, function()
          local t = rt.SharedTable{a = 1, b = 2}
          t.a = nil
          assert.is_nil(t.a)
          assert.are.same({b = 2}, collect(t))
        end)
      end)

      it("is seen by every thread", function()
        H.run(rt, function()
          local t = rt.SharedTable{from_main = "hello"}
          local th = rt.spawn(function()
            t.from_thread = t.from_main .. " back"
            return t.from_main
          end)
          assert.are.same({true, "hello"}, {th:join()})
          assert.are.equal("hello back", t.from_thread)
        end)
      end)

      it("raises for a key that is not a string, number or boolean", function()
        H.run(rt, function()
          local t = rt.SharedTable{a = 1}
          assert.has_error(function() t[{}] = 1 end)
          assert.has_error(function() t[print] = 1 end)
          assert.are.same({a = 1}, collect(t))
        end)
      end)
    end)

    describe("#t", function()
      it("is the length of the sequence part", function()
        H.run(rt, function()
          local t = rt.SharedTable{10, 20, 30}
          assert.are.equal(3, #t)
          t[4] = 40
          assert.are.equal(4, #t)
          t[4] = nil
          assert.are.equal(3, #t)
        end)
      end)
    end)

    describe("pairs(t)", function()
      it("visits every key once with its value", function()
        H.run(rt, function()
          local t = rt.SharedTable{1, 2, a = "x", [true] = false}
          local seen, count = {}, 0
          for k, v in pairs(t) do
            assert.is_nil(seen[k])
            seen[k], count = v, count + 1
          end
          assert.are.equal(4, count)
          assert.are.same({1, 2, a = "x", [true] = false}, seen)
        end)
      end)
    end)

    describe(":incr()", function()
      it("adds 1 by default and returns the new value", function()
        H.run(rt, function()
          local t = rt.SharedTable{n = 5}
          assert.are.equal(6, t:incr("n"))
          assert.are.equal(6, t.n)
        end)
      end)

      it("adds delta, negative or float", function()
        H.run(rt, function()
          local t = rt.SharedTable{n = 5}
          assert.are.equal(15, t:incr("n", 10))
          assert.are.equal(12, t:incr("n", -3))
          assert.are.equal(12.5, t:incr("n", 0.5))
          assert.are.equal(12.5, t.n)
        end)
      end)

      it("is atomic: 4 threads x 1000 increments count exactly", function()
        H.run(rt, function()
          local t = rt.SharedTable{n = 0}
          local threads = {}
          for i = 1, 4 do
            threads[i] = rt.spawn(function()
              for _ = 1, 1000 do t:incr("n") end
            end)
          end
          for _, th in ipairs(threads) do assert.is_true((th:join())) end
          assert.are.equal(4000, t.n)
        end)
      end)
    end)

    describe(":update()", function()
      it("sets t[k] = fn(t[k]) and returns the new value", function()
        H.run(rt, function()
          local t = rt.SharedTable{s = "a"}
          assert.are.equal("ab", t:update("s", function(v) return v .. "b" end))
          assert.are.equal("ab", t.s)
          assert.are.equal("new", t:update("missing", function(v)
            return v == nil and "new" or "old"
          end))
        end)
      end)

      it("is atomic: 4 threads x 200 updates count exactly", function()
        H.run(rt, function()
          local t = rt.SharedTable{n = 0}
          local threads = {}
          for i = 1, 4 do
            threads[i] = rt.spawn(function()
              for _ = 1, 200 do t:update("n", function(v) return v + 1 end) end
            end)
          end
          for _, th in ipairs(threads) do assert.is_true((th:join())) end
          assert.are.equal(800, t.n)
        end)
      end)
    end)

    describe(":snapshot()", function()
      it("returns a plain Lua table copy", function()
        H.run(rt, function()
          local t = rt.SharedTable{1, 2, a = {b = "c"}}
          local snap = t:snapshot()
          assert.are.equal("table", type(snap))
          assert.is_nil(getmetatable(snap))
          assert.are.same({1, 2, a = {b = "c"}}, snap)
          snap.a = "changed"
          snap[3] = 3
          assert.are.same({b = "c"}, t.a)
          assert.is_nil(t[3])
        end)
      end)
    end)

    describe("values", function()
      it("may be SharedTables, shared by reference", function()
        H.run(rt, function()
          local child = rt.SharedTable{a = 1}
          local t = rt.SharedTable{child = child}
          assert.are.equal(child, t.child)
          local th = rt.spawn(function() t.child.a = 2 end)
          th:join()
          assert.are.equal(2, child.a)
        end)
      end)

      H.it_needs(rt, {"Queue", "Event"}, "may be duet objects, shared by reference", function()
        H.run(rt, function()
          local q, ev = rt.Queue(), rt.Event()
          local t = rt.SharedTable{q = q}
          t.ev = ev
          assert.are.equal(q, t.q)
          assert.are.equal(ev, t.ev)
          local th = rt.spawn(function()
            t.q:put("via table")
            t.ev:set()
          end)
          th:join()
          assert.are.equal("via table", q:get(0))
          assert.is_true(ev:is_set())
        end)
      end)
    end)

    H.it_needs(rt, {"Lock"}, "keeps a locked read-modify-write counter exact across 4 threads", function()
      H.run(rt, function()
        local t, lock = rt.SharedTable{n = 0}, rt.Lock()
        local threads = {}
        for i = 1, 4 do
          threads[i] = rt.spawn(function()
            for _ = 1, 100 do
              lock:with(function()
                local v = t.n
                rt.sleep(0)  -- invite a switch inside the critical section
                t.n = v + 1
              end)
            end
          end)
        end
        -- no timeout: the threads do real work, slow on a loaded machine
        for _, th in ipairs(threads) do assert.are.same({true}, {th:join()}) end
        assert.are.equal(400, t.n)
      end)
    end)
  end)
end
