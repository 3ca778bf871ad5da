-- duet.redis: a Redis client on duet sockets. A call blocks only the
-- calling thread (threads runtime) or task (coroutines runtime); replies are
-- parsed by hiredis's reader (duet.redis_core, csrc/redis/resp.c). A
-- connection belongs to the thread that made it: every thread connects on
-- its own. When the connection drops, a call reconnects with backoff
-- (AUTH and SELECT again) and sends its command again, so a command may
-- reach the server twice: Redis's own at-least-once.
local rc = require "duet.redis_core"
local check = require "duet.check"
local socket = require "socket"

local format, pack, unpack = rc.format, table.pack, table.unpack
local type, tostring, tonumber, concat = type, tostring, tonumber, table.concat

local M = {
  pack = rc.pack,           -- the portable codec (csrc/redis/portable.c)
  unpack = rc.unpack,
}

local URL_FORM = "redis://[user:password@]host[:port][/db]"

-- {host, port, user, password, db} from a redis:// URL, or nil, why.
local function parse_url(url)
  local rest = url:match("^redis://(.+)$")
  if not rest then return nil, "expected " .. URL_FORM end
  local auth, hostpart = rest:match("^(.*)@([^@]*)$")
  if not auth then hostpart = rest end
  local user, password
  if auth then
    user, password = auth:match("^([^:]*):(.*)$")
    if not user then user, password = "", auth end
    if user == "" then user = nil end
  end
  local host, port, db = hostpart:match("^([^:/]+):?(%d*)/?(%d*)$")
  if not host then return nil, "expected " .. URL_FORM end
  port = tonumber(port ~= "" and port or "6379")
  if port < 1 or port > 65535 then return nil, "port out of range" end
  return { host = host, port = port, user = user, password = password,
           db = tonumber(db ~= "" and db or "0") }
end
M.parse_url = parse_url

-- The runtime whose sockets a new connection uses: the coroutines one while
-- its scheduler runs in this state, else threads.
local function current_runtime()
  local S = package.loaded["duet.coroutines.scheduler"]
  if S and S.active() then return require "duet.coroutines" end
  return require "duet.threads"
end

local Connection = { __name = "duet.redis.Connection" }
Connection.__index = Connection
Connection.__newindex = require("duet.coroutines.class").refuse_public

function Connection:__tostring()
  return ("duet.redis.Connection (%s:%d/%d%s)"):format(self._cfg.host,
    self._cfg.port, self._cfg.db, self._closed and ", closed" or "")
end

-- A failure of the link itself (worth a reconnect), as opposed to an error
-- reply or a cancel.
local LinkError = {}
local function link_error(msg) error(setmetatable({ msg = msg }, LinkError), 0) end
local function is_link_error(e) return getmetatable(e) == LinkError end

local function drop(self)
  if self._sock then self._sock:close() end
  self._sock, self._reader = nil, nil
end

local function send(self, data)
  local sock = self._sock
  sock:settimeout(nil)
  local ok, err = sock:send(data)
  if not ok then link_error(err) end
end

-- The next reply: true, value or false, message (an error reply).
local function read_reply(self)
  local sock, reader, rt = self._sock, self._reader, self._rt
  while true do
    local ok, v = reader:get()
    if ok ~= nil then return ok, v end
    sock:settimeout(0)
    local data, err, partial = sock:receive(65536)
    data = data or partial
    if data and #data > 0 then
      reader:feed(data)
    elseif err == "timeout" then
      rt.wait_readable(sock)
    else
      link_error(err or "closed")
    end
  end
end

-- Open the link and log in: AUTH when the URL has a password, SELECT when
-- its db is not 0. A refused login is an error, not a link failure.
local function open(self)
  local cfg, rt = self._cfg, self._rt
  local sock = rt.wrap(socket.tcp())
  sock:settimeout(self._connect_timeout)
  local ok, err = sock:connect(cfg.host, cfg.port)
  if not ok then
    sock:close()
    link_error(err)
  end
  sock:setoption("tcp-nodelay", true)
  self._sock, self._reader = sock, rc.reader()
  local hello = {}
  if cfg.password then
    hello[#hello + 1] = cfg.user and format("AUTH", cfg.user, cfg.password)
      or format("AUTH", cfg.password)
  end
  if cfg.db ~= 0 then hello[#hello + 1] = format("SELECT", cfg.db) end
  if #hello > 0 then
    send(self, concat(hello))
    for _ = 1, #hello do
      local good, msg = read_reply(self)
      if not good then
        drop(self)
        error("redis: " .. msg, 0)
      end
    end
  end
end

-- Run io(self) on a live link; on a link failure reconnect with backoff
-- (50 ms doubling to 1 s) and run it again, for up to retry_for seconds,
-- or until the connection's stop() says so.
-- A server still loading its data after a restart counts as not there.
local function with_link(self, io)
  if self._closed then check.error("attempt to use a closed connection") end
  local rt, t0, delay = self._rt, nil, 0.05
  while true do
    local res = pack(pcall(function()
      if not self._sock then open(self) end
      return io(self)
    end))
    if res[1] then return unpack(res, 2, res.n) end
    local e = res[2]
    drop(self)
    if not is_link_error(e) then error(e, 0) end
    t0 = t0 or rt.now()
    -- stop() first: the caller learns whether it was what ended the link
    if self._stop and self._stop() or rt.now() - t0 >= self._retry_for then
      error(("redis: cannot reach %s:%d: %s"):format(self._cfg.host,
        self._cfg.port, tostring(e.msg)), 0)
    end
    rt.sleep(delay)
    delay = delay * 2 < 1 and delay * 2 or 1
  end
end

local function checked_args(fname, first, ...)
  local n = select("#", ...)
  if type(first) ~= "string" then
    check.argerror(fname, 1, "string expected, got "
      .. (first == nil and "no value" or check.typename(first)))
  end
  for i = 1, n do
    local v = select(i, ...)
    local t = type(v)
    if t ~= "string" and t ~= "number" then
      check.argerror(fname, i + 1, "string or number expected, got "
        .. (v == nil and "no value" or check.typename(v)))
    end
  end
end

--- conn:call(cmd, ...) -> the reply; an error reply raises "redis: MSG".
function Connection:call(cmd, ...)
  checked_args("call", cmd, ...)
  local req = format(cmd, ...)
  local ok, v = with_link(self, function()
    send(self, req)
    local good, val = read_reply(self)
    if not good and val:match("^LOADING") then link_error(val) end
    return good, val
  end)
  if not ok then check.error("redis: " .. v) end   -- at the user's line
  return v
end

--- conn:pipeline(cmds) -> a list of replies, one per command {cmd, ...}
--- sent in one write; an error reply is {err = message} in the list.
function Connection:pipeline(cmds)
  check.table("pipeline", 1, cmds)
  local parts = {}
  for i = 1, #cmds do
    local c = cmds[i]
    if type(c) ~= "table" then
      check.argerror("pipeline", 1, ("command %d: table expected, got %s")
        :format(i, check.typename(c)))
    end
    local ok, req = pcall(format, unpack(c, 1, c.n or #c))
    if not ok then
      check.argerror("pipeline", 1, ("command %d: strings and numbers expected"):format(i))
    end
    parts[i] = req
  end
  if #parts == 0 then return {} end
  local req = concat(parts)
  return with_link(self, function()
    send(self, req)
    local out = {}
    for i = 1, #parts do
      local good, val = read_reply(self)
      if not good then
        if val:match("^LOADING") then link_error(val) end
        val = { err = val }
      end
      out[i] = val == nil and false or val
    end
    return out
  end)
end

--- conn:eval(script, keys, args) -> the reply of a Lua script run on the
--- server, by EVALSHA once the server knows it (SCRIPT LOAD after NOSCRIPT).
function Connection:eval(script, keys, args)
  if type(script) ~= "string" then
    check.argerror("eval", 1, "string expected, got " .. check.typename(script))
  end
  keys = keys or {}
  args = args or {}
  local shas = self._shas
  local sha = shas[script]
  local argv = { "EVALSHA", false, #keys }
  for i = 1, #keys do argv[#argv + 1] = keys[i] end
  for i = 1, args.n or #args do argv[#argv + 1] = args[i] end
  for _ = 1, 3 do
    if not sha then
      sha = self:call("SCRIPT", "LOAD", script)
      shas[script] = sha
    end
    argv[2] = sha
    local ok, v = pcall(self.call, self, unpack(argv))
    if ok then return v end
    if type(v) ~= "string" or not v:find("NOSCRIPT", 1, true) then
      if type(v) == "string" then check.error(v) end   -- at the user's line
      error(v, 0)
    end
    sha = nil
  end
  check.error("redis: the server keeps forgetting the script")
end

--- conn:close(): closes the link; idempotent.
function Connection:close()
  drop(self)
  self._closed = true
end
Connection.__close = Connection.close
Connection.__gc = Connection.close

--- duet.redis.connect(url [, opts]) -> a Connection. opts: runtime (the rt
--- whose sockets to use; default the running one), retry_for (seconds to
--- keep reconnecting, default 10), connect_timeout (seconds, default 5),
--- stop (a function: reconnecting gives up once it returns true).
function M.connect(url, opts)
  if type(url) ~= "string" then
    check.argerror("connect", 1, "string expected, got "
      .. (url == nil and "no value" or check.typename(url)))
  end
  local cfg, why = parse_url(url)
  if not cfg then
    check.argerror("connect", 1, ("invalid Redis URL '%s': %s"):format(url, why))
  end
  opts = check.opt_table("connect", 2, opts) or {}
  local self = setmetatable({
    _cfg = cfg, _rt = opts.runtime or current_runtime(),
    _retry_for = check.opt_number("connect", 2, opts.retry_for, 10),
    _connect_timeout = check.opt_number("connect", 2, opts.connect_timeout, 5),
    _stop = check.opt_func("connect", 2, opts.stop),
    _shas = {}, _url = url,
  }, Connection)
  with_link(self, function() end)
  return self
end

return M
