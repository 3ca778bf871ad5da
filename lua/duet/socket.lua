-- duet.socket: rt.wrap, rt.wait_readable and rt.wait_writable, for both
-- runtimes. The socket itself is duet.core's duet.Socket (csrc/socket.c):
-- LuaSocket's TCP methods on a non-blocking descriptor that it owns. A
-- threads-runtime socket blocks its OS thread when it must wait; a
-- coroutines-runtime one suspends its task through the scheduler, which
-- waits for every such descriptor and the next timer in one poll.
local core = require "duet.core"
local check = require "duet.check"
local messages = require "duet.messages"

local type, getmetatable, tointeger = type, getmetatable, math.tointeger
local is_socket, socket_new, fd_ready = core.is_socket, core.socket_new,
  core.fd_ready

local M = {}

local kinds = {
  ["tcp{master}"] = "master", ["tcp{client}"] = "client",
  ["tcp{server}"] = "server",
}

-- A duet socket for LuaSocket TCP object `sock`, taking its descriptor:
-- LuaSocket forgets it (setfd(-1)), so only duet ever closes it. Input
-- LuaSocket had read ahead comes along.
local function take(sock, coroutines)
  if is_socket(sock) then return sock end
  local kind = kinds[check.typename(sock)]
  if not kind then
    check.argerror("wrap", 1, "LuaSocket TCP object expected, got "
      .. (sock == nil and "no value" or check.typename(sock)))
  end
  local fd = tointeger(sock:getfd()) or -1
  local family = fd < 0 and "unspec" or sock:getfamily()
  local pending
  if fd >= 0 and kind == "client" and sock:dirty() then
    sock:settimeout(0)
    local data, _, partial = sock:receive("*a")
    pending = data or partial
  end
  sock:setfd(-1)
  return socket_new(fd, kind, family, coroutines, pending)
end

-- The descriptor in `x` (an integer, or anything with getfd()), and whether
-- it has input read ahead (dirty()), which makes it readable at once.
local function descriptor(fname, x)
  if type(x) == "number" then
    local fd = tointeger(x)
    if not fd or fd < 0 or fd > 0x7fffffff then
      check.argerror(fname, 1, messages.bad_fd)
    end
    return fd, false
  end
  local getfd
  local t = type(x)
  if t == "table" then
    getfd = x.getfd
  elseif t == "userdata" then
    local mt = getmetatable(x)
    if type(mt) == "table" and mt.__index ~= nil then getfd = x.getfd end
  end
  if type(getfd) ~= "function" then
    check.argerror(fname, 1, messages.no_fd .. " expected, got "
      .. (x == nil and "no value" or check.typename(x)))
  end
  local fd = tointeger((getfd(x)))      -- no value reads as nil
  if not fd or fd < 0 or fd > 0x7fffffff then
    check.argerror(fname, 1, messages.closed_fd)
  end
  local dirty = x.dirty
  return fd, type(dirty) == "function" and dirty(x) and true or false
end

--- The threads runtime's functions: waits block the calling OS thread.
function M.threads()
  return {
    wrap = function(sock) return take(sock, false) end,
    wait_readable = core.wait_readable,
    wait_writable = core.wait_writable,
  }
end

--- The coroutines runtime's functions, over scheduler S: waits suspend the
--- calling task.
function M.coroutines(S)
  core.socket_hooks(S.wait_fd_real, S.fd_closing)
  local wait_fd, deadline = S.wait_fd, S.deadline
  local function waiter(fname, ev)
    return function(x, timeout)
      local fd, buffered = descriptor(fname, x)
      if timeout ~= nil then timeout = check.timeout(fname, 2, timeout) end
      if (buffered and ev == 1) or fd_ready(fd, ev) then return true end
      if timeout == 0 then return false end
      return wait_fd(fd, ev, deadline(timeout), fname)
    end
  end
  return {
    wrap = function(sock) return take(sock, true) end,
    wait_readable = waiter("wait_readable", 1),
    wait_writable = waiter("wait_writable", 2),
  }
end

return M
