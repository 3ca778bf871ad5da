-- Regression: a Queue waiter whose wait timed out just as it was served
-- (an item handed over, room granted) went on as if it had not been, and
-- unlinked itself a second time from the line of waiters: a crash, or a
-- corrupted line. Now the waiter looks at its state after every wait, and
-- one served at its deadline keeps what it was given.
local H = require "helpers"
local rt = require "duet.threads"
local LONG = H.LONG

describe("regression: a Queue wait that times out as it is served", function()
  it("keeps what it was given and leaves the line intact", function()
    H.run(rt, function()
      local q, room = rt.Queue(), rt.Queue(1)
      for i = 1, 1000 do
        local t = (i % 7) * 0.0002               -- deadlines near the put
        local getter = rt.spawn(function() return q:get(t) end)
        local putter = rt.spawn(function() room:put("x") return room:put("y", t) end)
        rt.sleep((i % 5) * 0.0002)
        q:put(i)
        room:get(LONG)
        local ok, v = getter:join(LONG)
        assert.is_true(ok)
        if v ~= i then assert.are.equal(i, q:get(0)) end
        local ok2, p = putter:join(LONG)
        assert.is_true(ok2)
        if p then assert.are.equal("y", room:get(0)) end
        assert.is_true(q:empty())
        assert.is_true(room:empty())
      end
    end)
  end)
end)
