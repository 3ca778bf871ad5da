-- Regression: on the coroutines runtime, Semaphore:release past
-- math.maxinteger wrapped the value around to a negative number (and a
-- BoundedSemaphore's "too many" test could wrap the same way), while the
-- threads runtime raised "semaphore value overflow". Now both raise it and
-- keep the value as it was.
local H = require "helpers"
local duet = require "duet"

for _, name in ipairs { "threads", "coroutines" } do
  local rt = duet[name]
  describe("regression: semaphore overflow (" .. name .. ")", function()
    it("raises 'semaphore value overflow' and adds nothing", function()
      H.run(rt, function()
        local s = rt.Semaphore(math.maxinteger - 1)
        assert.are.equal("semaphore value overflow", H.errmsg(s.release, s, 2))
        assert.are.equal("semaphore value overflow",
          H.errmsg(s.release, s, math.maxinteger))
        s:release()                                   -- exactly the maximum
        assert.are.equal("semaphore value overflow", H.errmsg(s.release, s))
        assert.is_true(s:acquire(0))                  -- still positive
        s:release()
      end)
    end)

    it("refuses a BoundedSemaphore release that would wrap past its bound", function()
      H.run(rt, function()
        local s = rt.BoundedSemaphore(math.maxinteger)
        assert.is_true(s:acquire(0))
        assert.are.equal("semaphore released too many times",
          H.errmsg(s.release, s, math.maxinteger))
        s:release()
        assert.are.equal("semaphore released too many times", H.errmsg(s.release, s))
        assert.is_true(s:acquire(0))
      end)
    end)
  end)
end
