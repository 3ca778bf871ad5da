-- B10 echo over loopback (issue 9): a server with one thread (task) per
-- connection echoes lines; C clients, each its own thread (task) in the
-- same process, connect at once and each sends 100 small lines, waiting
-- for every echo. Peers: bench/peers/b10_echo_threads.py (thread per
-- connection, socket module), b10_echo_asyncio.py (asyncio streams).
--
-- Cases: c10, c100, c1000 (C clients; --quick: 10, 100, 200), c5000 (for
-- the coroutines runtime only, as issue 9 asks; --quick: 500).
-- Case floor: the memory floor of c1000, no duet and no task: 1,000
-- LuaSocket connections (--quick: 200) made in one loop, a client and the
-- server's accepted socket each, one line each way, all held open.
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

cases.floor = { plain = true, fn = function(_, quick, id)
  local n = quick and 200 or 1000
  local srv = assert(socket.bind("127.0.0.1", 0, n))
  local _, port = srv:getsockname()
  local clients, conns = {}, {}
  for i = 1, n do clients[i], conns[i] = false, false end
  collectgarbage()
  local before = bench.rss_kb()
  for i = 1, n do
    local c = socket.tcp()
    assert(c:connect("127.0.0.1", port))
    c:setoption("tcp-nodelay", true)
    local conn = assert(srv:accept())
    conn:setoption("tcp-nodelay", true)
    local msg = ("hello %d %d"):format(i, 1)
    assert(c:send(msg .. "\n"))
    assert(conn:send(assert(conn:receive("*l")) .. "\n"))
    bench.check("echo", c:receive("*l"), msg)
    clients[i], conns[i] = c, conn
  end
  local peak = bench.rss_kb("VmHWM")
  for i = 1, n do clients[i]:close(); conns[i]:close() end
  srv:close()
  bench.result(id, "rss_per_conn", (peak - before) / n, "KB")
end }

bench.main("B10", cases, { "c10", "c100", "c1000", "c5000", "floor" }, arg)
