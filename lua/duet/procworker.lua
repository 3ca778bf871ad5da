-- duet.procworker: the body of a ProcessExecutor's worker process.
--
-- The parent starts `lua -E -e "<paths>; require('duet.procworker')(ppid,
-- runtime)"` (lua/duet/process.lua) with its end of the channel on fd 3.
-- The first message is the initializer and its arguments; every later one
-- is a task. Each task gets one reply, in order:
--   "ok", results...          the task returned
--   "error", err, traceback   the task raised (or its results cannot move)
--   "init", err, traceback    the initializer raised; the worker then ends
-- Only this channel, the parent's, is decoded with code allowed. At end of
-- file (the parent closed it, or died) the worker ends.
local core = require "duet.core"

local pack, unpack_msg = core.process_pack, core.process_unpack
local xpcall, pcall, tostring, type = xpcall, pcall, tostring, type
local traceback = debug.traceback

-- The traceback of the last error caught by handler().
local last_tb
local function handler(err)
  local msg = err
  if type(msg) ~= "string" then
    local ok, s = pcall(tostring, err)
    msg = ok and s or "(error object is not a string)"
  end
  -- the frames below the task's are the worker's own
  local tb = traceback(msg, 2)
  last_tb = tb:match("^(.-)\n\t%(%.%.%.tail calls%.%.%.%)\n\t%[C%]: in function 'xpcall'")
    or tb:match("^(.-)\n\t%[C%]: in function 'xpcall'") or tb
  return err
end

-- The reply to a task that raised `err`; an error value that cannot move
-- goes as its string.
local function failure(kind, err, tb)
  local ok, body = pcall(pack, "status", kind, "error", err, tb)
  if ok then return body end
  local s = pcall(tostring, err) and tostring(err) or "(error object is not a string)"
  return pack("status", kind, "error", s, tb)
end

local function reply(ok, ...)
  if not ok then return failure("error", (...), last_tb) end
  local packed, body = pcall(pack, "status", "ok", "results", ...)
  if packed then return body end
  return failure("error", body, body)
end

local function call(fn, ...) return fn(...) end

-- Decode a task and run it (a message that cannot be decoded raises).
local function run(body)
  return call(unpack_msg(body, true))
end

-- Runs the initializer; nil when there is none or it returned.
local function initialize(initializer, ...)
  if initializer then return initializer(...) end
end

-- Serve the channel: receive(chan) gives the next message or nil at end
-- of file; send(chan, body) gives nil once the parent is gone.
local function serve(chan, receive, send_body)
  local function send(body)
    if send_body(chan, body) == nil then os.exit(0) end
  end
  local body = receive(chan)
  if not body then return end
  local ok, err = xpcall(function() initialize(unpack_msg(body, true)) end,
    handler)
  if not ok then
    send(failure("init", err, last_tb))
    return
  end
  while true do
    body = receive(chan)
    if not body then return end
    send(reply(xpcall(run, handler, body)))
  end
end

-- The next message, blocking the process: the threads runtime's worker.
local function receive_blocking(chan)
  return chan:recv() or nil
end

local function send_blocking(chan, body)
  return chan:send(body)
end

return function(ppid, runtime)
  local chan = core.process_child(ppid, runtime == "coroutines")
  if not chan then return end           -- the parent ended already
  if runtime ~= "coroutines" then
    serve(chan, receive_blocking, send_blocking)
    os.exit(0)      -- at once: threads a task left running do not hold it
  end
  -- coroutines: tasks run inside rt.run, and a task's own tasks keep
  -- running while the worker waits for the next message
  local rt = require "duet.coroutines"
  rt.run(function()
    serve(chan, function(c)
      while true do
        local body, why = c:recv()
        if body then return body end
        if why then return nil end
        rt.wait_readable(c)
      end
    end, function(c, body)
      local sent = c:send(body)
      while sent == false do
        rt.wait_writable(c)
        sent = c:flush()
      end
      return sent
    end)
    os.exit(0)      -- the parent is gone: leave its tasks unfinished
  end)
end
