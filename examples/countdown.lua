-- One consumer, three ways to run it. A consumer is any object with
-- send(item) and close(); Countdown prints "T-minus N" and then "Kaboom!".
-- The same Countdown runs
--   * as a thread:    a consumer thread fed through a queue, stopped by a
--                     sentinel (a task on the coroutines runtime);
--   * as a coroutine: a plain Lua coroutine that send() resumes, and that
--                     close() closes;
--   * as a coprocess: a child lua5.4 process reading items encoded with
--                     duet.encode from a pipe.
--
--   lua5.4 examples/countdown.lua [--mode all|thread|coroutine|coprocess] [--from 5]
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"
local duet = require "duet"

local opts = common.options{
  options = { mode = "all", from = 5, child = false },
  about = "--child: read items from stdin (how the coprocess mode starts itself)",
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

-- Items travel as duet.encode strings. Those are binary (they may hold
-- newlines), so each one goes out behind its length: string.pack's "s4".
local CoprocessSender = {}
CoprocessSender.__index = CoprocessSender

local function shell_quote(s) return "'" .. s:gsub("'", [['\'']]) .. "'" end

function CoprocessSender.new()
  -- The child is this script again, with --child. It needs to find duet
  -- the way this process did, so it gets our module paths.
  local cmd = ("LUA_PATH=%s LUA_CPATH=%s %s %s --child"):format(
    shell_quote(package.path), shell_quote(package.cpath),
    shell_quote(arg[-1] or "lua5.4"), shell_quote(arg[0]))
  io.stdout:flush()                     -- our lines first, then the child's
  return setmetatable({ pipe = assert(io.popen(cmd, "w")) }, CoprocessSender)
end

function CoprocessSender:send(item)
  self.pipe:write(string.pack(">s4", duet.encode(item)))
  self.pipe:flush()
end

function CoprocessSender:close()
  assert(self.pipe:close())             -- end of input; waits for the child
end

-- The child's side: decode each item and hand it to the consumer; at the
-- end of the input, close the consumer.
local function coprocess_run(input, consumer)
  while true do
    local header = input:read(4)
    if not header then break end
    local size = string.unpack(">I4", header)
    consumer:send(duet.decode(input:read(size)))
  end
  consumer:close()
end

----------------------------------------------------------------- main

if opts.child then
  io.stdout:setvbuf("line")             -- each line out as it is printed
  coprocess_run(io.stdin, Countdown.new())
  return
end

local modes = {
  thread = { ConsumerThread, "as a thread (" .. rt.name .. " runtime)" },
  coroutine = { ConsumerCoroutine, "as a coroutine" },
  coprocess = { CoprocessSender, "as a coprocess (a child lua5.4 fed over a pipe)" },
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
