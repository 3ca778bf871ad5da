-- Echo clients: --clients of them at once, each in its own thread (threads
-- runtime) or task (coroutines runtime), each sending --messages lines and
-- checking that every one comes back. The script is the same for both.
--
--   lua5.4 examples/echo_client.lua [--runtime threads|coroutines]
--       [--port 0] [--clients 10] [--messages 100] [--seconds 10]
--
-- With --port 0 (the default) it starts examples/echo_server.lua itself, on
-- the same runtime, for exactly these clients. Everything stays on
-- 127.0.0.1, and no wait lasts longer than --seconds.
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { port = 0, clients = 10, messages = 100, seconds = 10 },
  about = "port: the echo server's (0: start one); seconds: the longest wait",
}
local rt = opts.rt
local printf = common.printf

-- No server named: start one, and read the port from its first line.
local server
if opts.port == 0 then
  local dir = arg[0]:match("^(.*)[/\\]") or "."
  local lua = arg[-1] or "lua5.4"
  server = assert(io.popen(("%s %s/echo_server.lua --runtime %s --connections %d --seconds %d")
    :format(lua, dir, rt.name, opts.clients, opts.seconds + 1)))
  local first = server:read("l") or ""
  opts.port = tonumber(first:match(":(%d+)$"))
  if not opts.port then
    io.stderr:write(arg[0], ": the echo server did not start: ", first, "\n")
    os.exit(1)
  end
end

-- One client: connect, then send each line and wait for its echo.
local function client(id, port, messages, seconds)
  local c = rt.wrap(require("socket").tcp())
  c:settimeout(seconds)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then error(("client %d: connect: %s"):format(id, err), 0) end
  c:setoption("tcp-nodelay", true)
  for i = 1, messages do
    local msg = ("client %d line %d"):format(id, i)
    assert(c:send(msg .. "\n"))
    local echo, why = c:receive("*l")
    if echo ~= msg then
      error(("client %d: sent %q, got %s (%s)"):format(id, msg,
        echo and ("%q"):format(echo) or "nothing", why), 0)
    end
  end
  c:close()
  return messages
end

rt.run(function()
  local t0 = rt.now()
  local clients = {}
  for i = 1, opts.clients do
    clients[i] = rt.spawn(client, i, opts.port, opts.messages, opts.seconds)
  end
  local echoed, failed = 0, 0
  for _, th in ipairs(clients) do
    local ok, n = th:join()
    if ok then echoed = echoed + n
    else
      failed = failed + 1
      printf("%s", tostring(n))
    end
  end
  local dt = rt.now() - t0
  printf("%d client(s) x %d line(s): %s echoed, %d client(s) failed",
         opts.clients, opts.messages, common.thousands(echoed), failed)
  printf("time: %.3f s, %s lines/s", dt,
         common.thousands(math.floor(echoed / dt)))
end)

if server then
  for line in server:lines() do printf("server: %s", line) end
  server:close()
end
