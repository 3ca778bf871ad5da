-- One consumer, three ways to run it. A consumer is any object with
-- send(item) and close(); Countdown prints "T-minus N" and then "Kaboom!".
-- The same Countdown runs
--   * as a thread:    a consumer thread fed through a queue, stopped by a
--                     sentinel (a task on the coroutines runtime);
--   * as a coroutine: a plain Lua coroutine that send() resumes, and that
--                     close() closes;
--   * as a coprocess: a child lua5.4 process, the one worker of an
--                     rt.ProcessExecutor, that keeps the consumer and gets
--                     each item as a task.
--
--   lua5.4 examples/countdown.lua [--mode all|thread|coroutine|coprocess] [--from 5]
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { mode = "all", from = 5 },
}
local rt = opts.rt
local printf = common.printf

------------------------------------------------------------ the consumer

local Countdown = {}
Countdown.__index = Countdown

function Countdown.new() return setmetatable({}, Countdown) end
function Countdown:send(item) printf("T-minus %d", item) end
function Countdown:close() printf("Kaboom!") end

-------------------------------------------------------- as a thread

-- The sentinel must still be recognisable once it has crossed into the
-- consumer's thread, so it is a string (a table would arrive as a copy).
local CONSUMER_EXIT = "consumer exit"

local function consumer_loop(inbox, consumer)
  while true do
    local item = inbox:get()
    if item == CONSUMER_EXIT then
      consumer:close()
      return
    end
    consumer:send(item)
  end
end

local ConsumerThread = {}
ConsumerThread.__index = ConsumerThread

function ConsumerThread.new(consumer)
  local inbox = rt.Queue()
  return setmetatable({
    inbox = inbox,
    thread = rt.spawn(consumer_loop, inbox, consumer),
  }, ConsumerThread)
end

function ConsumerThread:send(item) self.inbox:put(item) end

function ConsumerThread:close()
  self.inbox:put(CONSUMER_EXIT)
  assert(self.thread:join())
end

------------------------------------------------------- as a coroutine

-- Lua's coroutine.close() closes the coroutine's pending to-be-closed
-- variables, so the consumer's close() runs exactly when the coroutine is
-- closed (as a Python generator catches GeneratorExit).
local ConsumerCoroutine = {}
ConsumerCoroutine.__index = ConsumerCoroutine

function ConsumerCoroutine.new(consumer)
  local co = coroutine.create(function()
    local _ <close> = setmetatable({}, { __close = function() consumer:close() end })
    while true do
      consumer:send(coroutine.yield())
    end
  end)
  assert(coroutine.resume(co))          -- run it up to its first yield
  return setmetatable({ co = co }, ConsumerCoroutine)
end

function ConsumerCoroutine:send(item) assert(coroutine.resume(self.co, item)) end
function ConsumerCoroutine:close() assert(coroutine.close(self.co)) end

------------------------------------------------------- as a coprocess

-- A pool of one worker process runs its tasks in order, so a task per item
-- reaches the consumer in order. The consumer lives in the worker: the
-- initializer makes it there (Countdown moves with the initializer, as a
-- task's upvalues do), and the tasks find it as a global of the worker.
-- What goes over is a copy: the child cannot reach back into the parent,
-- which is the coprocess's isolation.
local CoprocessSender = {}
CoprocessSender.__index = CoprocessSender

function CoprocessSender.new(consumer)
  io.stdout:flush()                     -- our lines first, then the child's
  local ex = rt.ProcessExecutor{ max_workers = 1,
    initializer = function(c) _G.consumer = c end, initargs = { consumer } }
  return setmetatable({ ex = ex }, CoprocessSender)
end

function CoprocessSender:send(item)
  self.ex:submit(function(x) _G.consumer:send(x) end, item)
end

function CoprocessSender:close()
  self.ex:submit(function()
    _G.consumer:close()
    io.stdout:flush()
  end):result()                         -- raises if the consumer failed
  self.ex:shutdown()
end

----------------------------------------------------------------- main

local modes = {
  thread = { ConsumerThread, "as a thread (" .. rt.name .. " runtime)" },
  coroutine = { ConsumerCoroutine, "as a coroutine" },
  coprocess = { CoprocessSender, "as a coprocess (a ProcessExecutor's worker)" },
}
local order = opts.mode == "all" and { "thread", "coroutine", "coprocess" } or { opts.mode }
for _, mode in ipairs(order) do
  if not modes[mode] then
    io.stderr:write(arg[0], ": unknown mode ", mode, "\n")
    os.exit(2)
  end
end

rt.run(function()
  for _, mode in ipairs(order) do
    local wrapper, title = table.unpack(modes[mode])
    print("-- " .. title)
    local c = wrapper.new(Countdown.new())
    for n = opts.from, 1, -1 do c:send(n) end
    c:close()
  end
end)
