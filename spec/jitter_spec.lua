-- The threads runtime's seeded jitter: pauses before lock, queue and
-- condition operations. It changes timing only, never results.
local duet = require "duet"
local rt = duet.runtime("threads")

describe("threads runtime, jitter", function()
  after_each(function() duet.runtime("threads", {}) end)

  it("keeps locked counts and queue order right", function()
    duet.runtime("threads", { jitter = { seed = 9 } })
    local t, lock, q = rt.SharedTable{ n = 0 }, rt.Lock(), rt.Queue()
    local function bump(st, lk, n)
      for _ = 1, n do
        lk:acquire()
        st.n = st.n + 1
        lk:release()
      end
    end
    local a = rt.spawn(bump, t, lock, 300)
    local b = rt.spawn(bump, t, lock, 300)
    local producer = rt.spawn(function(queue)
      for i = 1, 100 do queue:put(i) end
    end, q)
    local got = {}
    for i = 1, 100 do got[i] = q:get() end
    assert.is_true(a:join()); assert.is_true(b:join()); assert.is_true(producer:join())
    assert.are.equal(600, t.n)
    for i = 1, 100 do assert.are.equal(i, got[i]) end
  end)

  it("refuses bad options and changes nothing", function()
    assert.has_error(function() duet.runtime("threads", { jitter = { seed = 0.5 } }) end,
      "bad argument #2 to 'runtime' (field 'jitter.seed': integer expected, got non-integer number)")
    assert.has_error(function() duet.runtime("threads", { jitter = 1 }) end,
      "bad argument #2 to 'runtime' (field 'jitter': table expected, got number)")
    assert.has_error(function() duet.runtime("threads", { preempt = {} }) end,
      "bad argument #2 to 'runtime' (unknown option 'preempt')")
  end)
end)
