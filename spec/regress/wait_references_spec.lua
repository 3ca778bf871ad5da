-- Regression: on the coroutines runtime, rt.wait left its completion
-- callback on every future still pending when it returned, and that
-- callback held the whole list waited on; so a long-lived pending future,
-- waited on again and again with a timeout, kept every future of every
-- earlier wait alive (and its callback list grew with each call). rt.wait
-- now takes its watch off the futures when it returns.
local H = require "helpers"
local duet = require "duet"

for _, name in ipairs { "threads", "coroutines" } do
  local rt = duet[name]
  describe("regression: rt.wait references (" .. name .. ")", function()
    it("keeps nothing alive through a future still pending after a timeout", function()
      H.run(rt, function()
        local forever = rt.Future()
        local others = setmetatable({}, {__mode = "k"})
        for _ = 1, 20 do
          local other = rt.Future()
          others[other] = true
          local done = rt.wait({forever, other}, {timeout = 0.001})
          assert.are.equal(0, #done)
        end
        collectgarbage(); collectgarbage()
        assert.is_nil(next(others), "futures of earlier waits still referenced")
        forever:set_result()   -- nothing left to call back
        assert.is_true(forever:done())
      end)
    end)
  end)
end
