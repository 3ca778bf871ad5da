-- B10 echo over loopback, cqueues peer of bench/b10_echo.lua: a
-- cqueues.socket server with one coroutine per connection echoes lines;
-- C client coroutines in the same controller connect at once (nodelay)
-- and each sends 100 small lines, waiting for every echo. Cases c10,
-- c100, c1000, c5000 (--quick: 10, 100, 200, 500). Metrics: messages/s
-- until every client and handler has ended, and the peak RSS growth per
-- connection (KB).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local cqueues = peer.need "cqueues"
local socket = require "cqueues.socket"

local MESSAGES = 100

local function echo_case(full, quick_n)
  return function(quick, id)
    local n = quick and quick_n or full
    local srv = assert(socket.listen{ host = "127.0.0.1", port = 0, backlog = math.min(n, 4096) })
    assert(srv:listen())
    local _, _, port = srv:localname()
    local cq = cqueues.new()
    local total = 0
    collectgarbage()
    local before = peer.rss_kb()
    local t0 = peer.now()
    cq:wrap(function()
      for _ = 1, n do
        local conn = assert(srv:accept())
        cq:wrap(function()
          conn:setmode("tl", "tn")
          for line in conn:lines("*l") do assert(conn:write(line, "\n")) end
          conn:close()
        end)
      end
      srv:close()
    end)
    for c = 1, n do
      cq:wrap(function()
        local s = assert(socket.connect{ host = "127.0.0.1", port = port, nodelay = true })
        s:setmode("tl", "tn")
        for i = 1, MESSAGES do
          local msg = ("hello %d %d"):format(c, i)
          assert(s:write(msg, "\n"))
          local echo, err = s:read("*l")
          if echo ~= msg then error(("bad echo %q (%s)"):format(tostring(echo), tostring(err))) end
        end
        s:close()
        total = total + MESSAGES
      end)
    end
    assert(cq:loop())
    local dt = peer.now() - t0
    peer.check("messages", total, n * MESSAGES)
    peer.result(id, "rate", total / dt, "msgs/s")
    peer.result(id, "rss_per_conn", (peer.rss_kb("VmHWM") - before) / n, "KB")
  end
end

peer.main("B10", {
  c10 = echo_case(10, 10),
  c100 = echo_case(100, 100),
  c1000 = echo_case(1000, 200),
  c5000 = echo_case(5000, 500),
}, { "c10", "c100", "c1000", "c5000" }, arg)
