-- bench/instr_ops.lua: one hot path, n times, for `make bench-instr`
-- (bench/instr.lua runs this under callgrind with n and 2n).
--
--   lua5.4 bench/instr_ops.lua OP N
--
-- OPs: lock_threads, lock_coroutines (acquire + release), queue_threads,
-- queue_coroutines (put + get of one integer), spawn_coroutines (spawn +
-- join of an empty task), spawn_threads, spawn_threads_rt (spawn + join of
-- an empty thread, of one whose function reads rt.name), message_coroutines (put + get of one table
-- {id, name, values} on the coroutines runtime), spawn_cqueues (cq:wrap of
-- an empty function + the loop that ends it), loop (an empty for loop:
-- the floor every figure includes). Floors, no duet: call_floor (two C
-- methods that do nothing on a userdata: bench/floor.c), queue_floor (put +
-- get of one integer on the least Lua queue class), spawn_floor (a new
-- coroutine resumed to its end).
local op, n = arg[1], tonumber(arg[2])
assert(op and n, "usage: lua5.4 bench/instr_ops.lua OP N")

local function with_rt(name, body)
  local rt = require("duet").runtime(name)
  rt.run(function() body(rt) end)
end

local ops = {}
function ops.loop() for _ = 1, n do end end
for _, name in ipairs({ "threads", "coroutines" }) do
  ops["lock_" .. name] = function()
    with_rt(name, function(rt)
      local lock = rt.Lock()
      for _ = 1, n do lock:acquire(); lock:release() end
    end)
  end
  ops["queue_" .. name] = function()
    with_rt(name, function(rt)
      local q = rt.Queue()
      for i = 1, n do q:put(i); assert(q:get() == i) end
    end)
  end
end
function ops.spawn_coroutines()
  with_rt("coroutines", function(rt)
    local empty = function() end
    for _ = 1, n do rt.spawn(empty):join() end
  end)
end
-- Threads are started one at a time; callgrind runs them one after the
-- other, which does not change what they execute.
function ops.spawn_threads()
  with_rt("threads", function(rt)
    local empty = function() end
    for _ = 1, n do rt.spawn(empty):join() end
  end)
end
function ops.spawn_threads_rt()
  with_rt("threads", function(rt)
    local uses_rt = function() return rt.name end
    for _ = 1, n do rt.spawn(uses_rt):join() end
  end)
end
function ops.message_coroutines()
  with_rt("coroutines", function(rt)
    local q = rt.Queue()
    for i = 1, n do
      q:put({ id = i, name = "item", values = { 1, 2, 3 } })
      assert(q:get().id == i)
    end
  end)
end
function ops.spawn_cqueues()
  local cqueues = require "cqueues"
  local cq = cqueues.new()
  local empty = function() end
  for _ = 1, n do
    cq:wrap(empty)
    assert(cq:loop())
  end
end

function ops.call_floor()
  local here = arg[0]:match("^(.*)/[^/]*$") or "."
  package.cpath = package.cpath .. ";" .. here .. "/../build/bench/?.so"
  local lock = require("floor").object()
  for _ = 1, n do lock:acquire(); lock:release() end
end
function ops.queue_floor()
  local here = arg[0]:match("^(.*)/[^/]*$") or "."
  package.path = here .. "/?.lua;" .. package.path
  local q = require("leastqueue")()
  for i = 1, n do q:put(i); assert(q:get() == i) end
end
function ops.spawn_floor()
  local create, resume = coroutine.create, coroutine.resume
  local empty = function() end
  for _ = 1, n do resume(create(empty)) end
end

assert(ops[op], "unknown op " .. op)()
