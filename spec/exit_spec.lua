-- Process exit with threads still running (threads runtime), each case in
-- a fresh lua5.4 process: non-daemon threads are waited for, daemon threads
-- never delay or crash the exit, dropped Thread handles are harmless.
-- Every child is killed after a few seconds, so a hang fails as status 124.

local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it

local function shquote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Run Lua `code` in a fresh lua5.4 process that finds duet like this one,
--- killed after `limit` seconds. Returns stdout, stderr and the exit status
--- (124: it had to be killed; 128 + N: it died of signal N).
local function child(code, limit)
  local script, errfile = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write('local duet = require "duet"\nlocal rt = duet.threads\n', code)
  f:close()
  local p = assert(io.popen(("LUA_PATH=%s LUA_CPATH=%s timeout -k 1 %s lua5.4 %s 2>%s")
    :format(shquote(package.path), shquote(package.cpath), limit or 10, script, errfile)))
  local out = p:read("a")
  local _, how, status = p:close()
  local e = assert(io.open(errfile))
  local err = e:read("a")
  e:close()
  os.remove(script)
  os.remove(errfile)
  return out, err, how == "exit" and status or 128 + status
end

describe("process exit (threads runtime)", function()
  describe("with a non-daemon thread still running", function()
    it("waits for it when the script ends, and its output appears", function()
      local out, err, status = child [[
rt.spawn(function() rt.sleep(0.2); print("thread done") end)
print("main done")
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\nthread done\n", out)
      assert.are.equal("", err)
    end)

    it("waits for it when the script ends with an error, then exits with status 1", function()
      local out, err, status = child [[
rt.spawn(function() rt.sleep(0.2); print("thread done") end)
error("main failed")
]]
      assert.are.equal(1, status, err)
      assert.are.equal("thread done\n", out)
      assert.matches("main failed", err)
    end)

    it("waits for it when os.exit(0, true) closes the state", function()
      local out, err, status = child [[
rt.spawn(function() rt.sleep(0.2); print("thread done") end)
os.exit(0, true)
]]
      assert.are.equal(0, status, err)
      assert.are.equal("thread done\n", out)
    end)

    it("waits for threads that threads started", function()
      local out, err, status = child [[
rt.spawn(function()
  rt.spawn(function() rt.sleep(0.2); print("grandchild done") end)
end)
]]
      assert.are.equal(0, status, err)
      assert.are.equal("grandchild done\n", out)
    end)
  end)

  describe("with daemon threads still running", function()
    it("exits with status 0 while one sleeps in rt.sleep", function()
      local out, err, status = child [[
rt.Thread{target = function() rt.sleep(60); print("never") end, daemon = true}:start()
print("main done")
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.are.equal("", err)
    end)

    it("exits with status 0 while several are busy in Lua loops", function()
      local out, err, status = child [[
for i = 1, 4 do
  rt.Thread{daemon = true, target = function()
    local t, n = {}, 0
    while true do
      n = n + 1
      t[n % 1000 + 1] = {tostring(n), string.rep("x", n % 50)}
    end
  end}:start()
end
rt.Thread{daemon = true, target = function() while true do end end}:start()
rt.sleep(0.05)
print("main done")
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.are.equal("", err)
    end)

    it("exits with status 0 while one is blocked joining a sleeping daemon", function()
      local out, err, status = child [[
local sleeper = rt.Thread{target = function() rt.sleep(60) end, daemon = true}
sleeper:start()
rt.Thread{target = function(s) s:join() end, args = {sleeper}, daemon = true}:start()
rt.sleep(0.02)
print("main done")
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
    end)

    it("never crashes, exit after exit", function()
      for _ = 1, 5 do
        local out, err, status = child [[
for i = 1, 3 do
  rt.Thread{daemon = true, target = function()
    while true do local s = {} for j = 1, 100 do s[j] = j .. "" end end
  end}:start()
  rt.Thread{daemon = true, target = function() while true do rt.sleep(0.001) end end}:start()
end
rt.spawn(function() return 1 end)
print("main done")
]]
        assert.are.equal(0, status, err)
        assert.are.equal("main done\n", out)
      end
    end)
  end)

  describe("with Thread handles dropped without join", function()
    it("collects them and still runs their threads to the end", function()
      local out, err, status = child [[
for i = 1, 200 do rt.spawn(function() return i end) end
rt.spawn(function() rt.sleep(0.2); print("dropped thread done") end)
collectgarbage()
collectgarbage()
for i = 1, 200 do rt.spawn(function() return i end) end
collectgarbage()
print("main done")
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\ndropped thread done\n", out)
      assert.are.equal("", err)
    end)
  end)

  describe("with os.exit() while threads run", function()
    it("exits with status 0 and no crash", function()
      local out, err, status = child [[
for i = 1, 3 do rt.spawn(function() local x = 0 while true do x = x + 1 end end) end
rt.spawn(function() rt.sleep(60) end)
rt.Thread{daemon = true, target = function() while true do end end}:start()
rt.sleep(0.05)
print("main done")
io.stdout:flush()
os.exit(0)
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.are.equal("", err)
    end)

    it("passes the status through", function()
      local _, err, status = child [[
rt.spawn(function() local x = 0 while true do x = x + 1 end end)
rt.sleep(0.02)
os.exit(3)
]]
      assert.are.equal(3, status, err)
    end)
  end)
end)
