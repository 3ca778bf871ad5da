-- B10 echo over loopback (issue 9): a server with one thread (task) per
-- connection echoes lines; C clients, each its own thread (task) in the
-- same process, connect at once and each sends 100 small lines, waiting
-- for every echo. Peers: bench/peers/b10_echo_threads.py (thread per
-- connection, socket module), b10_echo_asyncio.py (asyncio streams).
--
-- Cases: c10, c100, c1000 (C clients; --quick: 10, 100, 200), c5000 (for
-- the coroutines runtime only, as issue 9 asks; --quick: 500).
-- Metrics: messages echoed per second, from the first connect until every
-- client and every server thread has ended (higher is better), and the
-- peak RSS growth (VmHWM after minus VmRSS before) per connection in KB
-- (lower is better).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"
local socket = require "socket"

local MESSAGES = 100

-- One connection on the server side: echo lines until the client closes.
local function handler(conn)
  conn:setoption("tcp-nodelay", true)
  while true do
    local line = conn:receive("*l")
    if not line then break end
    assert(conn:send(line .. "\n"))
  end
  conn:close()
end

-- Accept exactly n connections, a thread (task) for each; join them all.
local function server(rt, srv, n)
  local handlers = {}
  for i = 1, n do
    local conn = assert(srv:accept())
    handlers[i] = rt.spawn(handler, conn)
  end
  srv:close()
  for i = 1, n do
    local ok, err = handlers[i]:join()
    if not ok then error(err, 0) end
  end
end

-- One client: connect, send MESSAGES lines and check every echo.
local function client(rt, port, id, messages)
  local sock = rt.wrap(require("socket").tcp())
  assert(sock:connect("127.0.0.1", port))
  sock:setoption("tcp-nodelay", true)
  for i = 1, messages do
    local msg = ("hello %d %d"):format(id, i)
    assert(sock:send(msg .. "\n"))
    local echo, err = sock:receive("*l")
    if echo ~= msg then error(("bad echo %q (%s)"):format(tostring(echo), tostring(err))) end
  end
  sock:close()
  return messages
end

local function echo_case(full, quick_n)
  return { fn = function(rt, quick, id)
    local n = quick and quick_n or full
    local srv = rt.wrap(assert(socket.bind("127.0.0.1", 0, math.min(n, 4096))))
    local _, port = srv:getsockname()
    port = tonumber(port)
    collectgarbage()
    local before = bench.rss_kb()
    local t0 = rt.now()
    local srv_thread = rt.spawn(server, rt, srv, n)
    local clients = {}
    for i = 1, n do clients[i] = rt.spawn(client, rt, port, i, MESSAGES) end
    local total = 0
    for i = 1, n do total = total + bench.join(clients[i]) end
    bench.join(srv_thread)
    local dt = rt.now() - t0
    bench.check("messages", total, n * MESSAGES)
    bench.result(id, "rate", total / dt, "msgs/s")
    bench.result(id, "rss_per_conn", (bench.rss_kb("VmHWM") - before) / n, "KB")
  end }
end

local cases = {
  c10 = echo_case(10, 10),
  c100 = echo_case(100, 100),
  c1000 = echo_case(1000, 200),
  c5000 = echo_case(5000, 500),
}

bench.main("B10", cases, { "c10", "c100", "c1000", "c5000" }, arg)
