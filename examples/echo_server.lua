-- An echo server: every line a client sends comes back to it. Each
-- connection gets its own thread (threads runtime) or task (coroutines
-- runtime); the script is the same for both.
--
--   lua5.4 examples/echo_server.lua [--runtime threads|coroutines]
--       [--port 0] [--connections 10] [--seconds 10] [--verbose]
--
-- It listens on 127.0.0.1 only (port 0: any free port; the first line it
-- prints names it) and stops after --connections connections or --seconds
-- seconds, whichever comes first. examples/echo_client.lua talks to it.
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { port = 0, connections = 10, seconds = 10, verbose = false },
  about = "connections: how many to serve before stopping; seconds: time limit",
}
local rt = opts.rt
local socket = require "socket"
local printf = common.printf

-- One connection: echo lines until the client closes (or time is up), then
-- report how many. A duet socket moves into its thread with its descriptor.
local function serve(conn, id, deadline, verbose)
  local lines = 0
  conn:setoption("tcp-nodelay", true)
  conn:settimeout(math.max(deadline - rt.now(), 0), "t")
  while true do
    local line = conn:receive("*l")
    if not line then break end
    if not conn:send(line .. "\n") then break end
    lines = lines + 1
  end
  conn:close()
  if verbose then printf("connection %d: %d line(s)", id, lines) end
  return lines
end

rt.run(function()
  local srv = rt.wrap(assert(socket.bind("127.0.0.1", opts.port)))
  local _, port = srv:getsockname()
  printf("echo server (%s) listening on 127.0.0.1:%s", rt.name, port)
  io.stdout:flush()                       -- a client may be reading it

  local deadline = rt.now() + opts.seconds
  local handlers = {}
  while #handlers < opts.connections do
    local left = deadline - rt.now()
    if left <= 0 then break end
    srv:settimeout(left)
    local conn = srv:accept()
    if not conn then break end            -- time is up
    handlers[#handlers + 1] = rt.spawn(serve, conn, #handlers + 1, deadline,
                                       opts.verbose)
  end
  srv:close()

  local lines = 0
  for _, th in ipairs(handlers) do
    local ok, n = th:join()
    if ok then lines = lines + n end
  end
  printf("served %d connection(s), echoed %s line(s)", #handlers,
         common.thousands(lines))
end)
