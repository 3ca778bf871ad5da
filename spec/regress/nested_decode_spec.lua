-- Regression (issue 17): decoding kept one pending message per state, to
-- free it should decoding raise. Decoding can run Lua (require of a module
-- a moved value names), and a decode inside that Lua freed the outer
-- message while it was still being read: heap-use-after-free under ASan,
-- garbage or a crash without it. Each decode now owns its message.
--
-- The outer decode: a thread reads a SharedTable value holding a module
-- table, which the thread's state has not loaded, so decoding requires it;
-- the module's body reads another value from a SharedTable.
local duet = require "duet"
local rt = duet.threads

describe("regression: a decode nested in a decode", function()
  local prefix, file, saved_path

  setup(function()
    prefix = os.tmpname()                 -- the module sits beside it
    file = prefix .. "_duet_nested_decode_mod.lua"
    local f = assert(io.open(file, "w"))
    f:write([[
local inner = assert(DUET_NESTED, "the thread sets DUET_NESTED")
local payload = inner.payload            -- the nested decode
return { answer = payload[#payload] + #payload, from_load = true }
]])
    f:close()
    saved_path = package.path
    package.path = prefix .. "_?.lua;" .. package.path
  end)

  teardown(function()
    package.path = saved_path
    package.loaded.duet_nested_decode_mod = nil
    os.remove(file)
    os.remove(prefix)
  end)

  it("leaves the outer message intact: both values arrive whole", function()
    local inner = rt.SharedTable()
    local payload = {}
    for i = 1, 200 do payload[i] = i end
    inner.payload = payload
    _G.DUET_NESTED = inner
    local mod = require "duet_nested_decode_mod"
    _G.DUET_NESTED = nil
    assert.are.equal(400, mod.answer)

    local outer = rt.SharedTable()
    -- the module first, so that decoding goes on after the require
    local tail = {}
    for i = 1, 200 do tail[i] = ("item %d"):format(i) end
    outer.value = { mod, tail }
    local th = rt.Thread{target = function(o, i)
      DUET_NESTED = i
      local v = o.value
      return v[1].answer, v[1].from_load, #v[2], v[2][1], v[2][200]
    end, args = { outer, inner }}
    th:start()
    assert.are.same({ true, 400, true, 200, "item 1", "item 200" },
      { th:join(30) })
  end)
end)
