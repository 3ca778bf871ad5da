-- Helpers for the Redis specs (spec/redis_*_spec.lua). The server is the
-- private one that spec/redis_server.sh starts around every busted run
-- (make test, make stress, .ci/run); DUET_REDIS_URL says where it is.
-- Without it these specs fail, loudly: they are never skipped.
local R = {}

--- The private server's URL, or an error that says how to get one.
function R.url()
  local url = os.getenv("DUET_REDIS_URL")
  if not url then
    error("no Redis server for this spec: DUET_REDIS_URL is not set; run the "
      .. "specs with `make test`, which starts a private redis-server "
      .. "(spec/redis_server.sh run busted ...)", 2)
  end
  return url
end

--- The URL with database `db` instead of the private server's.
function R.url_db(db)
  return (R.url():gsub("/%d*$", "/" .. db))
end

--- A name no other spec (or earlier run against the same server) uses.
local serial = 0
function R.unique(prefix)
  serial = serial + 1
  return ("%s-%d-%d-%d"):format(prefix, os.time(), math.random(1 << 30), serial)
end

--- Stop the private server and start it again on the same port and data
--- directory (its append-only file brings the data back).
function R.restart_server()
  local ok = os.execute("sh spec/redis_server.sh restart")
  assert(ok, "spec/redis_server.sh restart failed")
end

--- Start `lua5.4 bin/duet-worker ARGS` in the background, its stderr to a
--- file; returns a handle {pid =, log =}.
function R.start_worker(args)
  local log = os.tmpname()
  local p = assert(io.popen(("LUA_PATH=%q LUA_CPATH=%q lua5.4 bin/duet-worker %s "
    .. "2>%s >/dev/null & echo $!"):format(package.path, package.cpath, args, log)))
  local pid = assert(tonumber(p:read("l")), "could not start bin/duet-worker")
  p:close()
  return { pid = pid, log = log }
end

--- Run Lua source `code` in a background lua5.4 process that finds duet
--- like this one; returns a handle for R.wait_child.
function R.start_child(code)
  local script, status = os.tmpname(), os.tmpname()
  os.remove(status)
  local f = assert(io.open(script, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(("(LUA_PATH=%q LUA_CPATH=%q lua5.4 %s >%s.out 2>&1; "
    .. "echo $? >%s.tmp; mv %s.tmp %s) >/dev/null 2>&1 & echo $!")
    :format(package.path, package.cpath, script, status, status, status, status)))
  local pid = tonumber(p:read("l"))
  p:close()
  return { pid = pid, script = script, status = status }
end

--- Wait (up to `limit` seconds, default 30) for child `ch` to end: its exit
--- status and output (nil, "still running" after the limit).
function R.wait_child(ch, limit)
  local deadline = os.time() + (limit or 30)
  while true do
    local f = io.open(ch.status)
    if f then
      local code = tonumber(f:read("l"))
      f:close()
      local o = io.open(ch.status .. ".out")
      local out = o and o:read("a") or ""
      if o then o:close() end
      os.remove(ch.status)
      os.remove(ch.status .. ".out")
      os.remove(ch.script)
      return code, out
    end
    if os.time() > deadline then return nil, "still running" end
    require("socket").sleep(0.02)
  end
end

--- Wait (up to 60 s) until worker `w` has logged that it serves its queue;
--- false if it did not.
function R.wait_serving(w)
  local deadline = os.time() + 60
  while os.time() <= deadline do
    local f = io.open(w.log)
    local text = f and f:read("a") or ""
    if f then f:close() end
    if text:find("serving queue", 1, true) then return true end
    if not R.alive(w.pid) then return false end
    require("socket").sleep(0.02)
  end
  return false
end

--- Is process `pid` still there (and not a zombie)?
function R.alive(pid)
  local f = io.open(("/proc/%d/stat"):format(pid))
  if not f then return false end
  local stat = f:read("a")
  f:close()
  return not stat:match("^%d+ %b() Z")
end

--- Send `sig` (a name: "KILL", "TERM") to process `pid`.
function R.kill(pid, sig)
  os.execute(("kill -%s %d 2>/dev/null"):format(sig, pid))
end

--- Wait (up to `limit` seconds) for worker `w` to exit; true if it did.
function R.wait_exit(rt, w, limit)
  local deadline = rt.now() + (limit or 20)
  while R.alive(w.pid) do
    if rt.now() > deadline then return false end
    rt.sleep(0.02)
  end
  return true
end

--- Stop worker `w` (TERM, then KILL if it does not go) and return its log.
function R.stop_worker(rt, w)
  if R.alive(w.pid) then
    R.kill(w.pid, "TERM")
    if not R.wait_exit(rt, w, 20) then R.kill(w.pid, "KILL") end
  end
  local f = io.open(w.log)
  local text = f and f:read("a") or ""
  if f then f:close() end
  os.remove(w.log)
  return text
end

return R
