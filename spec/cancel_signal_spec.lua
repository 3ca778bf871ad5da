-- DUET_CANCEL_SIGNAL (issue 17): the signal that stops a thread busy in
-- Lua code can be chosen, or turned off, for programs that use SIGRTMIN+2
-- themselves. Each case runs a child lua5.4 with the variable set and reads
-- the signals it catches from /proc/self/status. Tagged nosan: children
-- started by io.popen crash under the sanitizer runs' preloads.
local H = require "helpers"

-- Run `code` in a child with DUET_CANCEL_SIGNAL=value: its exit status
-- and output.
local function child(value, code)
  code = ("package.path, package.cpath = %q, %q\n"):format(package.path, package.cpath) .. code
  local p = assert(io.popen(("DUET_CANCEL_SIGNAL=%s lua5.4 -e %s 2>&1")
    :format(H.shquote(value), H.shquote(code))))
  local out = p:read("a")
  local ok, _, status = p:close()
  return ok and 0 or status, out
end

-- Prints the numbers of the signals the process catches, one line.
local CAUGHT = [[
  local function caught()
    for l in io.lines("/proc/self/status") do
      local hex = l:match("^SigCgt:%s*(%x+)")
      if hex then
        local mask, s = tonumber(hex, 16), {}
        for sig = 1, 64 do
          if (mask >> (sig - 1)) & 1 == 1 then s[#s + 1] = sig end
        end
        return table.concat(s, " ")
      end
    end
  end
]]

-- A daemon thread busy in `body` (a loop it never leaves by itself) is
-- cancelled once it has started; prints the join's result.
local CANCEL = [[
  local rt, duet = require "duet.threads", require "duet"
  local started = rt.Event()
  local th = rt.Thread{daemon = true, args = {started}, target = function(ev)
    local rt = require "duet.threads"
    ev:set()
    %s
  end}
  th:start()
  assert(started:wait(5))
  th:cancel()
  local ok, e = th:join(5)
  print(ok == false and e == duet.cancelled and "cancelled" or "not cancelled")
]]

local function sigrtmin()
  local _, out = child("", CAUGHT .. [[ local _ = require "duet.threads".Thread
    print(caught()) ]])
  -- the default is SIGRTMIN+2: the real-time signal duet catches
  for sig in out:gmatch("%d+") do
    if tonumber(sig) >= 32 then return tonumber(sig) - 2 end
  end
  error("no real-time signal caught by default: " .. out)
end

describe("DUET_CANCEL_SIGNAL #nosan", function()
  local use = CAUGHT .. [[ local _ = require "duet.threads".Thread
    print(caught()) ]]

  it("by default, is SIGRTMIN+2", function()
    local min = sigrtmin()
    local code, out = child("", use)
    assert.are.equal(0, code, out)
    assert.matches("%f[%d]" .. (min + 2) .. "%f[%D]", out)
  end)

  it("'SIGRTMIN+n' and a number choose the signal duet catches", function()
    local min = sigrtmin()
    for value, sig in pairs { ["SIGRTMIN+5"] = min + 5, [tostring(min + 7)] = min + 7 } do
      local code, out = child(value, use)
      assert.are.equal(0, code, out)
      assert.matches("%f[%d]" .. sig .. "%f[%D]", out)
      assert.does_not.match("%f[%d]" .. (min + 2) .. "%f[%D]", out)
    end
  end)

  it("with a chosen signal, still stops a thread busy in a pure Lua loop", function()
    local code, out = child("SIGRTMIN+5", CANCEL:format("while true do end"))
    assert.are.equal(0, code, out)
    assert.are.equal("cancelled\n", out)
  end)

  it("'none' catches no signal; a busy thread stops at its next duet call", function()
    local min = sigrtmin()
    local code, out = child("none", use)
    assert.are.equal(0, code, out)
    for sig in out:gmatch("%d+") do assert.is_true(tonumber(sig) < min, out) end
    code, out = child("none", CANCEL:format(
      "while true do for i = 1, 1000 do local _ = i * i end rt.sleep(0) end"))
    assert.are.equal(0, code, out)
    assert.are.equal("cancelled\n", out)
  end)

  it("refuses a value it cannot use, with a clear error", function()
    for _, bad in ipairs { "abc", "SIGRTMIN+99", "9", "-3", "SIGRTMIN+" } do
      local code, out = child(bad, [[ local _ = require "duet.threads".Thread ]])
      assert.are_not.equal(0, code, bad)
      assert.matches("DUET_CANCEL_SIGNAL must be a signal number duet may catch", out, 1, true)
    end
  end)
end)
