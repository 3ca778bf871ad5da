-- Regression (issue 15, items 6 and 8):
-- - a Thread{} call that raised (a bad memory_limit, args that cannot
--   move) still used up a "Thread-N" name: a failed constructor must
--   change nothing, so the next thread gets the number it would have got;
-- - docs/API.md's own `memory_limit = 10e6` was refused: an integer field
--   takes a float with an integral value, as luaL_checkinteger does
--   (memory_limit, max_workers, max_tasks_per_child).
local H = require "helpers"
local duet = require "duet"

local function number_of(th) return tonumber(th.name:match("^Thread%-(%d+)$")) end

for _, name in ipairs { "threads", "coroutines" } do
  local rt = duet[name]
  describe("regression: failed constructors (" .. name .. ")", function()
    it("a Thread{} that raises uses up no Thread-N name", function()
      H.run(rt, function()
        local before = number_of(rt.Thread{ target = function() end })
        assert.matches("field 'name'", H.errmsg(rt.Thread, { target = function() end, name = 5 }))
        if name == "threads" then           -- these move: they can fail late
          assert.matches("coroutine", H.errmsg(rt.Thread, { target = function() end,
            args = { coroutine.create(function() end) } }))
          assert.matches("memory_limit", H.errmsg(rt.Thread,
            { target = function() end, memory_limit = -1 }))
          assert.matches("memory_limit", H.errmsg(rt.Thread,
            { target = function() end, memory_limit = 1.5 }))
        end
        assert.are.equal(before + 1, number_of(rt.Thread{ target = function() end }))
      end)
    end)

    it("takes integral floats for integer fields, and refuses fractions", function()
      H.run(rt, function()
        local ex = rt.Executor{ max_workers = 2.0 }
        assert.are.equal(4, ex:submit(function() return 4 end):result(30))
        ex:shutdown()
        assert.matches("field 'max_workers': integer expected, got float",
          H.errmsg(rt.Executor, { max_workers = 2.5 }))
        local px = rt.ProcessExecutor{ max_workers = 1.0, max_tasks_per_child = 3.0 }
        assert.are.equal(5, px:submit(function() return 5 end):result(30))
        px:shutdown()
        assert.matches("field 'max_tasks_per_child': integer expected, got float",
          H.errmsg(rt.ProcessExecutor, { max_tasks_per_child = 0.5 }))
      end)
    end)
  end)
end

describe("regression: memory_limit = 10e6 (threads)", function()
  it("is accepted, as docs/API.md's example writes it", function()
    local rt = duet.threads
    local th = rt.Thread{ target = function() return ("x"):rep(1e8) end, memory_limit = 10e6 }
    th:start()
    local ok, err = th:join(30)
    assert.is_false(ok)
    assert.matches("not enough memory", tostring(err))
  end)
end)
