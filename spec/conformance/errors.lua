-- Conformance: the error values scripts test for (duet.cancelled,
-- duet.timeout, duet.broken_barrier).
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local duet = require "duet"
local describe, it = busted.describe, busted.it

local NAMES = { "cancelled", "timeout", "broken_barrier" }

return function(rt)
  describe("errors", function()
    it("are three distinct values", function()
      for _, a in ipairs(NAMES) do
        assert.is_not_nil(duet[a], "duet." .. a)
        for _, b in ipairs(NAMES) do
          if a ~= b then assert.are_not.equal(duet[a], duet[b]) end
        end
      end
    end)

    it("print readably", function()
      for _, name in ipairs(NAMES) do
        local s = tostring(duet[name])
        assert.is_truthy(s:find(name, 1, true), s)
        assert.is_nil(s:match("^table: "))
        assert.is_nil(s:match("^userdata: "))
      end
    end)

    it("compare equal with == in another thread", function()
      H.run(rt, function()
        local th = rt.spawn(function(c, t, b)
          return c == duet.cancelled, t == duet.timeout,
                 b == duet.broken_barrier, c == duet.timeout
        end, duet.cancelled, duet.timeout, duet.broken_barrier)
        assert.are.same({true, true, true, true, false}, {th:join()})
      end)
    end)

    it("come back from another thread equal with ==", function()
      H.run(rt, function()
        local th = rt.spawn(function()
          return duet.cancelled, duet.timeout, duet.broken_barrier
        end)
        local ok, c, t, b = th:join()
        assert.is_true(ok)
        assert.is_true(c == duet.cancelled)
        assert.is_true(t == duet.timeout)
        assert.is_true(b == duet.broken_barrier)
      end)
    end)

    it("raised in a thread reach join equal with ==", function()
      H.run(rt, function()
        for _, name in ipairs(NAMES) do
          local th = rt.spawn(function(n) error(duet[n]) end, name)
          local ok, e = th:join()
          assert.is_false(ok)
          assert.is_true(e == duet[name], name)
        end
      end)
    end)
  end)
end
