-- The floors make bench measures its rows against (bench/floor.c, the
-- floor cases of B2, B8 and B10) and make bench-instr's operations, run small:
-- they do what their rows say, and every case prints a figure. Never
-- asserts a figure's size: speed and memory live in bench/.
package.cpath = package.cpath .. ";./build/bench/?.so"
local floor = require "floor"

-- stdout and whether the command succeeded
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  return out, p:close()
end

describe("bench/floor.c", function()
  it("object(): acquire returns true and release nothing, as a lock's do", function()
    local o = floor.object()
    assert.equal("floor.object", getmetatable(o).__name)
    assert.same({ true }, { o:acquire() })
    assert.same({}, { o:release() })
  end)

  it("idle_states(n) returns once n threads, each with its own state, wait; release() ends them", function()
    finally(floor.release)
    for _ = 1, 2 do   -- a second batch after the first is released
      assert.equal(8, floor.idle_states(8))
      assert.equal(8, floor.waiting())
      floor.release()
      assert.equal(0, floor.waiting())
    end
  end)

  it("idle_states refuses n out of range and a second batch before release, changing nothing", function()
    finally(floor.release)
    local msg = "bad argument #1 to 'idle_states' (one batch of 1 to 100000 at a time)"
    assert.has_error(function() floor.idle_states(0) end, msg)
    assert.has_error(function() floor.idle_states(2 ^ 32 + 3) end, msg)
    assert.equal(0, floor.waiting())
    assert.equal(1, floor.idle_states(1))
    assert.has_error(function() floor.idle_states(1) end, msg)
    assert.equal(1, floor.waiting())
    floor.release()
    assert.equal(0, floor.waiting())
  end)
end)

describe("the floor cases #notsan", function()
  for _, c in ipairs({
    { "b2_messages", "floor_queue", "B2.floor_queue rate", "msgs/s" },
    { "b8_memory", "floor_thread", "B8.floor_thread rss_per_thread" },
    { "b8_memory", "floor_task", "B8.floor_task rss_per_thread" },
    { "b10_echo", "floor", "B10.floor rss_per_conn" },
  }) do
    it(c[1] .. " --case " .. c[2] .. " prints its figure", function()
      local out, ok = run(("lua5.4 bench/%s.lua --case %s --quick"):format(c[1], c[2]))
      assert.is_true(ok, out)
      local v = out:match("RESULT " .. c[3]:gsub("%.", "%%.") .. " ([%d.e+-]+) "
        .. (c[4] or "KB") .. "\n")
      assert.truthy(v, out)
      assert.is_true(tonumber(v) > 0, out)
    end)
  end

  it("every bench-instr operation runs (bench/instr_ops.lua)", function()
    local src = assert(io.open("bench/instr.lua")):read("a")
    local ops = {}
    for op in src:gmatch('\n%s*{ "([%w_]+)",') do ops[#ops + 1] = op end
    assert.is_true(#ops >= 13)
    for _, op in ipairs(ops) do
      if op ~= "spawn_cqueues" or pcall(require, "cqueues") then
        local out, ok = run("lua5.4 bench/instr_ops.lua " .. op .. " 10")
        assert.is_true(ok, op .. ": " .. out)
      end
    end
  end)
end)
