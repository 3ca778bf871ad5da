-- duet.threads: the OS-threads runtime, a thin layer over duet.core.
local core = require "duet.core"

local rt = {
  name = "threads",
  now = core.now,
  sleep = core.sleep,
  current = core.current,
  Thread = core.Thread,
  spawn = core.spawn,
  stack_size = core.stack_size,
}

-- Every constructor of duet.core (CapWords: Lock, Queue, ...) is one of
-- this runtime's; methods live on the C types themselves.
for k, v in pairs(core) do
  if k:match("^%u") then rt[k] = v end
end

-- Futures of an Executor: rt.wait(futures, {timeout=, return_when=}) ->
-- done, not_done; for fut in rt.as_completed(futures, [timeout]).
rt.wait = core.wait_futures
rt.as_completed = core.as_completed

-- Sockets (duet.socket): rt.wrap(luasocket_tcp), rt.wait_readable(x,
-- [timeout]), rt.wait_writable(x, [timeout]); waits block the OS thread.
for k, v in pairs(require("duet.socket").threads()) do rt[k] = v end

--- Run main(...) and return its results, after every non-daemon thread it
--- started has finished. Errors in main propagate with a traceback.
function rt.run(main, ...)
  if type(main) ~= "function" then
    error(("bad argument #1 to 'run' (function expected, got %s)")
      :format(type(main) == "nil" and "no value" or type(main)), 2)
  end
  local res = table.pack(xpcall(main, debug.traceback, ...))
  core.wait_threads()
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

return rt
