-- bench/instr.lua: `make bench-instr` — instructions per operation on
-- single-threaded hot paths, counted by callgrind (valgrind
-- --tool=callgrind). Each op (bench/instr_ops.lua) runs n and 2n times in
-- processes of their own; (Ir(2n) - Ir(n)) / n is the count per op, so
-- start-up (Lua, duet, the runtime) cancels. The figure includes the Lua
-- code of the loop that calls the op; the "loop" row is that floor.
-- Instruction counts do not depend on the machine's load, unlike timings.
--
--   lua5.4 bench/instr.lua [N]     (default N = 20000)
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local n = tonumber(arg[1]) or 20000
local lua = os.getenv("LUA") or "lua5.4"

local OPS = {
  { "loop", "empty for-loop iteration (the floor)" },
  { "call_floor", "floor: two C methods that do nothing, on a userdata (no duet)" },
  { "lock_threads", "Lock acquire + release, threads runtime" },
  { "lock_coroutines", "Lock acquire + release, coroutines runtime" },
  { "queue_floor", "floor: put + get of one integer, least Lua queue class (no duet)" },
  { "queue_threads", "Queue put + get of one integer, threads runtime" },
  { "queue_coroutines", "Queue put + get of one integer, coroutines runtime" },
  { "spawn_floor", "floor: a new coroutine resumed to its end (no duet)" },
  { "spawn_coroutines", "spawn + join of an empty task, coroutines runtime" },
  -- a thread costs ~100 times more: these run n / 40 times
  { "spawn_threads", "spawn + join of an empty thread, threads runtime", 40 },
  { "spawn_threads_rt", "spawn + join of a thread whose function uses rt", 40 },
  { "message_coroutines", "Queue put + get of one table {id, name, values}, coroutines" },
  { "spawn_cqueues", "cqueues: cq:wrap(empty) + cq:loop() (peer of spawn + join)" },
}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The instructions ("Collected : N") of one run of op with count k.
local function ir(op, k)
  local cmd = ("valgrind --tool=callgrind --callgrind-out-file=/dev/null %s %s %s %d 2>&1"):format(
    q(lua), q(here .. "/instr_ops.lua"), q(op), k)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  local total = tonumber(out:match("Collected%s*:%s*(%d+)"))
  if not ok or not total then return nil, (out:match("[^\n]*rror[^\n]*") or out:sub(-200)) end
  return total
end

if not os.execute("valgrind --version >/dev/null 2>&1") then
  io.stderr:write("bench-instr: valgrind is missing (make deps-san installs it)\n")
  os.exit(1)
end

local rows, failed = {}, false
for _, o in ipairs(OPS) do
  local k = math.max(1, n // (o[3] or 1))
  local a, ea = ir(o[1], k)
  local b, eb = ir(o[1], 2 * k)
  local per
  if a and b then per = (b - a) / k else failed = true end
  rows[#rows + 1] = { o[2], per and ("%.0f"):format(per) or ("n/a: " .. tostring(ea or eb)) }
  io.stderr:write(("  %-20s %s\n"):format(o[1], rows[#rows][2]))
end

local w = 0
for _, r in ipairs(rows) do w = math.max(w, utf8.len(r[1])) end
print(("# instructions per operation (callgrind; (Ir(2n) - Ir(n)) / n, n = %d; threads: n / 40)"):format(n))
print("")
print(("| %-" .. w .. "s | instructions |"):format("operation"))
print(("| %s | -----------: |"):format(("-"):rep(w)))
for _, r in ipairs(rows) do
  print(("| %-" .. w .. "s | %12s |"):format(r[1], r[2]))
end
os.exit(failed and 1 or 0)
