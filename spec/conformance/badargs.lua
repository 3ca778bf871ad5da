-- Conformance: bad arguments. Every one raises a standard Lua error,
--   bad argument #n to 'name' (explanation)
-- (n counts `self` out for methods) and changes nothing.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local duet = require "duet"
local it, describe, pending = busted.it, busted.describe, busted.pending

-- The objects the method rows are called on. `make(rt)` builds a fresh one
-- in a known state; `probe(obj)` describes what a bad call must not change;
-- `finish(obj)` disposes of it.
local OBJECTS = {
  Queue = {
    make = function(rt) local q = rt.Queue(2); q:put("a"); return q end,
    probe = function(q) return ("%d %s %s"):format(q:size(), q:empty(), q:full()) end,
  },
  LifoQueue = {
    make = function(rt) local q = rt.LifoQueue(2); q:put("a"); return q end,
    probe = function(q) return ("%d %s %s"):format(q:size(), q:empty(), q:full()) end,
  },
  ClosedQueue = {  -- closed, with one item left and no task pending
    needs = "Queue",
    make = function(rt) local q = rt.Queue(2); q:put("a"); q:task_done(); q:close(); return q end,
    probe = function(q) return ("%d %s %s"):format(q:size(), q:empty(), q:full()) end,
  },
  PriorityQueue = {
    make = function(rt) local q = rt.PriorityQueue(2); q:put(1); return q end,
    probe = function(q) return ("%d %s %s"):format(q:size(), q:empty(), q:full()) end,
  },
  Lock = {
    make = function(rt) return rt.Lock() end,
    probe = function(l) return tostring(l:locked()) end,
  },
  RLock = {
    make = function(rt) return rt.RLock() end,
    probe = function(l, rt) return tostring(H.free_elsewhere(rt, l)) end,
  },
  Semaphore = {
    make = function(rt) return rt.Semaphore(2) end,
    probe = function(s) return tostring(H.permits(s)) end,
  },
  BoundedSemaphore = {
    make = function(rt) local s = rt.BoundedSemaphore(2); s:acquire(); return s end,
    probe = function(s) return tostring(H.permits(s)) end,
  },
  Condition = {  -- held by the caller, so wait and notify may be called
    make = function(rt) local c = rt.Condition(); c:acquire(); return c end,
    probe = function(c, rt) return tostring(H.free_elsewhere(rt, c)) end,
  },
  Event = {
    make = function(rt) return rt.Event() end,
    probe = function(ev) return tostring(ev:is_set()) end,
  },
  Barrier = {
    make = function(rt) return rt.Barrier(2) end,
    probe = function(b) return ("%s %d"):format(b.broken, b.n_waiting) end,
  },
  Thread = {
    make = function(rt) local th = rt.spawn(function() end); th:join(); return th end,
    probe = function(th) return tostring(th:is_alive()) end,
  },
  SharedTable = {
    make = function(rt) return rt.SharedTable{n = 1} end,
    probe = function(t)
      local keys = {}
      for k, v in pairs(t:snapshot()) do keys[#keys + 1] = tostring(k) .. "=" .. tostring(v) end
      table.sort(keys)
      return table.concat(keys, ",")
    end,
  },
  Executor = {
    make = function(rt) return rt.Executor{max_workers = 1} end,
    probe = function() return "" end,
    finish = function(ex) ex:shutdown() end,
  },
  ShutdownExecutor = {
    needs = "Executor",
    make = function(rt) local ex = rt.Executor{max_workers = 1}; ex:shutdown(); return ex end,
    probe = function() return "" end,
  },
  Future = {
    needs = "Executor",
    make = function(rt)
      local ex = rt.Executor{max_workers = 1}
      local fut = ex:submit(function() return 1 end)
      ex:shutdown()
      return fut
    end,
    probe = function(f) return ("%s %s"):format(f:done(), f:cancelled()) end,
  },
  UserFuture = {  -- made by rt.Future(), pending
    needs = "Future",
    make = function(rt) return rt.Future() end,
    probe = function(f) return ("%s %s"):format(f:done(), f:cancelled()) end,
  },
  TokenBucket = {
    make = function(rt) return rt.TokenBucket{capacity = 5, rate = 1e-6} end,
    probe = function(tb) return tostring(math.floor(tb:tokens())) end,
  },
}

-- The cases, one per row: { object, call, expected error message }.
--   object   a key of OBJECTS: the call is a method call on a fresh one,
--            written ":method(args)"; or nil: the call is a whole
--            expression such as "rt.sleep(-1)" (rt and duet in scope).
--   expected the exact message, except that a final "(...)" accepts any
--            explanation: "bad argument #1 to 'put' (...)".
-- Rows marked outside = true run outside rt.run.
local N, S, T = "number expected, got ", "string expected, got ", "table expected, got "
local F = "function expected, got "
local CASES = {
  -- the runtime's functions
  { nil, "duet.runtime(42)",            "bad argument #1 to 'runtime' (" .. S .. "number)" },
  { nil, "rt.run(42)",                  "bad argument #1 to 'run' (" .. F .. "number)", outside = true },
  { nil, "rt.run()",                    "bad argument #1 to 'run' (" .. F .. "no value)", outside = true },
  { nil, "rt.sleep()",                  "bad argument #1 to 'sleep' (" .. N .. "no value)" },
  { nil, "rt.sleep('x')",               "bad argument #1 to 'sleep' (" .. N .. "string)" },
  { nil, "rt.sleep(-1)",                "bad argument #1 to 'sleep' (...)" },
  { nil, "rt.sleep(0/0)",               "bad argument #1 to 'sleep' (...)" },
  { nil, "rt.current():join()",         "cannot join current thread" },
  { nil, "rt.spawn()",                  "bad argument #1 to 'spawn' (" .. F .. "no value)" },
  { nil, "rt.spawn(42)",                "bad argument #1 to 'spawn' (" .. F .. "number)" },
  { nil, "rt.wait(42)",                 "bad argument #1 to 'wait' (" .. T .. "number)" },
  { nil, "rt.wait(rt.Event())",         "bad argument #1 to 'wait' (" .. T .. "duet.Event)" },
  { nil, "rt.wait({}, {timeout = rt.Event()})", "bad argument #2 to 'wait' (number expected, got duet.Event)" },
  { nil, "rt.SharedTable(rt.Event())",  "bad argument #1 to 'SharedTable' (" .. T .. "duet.Event)" },
  { nil, "rt.Thread(rt.Event())",       "bad argument #1 to 'Thread' (" .. T .. "duet.Event)" },
  { nil, "rt.wait({}, 42)",             "bad argument #2 to 'wait' (" .. T .. "number)" },
  { nil, "rt.wait({}, {timeout = -1})", "bad argument #2 to 'wait' (...)" },
  { nil, "rt.wait({}, {timeout = 0/0})", "bad argument #2 to 'wait' (...)" },
  { nil, "rt.wait({}, {return_when = 'SOMETIMES'})", "bad argument #2 to 'wait' (...)" },
  { nil, "rt.as_completed(42)",         "bad argument #1 to 'as_completed' (" .. T .. "number)" },
  { nil, "rt.as_completed({}, -1)",     "bad argument #2 to 'as_completed' (...)" },
  { nil, "rt.as_completed({}, 0/0)",    "bad argument #2 to 'as_completed' (...)" },

  -- constructors
  { nil, "rt.Thread(42)",               "bad argument #1 to 'Thread' (" .. T .. "number)" },
  { nil, "rt.Thread{}",                 "bad argument #1 to 'Thread' (...)" },
  { nil, "rt.Thread{target = 42}",      "bad argument #1 to 'Thread' (...)" },
  { nil, "rt.Thread{target = rt.Event()}", "bad argument #1 to 'Thread' (field 'target': function expected, got duet.Event)" },
  { nil, "rt.Thread{target = print, name = rt.Lock()}", "bad argument #1 to 'Thread' (field 'name': string expected, got duet.Lock)" },
  { nil, "rt.Thread{target = print, memory_limit = 'x'}", "bad argument #1 to 'Thread' (field 'memory_limit': positive integer expected)" },
  { nil, "rt.Thread{target = print, memory_limit = 0}",   "bad argument #1 to 'Thread' (field 'memory_limit': positive integer expected)" },
  { nil, "rt.Thread{target = print, memory_limit = 1.5}", "bad argument #1 to 'Thread' (field 'memory_limit': positive integer expected)" },
  { nil, "rt.Queue('x')",               "bad argument #1 to 'Queue' (" .. N .. "string)" },
  { nil, "rt.Queue({})",                "bad argument #1 to 'Queue' (" .. N .. "table)" },
  { nil, "rt.Queue(1.5)",               "bad argument #1 to 'Queue' (...)" },
  { nil, "rt.Queue(math.huge)",         "bad argument #1 to 'Queue' (number has no integer representation)" },
  { nil, "rt.Queue(0/0)",               "bad argument #1 to 'Queue' (number has no integer representation)" },
  { nil, "rt.LifoQueue('x')",           "bad argument #1 to 'LifoQueue' (" .. N .. "string)" },
  { nil, "rt.PriorityQueue({})",        "bad argument #1 to 'PriorityQueue' (" .. N .. "table)" },
  { nil, "rt.Semaphore('x')",           "bad argument #1 to 'Semaphore' (" .. N .. "string)" },
  { nil, "rt.Semaphore(-1)",            "bad argument #1 to 'Semaphore' (...)" },
  { nil, "rt.Semaphore(math.huge)",     "bad argument #1 to 'Semaphore' (number has no integer representation)" },
  { nil, "rt.BoundedSemaphore(-1)",     "bad argument #1 to 'BoundedSemaphore' (...)" },
  { nil, "rt.BoundedSemaphore(0/0)",    "bad argument #1 to 'BoundedSemaphore' (number has no integer representation)" },
  { nil, "rt.Condition(42)",            "bad argument #1 to 'Condition' (...)" },
  { nil, "rt.Barrier()",                "bad argument #1 to 'Barrier' (" .. N .. "no value)" },
  { nil, "rt.Barrier('x')",             "bad argument #1 to 'Barrier' (" .. N .. "string)" },
  { nil, "rt.Barrier(0)",               "bad argument #1 to 'Barrier' (...)" },
  { nil, "rt.Barrier(math.huge)",       "bad argument #1 to 'Barrier' (number has no integer representation)" },
  { nil, "rt.Barrier(2, 42)",           "bad argument #2 to 'Barrier' (...)" },
  { nil, "rt.SharedTable(42)",          "bad argument #1 to 'SharedTable' (" .. T .. "number)" },
  { nil, "rt.Executor(42)",             "bad argument #1 to 'Executor' (" .. T .. "number)" },
  { nil, "rt.Executor{max_workers = 0}",   "bad argument #1 to 'Executor' (...)" },
  { nil, "rt.Executor{initializer = print, initargs = {n = math.maxinteger}}",
    "bad argument #1 to 'Executor' (field 'initargs': too many values)" },
  { nil, "rt.Executor{max_workers = 'x'}", "bad argument #1 to 'Executor' (...)" },
  { nil, "rt.Executor{max_workers = math.huge}", "bad argument #1 to 'Executor' (...)" },
  { nil, "rt.Executor{initializer = 42}", "bad argument #1 to 'Executor' (field 'initializer': function expected, got number)" },
  { nil, "rt.Executor{initializer = print, initargs = 'x'}", "bad argument #1 to 'Executor' (field 'initargs': table expected, got string)" },
  { nil, "rt.Executor{thread_name_prefix = {}}", "bad argument #1 to 'Executor' (field 'thread_name_prefix': string expected, got table)" },
  { nil, "rt.TokenBucket()",            "bad argument #1 to 'TokenBucket' (" .. T .. "no value)" },
  { nil, "rt.TokenBucket{}",            "bad argument #1 to 'TokenBucket' (...)" },
  { nil, "rt.TokenBucket{capacity = -1, rate = 1}",  "bad argument #1 to 'TokenBucket' (...)" },
  { nil, "rt.TokenBucket{capacity = 1, rate = 'x'}", "bad argument #1 to 'TokenBucket' (...)" },
  { nil, "rt.TokenBucket{capacity = 0/0, rate = 1}", "bad argument #1 to 'TokenBucket' (...)" },
  { nil, "rt.TokenBucket{capacity = 1, rate = 0/0}", "bad argument #1 to 'TokenBucket' (...)" },
  { nil, "rt.TokenBucket{capacity = 1, rate = 1, tokens = -1}", "bad argument #1 to 'TokenBucket' (...)" },
  { nil, "rt.TokenBucket{max_tokens = 1, refill_tokens = 1, refill_period = 0}",
                                        "bad argument #1 to 'TokenBucket' (...)" },

  -- Queue (holds one item, maxsize 2)
  { "Queue", ":put()",             "bad argument #1 to 'put' (...)" },
  { "Queue", ":put(nil)",          "bad argument #1 to 'put' (...)" },
  { "Queue", ":put(1, -1)",        "bad argument #2 to 'put' (...)" },
  { "Queue", ":put(1, 0/0)",       "bad argument #2 to 'put' (...)" },
  { "Queue", ":put(1, 'x')",       "bad argument #2 to 'put' (" .. N .. "string)" },
  { "Queue", ":put(1, {})",        "bad argument #2 to 'put' (" .. N .. "table)" },
  { "Queue", ":get(-1)",           "bad argument #1 to 'get' (...)" },
  { "Queue", ":get(0/0)",          "bad argument #1 to 'get' (...)" },
  { "Queue", ":get({})",           "bad argument #1 to 'get' (" .. N .. "table)" },
  { "Queue", ":get(true)",         "bad argument #1 to 'get' (" .. N .. "boolean)" },
  { "Queue", ":put_nowait(nil)",   "bad argument #1 to 'put_nowait' (...)" },
  { "Queue", ":put_many()",        "bad argument #1 to 'put_many' (" .. T .. "no value)" },
  { "Queue", ":put_many(42)",      "bad argument #1 to 'put_many' (" .. T .. "number)" },
  { "Queue", ":put_many(rt.Event())", "bad argument #1 to 'put_many' (" .. T .. "duet.Event)" },
  { "Queue", ":put_many({1}, -1)", "bad argument #2 to 'put_many' (...)" },
  { "Queue", ":put_many({1}, 0/0)", "bad argument #2 to 'put_many' (...)" },
  { "Queue", ":put_many({nil, 2}, 0)", "bad argument #1 to 'put_many' (nil item at index 1)" },
  { "Queue", ":put_many({1, 2, 3})", "bad argument #1 to 'put_many' (more items than maxsize)" },
  { "Queue", ":put_many({1, n = -1})", "bad argument #1 to 'put_many' (field 'n' must be a non-negative integer)" },
  { "Queue", ":put_many({1, n = 1.5})", "bad argument #1 to 'put_many' (field 'n' must be a non-negative integer)" },
  { "Queue", ":put_many({1, n = 0/0})", "bad argument #1 to 'put_many' (field 'n' must be a non-negative integer)" },
  { "Queue", ":put_many({1, n = '1'})", "bad argument #1 to 'put_many' (field 'n' must be a non-negative integer)" },
  { "Queue", ":shutdown(1)",         "bad argument #1 to 'shutdown' (boolean expected, got number)" },
  { "Queue", ":get_many()",        "bad argument #1 to 'get_many' (" .. N .. "no value)" },
  { "Queue", ":get_many('x')",     "bad argument #1 to 'get_many' (" .. N .. "string)" },
  { "Queue", ":get_many(0)",       "bad argument #1 to 'get_many' (...)" },
  { "Queue", ":get_many(1, -1)",   "bad argument #2 to 'get_many' (...)" },
  { "Queue", ":get_many(1, 0/0)",  "bad argument #2 to 'get_many' (...)" },
  { "Queue", ":get_many(math.huge)", "bad argument #1 to 'get_many' (number has no integer representation)" },
  { "Queue", ":join(-1)",          "bad argument #1 to 'join' (...)" },
  { "Queue", ":join('x')",         "bad argument #1 to 'join' (" .. N .. "string)" },
  { "Queue", ":join(0/0)",         "bad argument #1 to 'join' (...)" },
  -- closed or used up
  { "ClosedQueue", ":put(1)",          "put on a closed queue" },
  { "ClosedQueue", ":put(1, 0)",       "put on a closed queue" },
  { "ClosedQueue", ":put_nowait(1)",   "put on a closed queue" },
  { "ClosedQueue", ":put_many({1})",   "put on a closed queue" },
  { "ClosedQueue", ":task_done()",     "task_done() called too many times" },
  { "LifoQueue", ":put(nil)",      "bad argument #1 to 'put' (...)" },
  { "LifoQueue", ":get(-1)",       "bad argument #1 to 'get' (...)" },
  { "PriorityQueue", ":put(nil)",  "bad argument #1 to 'put' (...)" },
  { "PriorityQueue", ":put(true)", "bad argument #1 to 'put' (...)" },
  { "PriorityQueue", ":put({})",   "bad argument #1 to 'put' (...)" },
  { "PriorityQueue", ":put(rt.Event())", "bad argument #1 to 'put' (number, string or table expected, got duet.Event)" },
  { "PriorityQueue", ":put_nowait(true)", "bad argument #1 to 'put_nowait' (number, string or table expected, got boolean)" },
  { "PriorityQueue", ":put_nowait({rt.Event()})", "bad argument #1 to 'put_nowait' (priority (item[1]) must be a number or a string, got duet.Event)" },
  { "PriorityQueue", ":put({true})", "bad argument #1 to 'put' (...)" },
  { "PriorityQueue", ":put_many({2, true})", "bad argument #1 to 'put_many' (...)" },
  { "PriorityQueue", ":get(-1)",   "bad argument #1 to 'get' (...)" },

  -- locks and signals
  { "Lock", ":acquire(-1)",        "bad argument #1 to 'acquire' (...)" },
  { "Lock", ":acquire(0/0)",       "bad argument #1 to 'acquire' (...)" },
  { "Lock", ":acquire('x')",       "bad argument #1 to 'acquire' (" .. N .. "string)" },
  { "Lock", ":release()",          "release unlocked lock" },
  { "Lock", ":with()",             "bad argument #1 to 'with' (" .. F .. "no value)" },
  { "Lock", ":with(42)",           "bad argument #1 to 'with' (" .. F .. "number)" },
  { "RLock", ":acquire(-1)",       "bad argument #1 to 'acquire' (...)" },
  { "RLock", ":acquire(0/0)",      "bad argument #1 to 'acquire' (...)" },
  { "RLock", ":release()",         "cannot release un-acquired lock" },
  { "RLock", ":with(42)",          "bad argument #1 to 'with' (" .. F .. "number)" },
  { "Semaphore", ":acquire(-1)",   "bad argument #1 to 'acquire' (...)" },
  { "Semaphore", ":acquire('x')",  "bad argument #1 to 'acquire' (" .. N .. "string)" },
  { "Semaphore", ":acquire(0/0)",  "bad argument #1 to 'acquire' (...)" },
  { "Semaphore", ":release('x')",  "bad argument #1 to 'release' (" .. N .. "string)" },
  { "Semaphore", ":release(0)",    "bad argument #1 to 'release' (...)" },
  { "Semaphore", ":release(math.huge)", "bad argument #1 to 'release' (number has no integer representation)" },
  { "Semaphore", ":release(-1)",   "bad argument #1 to 'release' (...)" },
  { "Semaphore", ":with(42)",      "bad argument #1 to 'with' (" .. F .. "number)" },
  { "BoundedSemaphore", ":acquire(-1)",  "bad argument #1 to 'acquire' (...)" },
  { "BoundedSemaphore", ":release('x')", "bad argument #1 to 'release' (" .. N .. "string)" },
  { "BoundedSemaphore", ":release(2)",   "semaphore released too many times" },  -- 1 held
  { nil, "local s = rt.BoundedSemaphore(1); s:release()", "semaphore released too many times" },
  { nil, "local s = rt.Semaphore(math.maxinteger); s:release()", "semaphore value overflow" },
  { "Condition", ":acquire(-1)",   "bad argument #1 to 'acquire' (...)" },
  { "Condition", ":wait(-1)",      "bad argument #1 to 'wait' (...)" },
  { "Condition", ":wait(0/0)",     "bad argument #1 to 'wait' (...)" },
  { "Condition", ":wait('x')",     "bad argument #1 to 'wait' (" .. N .. "string)" },
  { "Condition", ":wait_for()",    "bad argument #1 to 'wait_for' (" .. F .. "no value)" },
  { "Condition", ":wait_for(42)",  "bad argument #1 to 'wait_for' (" .. F .. "number)" },
  { "Condition", ":wait_for(function() return false end, -1)", "bad argument #2 to 'wait_for' (...)" },
  { "Condition", ":notify('x')",   "bad argument #1 to 'notify' (" .. N .. "string)" },
  { "Condition", ":wait_for(function() return false end, 0/0)", "bad argument #2 to 'wait_for' (...)" },
  { "Condition", ":notify(0/0)",   "bad argument #1 to 'notify' (number has no integer representation)" },
  { "Condition", ":with(42)",      "bad argument #1 to 'with' (" .. F .. "number)" },
  { nil, "rt.Condition():acquire(0/0)", "bad argument #1 to 'acquire' (...)" },
  { nil, "rt.Condition():wait(0)",      "cannot wait on un-acquired lock" },
  { nil, "rt.Condition():notify()",     "cannot notify on un-acquired lock" },
  { nil, "rt.Condition():notify_all()", "cannot notify on un-acquired lock" },
  { nil, "rt.Condition():release()",    "cannot release un-acquired lock" },
  { "Event", ":wait(-1)",          "bad argument #1 to 'wait' (...)" },
  { "Event", ":wait(0/0)",         "bad argument #1 to 'wait' (...)" },
  { "Event", ":wait('x')",         "bad argument #1 to 'wait' (" .. N .. "string)" },
  { "Barrier", ":wait(-1)",        "bad argument #1 to 'wait' (...)" },
  { "Barrier", ":wait('x')",       "bad argument #1 to 'wait' (" .. N .. "string)" },
  { "Barrier", ":wait(0/0)",       "bad argument #1 to 'wait' (...)" },

  -- threads
  { "Thread", ":join(-1)",         "bad argument #1 to 'join' (...)" },
  { "Thread", ":join(0/0)",        "bad argument #1 to 'join' (...)" },
  { "Thread", ":join('x')",        "bad argument #1 to 'join' (" .. N .. "string)" },
  { "Thread", ":start()",          "threads can only be started once" },
  { nil, "rt.Thread{target = print}:join()",  "cannot join thread before it is started" },
  { nil, "rt.Thread{target = print}:join(0)", "cannot join thread before it is started" },

  -- shared state
  { "SharedTable", ":incr()",          "bad argument #1 to 'incr' (...)" },
  { "SharedTable", ":incr({})",        "bad argument #1 to 'incr' (...)" },
  { "SharedTable", ":incr('n', 'x')",  "bad argument #2 to 'incr' (" .. N .. "string)" },
  { "SharedTable", ":update('n')",     "bad argument #2 to 'update' (" .. F .. "no value)" },
  { "SharedTable", ":update('n', 42)", "bad argument #2 to 'update' (" .. F .. "number)" },

  -- executors and futures
  { "Executor", ":submit()",           "bad argument #1 to 'submit' (" .. F .. "no value)" },
  { "Executor", ":submit(42)",         "bad argument #1 to 'submit' (" .. F .. "number)" },
  { "Executor", ":map(42, {})",        "bad argument #1 to 'map' (" .. F .. "number)" },
  { "Executor", ":map(print, 42)",     "bad argument #2 to 'map' (" .. T .. "number)" },
  { "Executor", ":map(print, rt.Lock())", "bad argument #2 to 'map' (" .. T .. "duet.Lock)" },
  { "Executor", ":shutdown(rt.Event())", "bad argument #1 to 'shutdown' (" .. T .. "duet.Event)" },
  { "Executor", ":map(print, {}, -1)", "bad argument #3 to 'map' (...)" },
  { "Executor", ":map(print, {}, 0/0)", "bad argument #3 to 'map' (...)" },
  { "Executor", ":map(print, {1, n = -1})", "bad argument #2 to 'map' (field 'n' must be a non-negative integer)" },
  { "Executor", ":map(print, {1, n = 'x'})", "bad argument #2 to 'map' (field 'n' must be a non-negative integer)" },
  { "Executor", ":shutdown(42)",       "bad argument #1 to 'shutdown' (" .. T .. "number)" },
  { "ShutdownExecutor", ":submit(print)",    "cannot schedule new futures after shutdown" },
  { "ShutdownExecutor", ":map(print, {1})",  "cannot schedule new futures after shutdown" },
  { "Future", ":result(-1)",           "bad argument #1 to 'result' (...)" },
  { "Future", ":result('x')",          "bad argument #1 to 'result' (" .. N .. "string)" },
  { "Future", ":result(0/0)",          "bad argument #1 to 'result' (...)" },
  { "Future", ":exception(-1)",        "bad argument #1 to 'exception' (...)" },
  { "Future", ":exception(0/0)",       "bad argument #1 to 'exception' (...)" },
  { "Future", ":wait(0/0)",            "bad argument #1 to 'wait' (...)" },
  { "Future", ":wait(-1)",             "bad argument #1 to 'wait' (...)" },
  { "Future", ":add_done_callback()",  "bad argument #1 to 'add_done_callback' (" .. F .. "no value)" },
  { "Future", ":add_done_callback(42)", "bad argument #1 to 'add_done_callback' (" .. F .. "number)" },
  { "UserFuture", ":set_exception()",  "bad argument #1 to 'set_exception' (error value expected, got no value)" },
  { "UserFuture", ":set_exception('e', {})", "bad argument #2 to 'set_exception' (string expected, got table)" },

  -- token bucket
  { "TokenBucket", ":take('x')",       "bad argument #1 to 'take' (" .. N .. "string)" },
  { "TokenBucket", ":take(-1)",        "bad argument #1 to 'take' (...)" },
  { "TokenBucket", ":take(0/0)",       "bad argument #1 to 'take' (...)" },
  { "TokenBucket", ":wait(-1)",        "bad argument #1 to 'wait' (...)" },
  { "TokenBucket", ":wait(1, -1)",     "bad argument #2 to 'wait' (...)" },
  { "TokenBucket", ":wait(1, 'x')",    "bad argument #2 to 'wait' (" .. N .. "string)" },
  { "TokenBucket", ":wait(1, 0/0)",    "bad argument #2 to 'wait' (...)" },
  { "TokenBucket", ":take(math.huge)", "bad argument #1 to 'take' (...)" },
  { "TokenBucket", ":wait(math.huge, 0)", "bad argument #1 to 'wait' (...)" },
}

-- Compile a row's call. It must be a plain call statement (not a tail
-- call), so the error names the function the way Lua's own errors do.
local function compile(row, rt)
  local code = row[1] and ("local obj = ...; obj" .. row[2]) or row[2]
  local env = setmetatable({rt = rt, duet = duet}, {__index = _G})
  return assert(load(code, "=badargs", "t", env))
end

-- The constructor a row needs, if `rt` lacks it.
local function missing(row, rt)
  local need = row[1] and (OBJECTS[row[1]].needs or row[1])
            or row[2]:match("^rt%.([%w_]+)")
  if need and rt[need] == nil then return need end
end

return function(rt)
  describe("bad arguments", function()
    for _, row in ipairs(CASES) do
      local object, call, expected = row[1], row[2], row[3]
      local title = ("%s%s raises %s"):format(object or "", call, expected)
      local need = missing(row, rt)
      if need then
        pending(("%s (%s has no %s yet)"):format(title, rt.name, need))
      else
        it(title, function()
          local fn = compile(row, rt)
          local function check()
            local spec = object and OBJECTS[object]
            local obj = spec and spec.make(rt)
            local before = spec and spec.probe(obj, rt)
            local msg = H.errmsg(fn, obj)
            local after = spec and spec.probe(obj, rt)
            if spec and spec.finish then spec.finish(obj) end
            assert.is_true(H.message_fits(msg, expected),
              ("expected error %q, got %s"):format(expected,
                msg == nil and "no error" or ("%q"):format(tostring(msg))))
            assert.are.equal(before, after, "the bad call changed the object")
          end
          if row.outside then check() else H.run(rt, check) end
        end)
      end
    end
  end)
end
