-- Sockets on each runtime (issue 9), beyond the shared contract that
-- spec/conformance/socket.lua checks: LuaSocket's patterns and partial
-- results, timeouts, peer close, cancel while blocked, many connections at
-- once, descriptors never leaked; on the threads runtime, a socket moved to
-- another thread; on the coroutines runtime, the scheduler's one poll.
--
-- Everything runs over 127.0.0.1 with bounded counts, and every socket has
-- a timeout (H.LONG) as a safety bound: a bug fails, never hangs. Times are
-- never asserted. Thread targets may capture only movable values (rt, the
-- socket module, numbers, strings, duet objects): on the threads runtime
-- they run in another Lua state.

local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local duet = require "duet"
local H = require "helpers"
local socket = require "socket"

local SHORT, LONG = H.SHORT, H.LONG

-- The open descriptors of this process, once whatever is unreachable is
-- collected.
local function open_fds()
  collectgarbage()
  collectgarbage()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  local p = assert(io.popen("ls /proc/" .. pid .. "/fd"))
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

-- Wait (up to LONG) until no more descriptors are open than `before`:
-- a thread's state, and so what it still held, closes just after its join.
local function fds_back_to(before)
  local deadline = os.time() + LONG
  local n = open_fds()
  while n > before and os.time() <= deadline do
    socket.sleep(0.01)
    n = open_fds()
  end
  return n
end

for _, name in ipairs{ "threads", "coroutines" } do
  local rt = duet.runtime(name)

  -- A listening duet socket on a free loopback port, and the port.
  local function listen()
    local srv = rt.wrap(assert(socket.bind("127.0.0.1", 0)))
    srv:settimeout(LONG)
    local _, port = srv:getsockname()
    return srv, tonumber(port)
  end

  -- Two connected duet sockets, both held here: a client and the server's
  -- end (a loopback connect completes before the accept).
  local function pair()
    local srv, port = listen()
    local a = rt.wrap(socket.tcp())
    a:settimeout(LONG)
    assert(a:connect("127.0.0.1", port))
    local b = assert(srv:accept())
    b:settimeout(LONG)
    srv:close()
    return a, b
  end

  describe("sockets on " .. name, function()
    describe("rt.wrap()", function()
      it("takes the descriptor: LuaSocket forgets it, duet owns it", function()
        H.run(rt, function()
          local ls = assert(socket.bind("127.0.0.1", 0))
          local fd = ls:getfd()
          local srv = rt.wrap(ls)
          assert.are.equal(-1, ls:getfd())
          assert.are.equal(fd, srv:getfd())
          ls:close()                      -- closes nothing any more
          local _, port = srv:getsockname()
          local c = rt.wrap(socket.tcp())
          assert.are.equal(1, c:connect("127.0.0.1", port))
          local conn = assert(srv:accept())
          assert.are.equal("duet.Socket", H.typename(conn))
          assert.matches("^duet%.Socket %(client, fd %d+%): ", tostring(conn))
          c:close()
          conn:close()
          srv:close()
          assert.matches("^duet%.Socket %(closed%): ", tostring(srv))
        end)
      end)

      it("keeps what LuaSocket had read ahead", function()
        H.run(rt, function()
          local ls = assert(socket.bind("127.0.0.1", 0))
          local _, port = ls:getsockname()
          local c = assert(socket.connect("127.0.0.1", port))
          local lconn = assert(ls:accept())
          c:send("abcdef\nnext\n")
          lconn:settimeout(LONG)
          assert.are.equal("ab", lconn:receive(2))   -- LuaSocket buffered the rest
          local conn = rt.wrap(lconn)
          conn:settimeout(LONG)
          assert.are.equal("cdef", conn:receive("*l"))
          assert.are.equal("next", conn:receive("*l"))
          c:close()
          conn:close()
          ls:close()
        end)
      end)

      it("returns a duet socket as it is", function()
        H.run(rt, function()
          local a, b = pair()
          assert.are.equal(a, rt.wrap(a))
          a:close()
          b:close()
        end)
      end)

      it("refuses anything but a LuaSocket TCP object", function()
        assert.are.equal("bad argument #1 to 'wrap' (LuaSocket TCP object expected, got no value)",
          H.errmsg(rt.wrap))
        assert.are.equal("bad argument #1 to 'wrap' (LuaSocket TCP object expected, got table)",
          H.errmsg(rt.wrap, {}))
        local u = socket.udp()
        assert.matches("^bad argument #1 to 'wrap' %(LuaSocket TCP object expected, got udp{",
          H.errmsg(rt.wrap, u))
        u:close()
      end)
    end)

    describe(":receive()", function()
      it("reads lines (without \\r), byte counts, prefixes and the rest", function()
        H.run(rt, function()
          local a, b = pair()
          a:send("one\r\ntwo\nthr\ree\nfourfive\nsix")
          assert.are.same({"one", nil, nil, n = 3}, table.pack(b:receive("*l")))
          assert.are.equal("two", b:receive("l"))
          assert.are.equal("thr", b:receive(3))
          assert.are.equal("ee", b:receive())          -- "*l" by default
          assert.are.equal("pre-four", b:receive(8, "pre-"))
          assert.are.equal("whole", b:receive(3, "whole")) -- the prefix is enough
          assert.are.equal("five", b:receive("*l"))
          a:close()
          assert.are.equal("six", b:receive("a"))
          assert.are.same({nil, "closed", ""}, {b:receive("*a")})
          b:close()
        end)
      end)

      it("gives nil, 'timeout' and the partial result, and goes on afterwards", function()
        H.run(rt, function()
          local a, b = pair()
          b:settimeout(0.1)
          a:send("abcd")
          assert.are.same({nil, "timeout", "abcd"}, {b:receive(10)})
          a:send("efgh\n")
          assert.are.equal("efgh", b:receive("*l"))
          a:send("no newline\r")
          assert.are.same({nil, "timeout", "no newline"}, {b:receive("*l")})
          a:send(" yet\n")
          assert.are.equal("no newline yet", b:receive("*l", "no newline"))
          a:send("xyz")
          assert.are.same({nil, "timeout", "xyz"}, {b:receive("*a")})
          b:settimeout(0)                 -- one try, no wait
          assert.are.same({nil, "timeout", ""}, {b:receive(1)})
          b:settimeout(nil)
          b:settimeout(0.1, "t")          -- a total timeout works the same
          assert.are.same({nil, "timeout", ""}, {b:receive("*l")})
          a:close()
          b:close()
        end)
      end)

      it("gives nil, 'closed' and the partial result when the peer closes", function()
        H.run(rt, function()
          local a, b = pair()
          a:send("one\nbye")
          a:close()
          assert.are.equal("one", b:receive("*l"))
          assert.are.same({nil, "closed", "bye"}, {b:receive("*l")})
          assert.are.same({nil, "closed", ""}, {b:receive(5)})
          assert.are.same({nil, "closed", "p"}, {b:receive(5, "p")})
          b:close()
        end)
      end)

      it("raises for a bad pattern or on a socket that cannot receive", function()
        H.run(rt, function()
          local srv = listen()
          local a, b = pair()
          -- plain calls (not through pcall), so that errors name them
          assert.are.equal("bad argument #1 to 'receive' (invalid receive pattern)",
            H.errmsg(function() b:receive("*x") end))
          assert.are.equal("bad argument #1 to 'receive' (invalid receive pattern)",
            H.errmsg(function() b:receive(-1) end))
          assert.are.equal("calling 'receive' on bad self (tcp{client} expected, got tcp{server})",
            H.errmsg(function() srv:receive() end))
          assert.are.equal("calling 'accept' on bad self (tcp{server} expected, got tcp{client})",
            H.errmsg(function() b:accept() end))
          a:close()
          b:close()
          srv:close()
        end)
      end)
    end)

    describe(":send()", function()
      it("sends data[i..j] and returns the last index sent", function()
        H.run(rt, function()
          local a, b = pair()
          assert.are.same({5, nil, nil, n = 3}, table.pack(a:send("hello world", 1, 5)))
          assert.are.equal(11, a:send("hello world", 7))
          assert.are.equal(2, a:send("abc", -2, -2))
          assert.are.equal(4, a:send("abcdef", 5, 2))   -- nothing: i - 1
          assert.are.equal("helloworldb", b:receive(11))
          a:close()
          b:close()
        end)
      end)

      it("gives nil, 'closed' and the last index sent once the peer is gone", function()
        H.run(rt, function()
          local a, b = pair()
          b:close()
          local r
          for _ = 1, 100 do               -- the first sends may still go out
            r = {a:send("abc")}
            if r[1] == nil then break end
            rt.sleep(0.001)
          end
          assert.are.same({nil, "closed", 0}, r)
          a:close()
        end)
      end)

      it("times out with the last index sent when the peer does not read", function()
        H.run(rt, function()
          local a, b = pair()
          a:settimeout(0.1)
          local big = ("x"):rep(16 * 1024 * 1024)
          local r = {a:send(big)}
          assert.is_nil(r[1])
          assert.are.equal("timeout", r[2])
          assert.is_true(r[3] > 0 and r[3] < #big)
          a:close()
          b:close()
        end)
      end)
    end)

    describe("a closed socket", function()
      it("reads as closed, as a closed LuaSocket object does", function()
        H.run(rt, function()
          local srv = listen()
          local a, b = pair()
          a:close()
          srv:close()
          assert.are.same({nil, "closed", ""}, {a:receive()})
          assert.are.same({nil, "closed", 0}, {a:send("x")})
          assert.are.same({nil, "closed"}, {srv:accept()})
          assert.are.same({nil, "closed"}, {a:getpeername()})
          assert.are.equal(-1, a:getfd())
          assert.is_false(a:dirty())
          assert.are.equal(1, a:close())  -- again: nothing more to do
          assert.are.equal(1, a:settimeout(1))
          b:close()
        end)
      end)

      it("closes as a to-be-closed variable", function()
        H.run(rt, function()
          local a, b = pair()
          do
            local c <close> = a   -- luacheck: ignore 211 (closed at the end)
          end
          assert.are.equal(-1, a:getfd())
          b:close()
        end)
      end)
    end)

    describe("names and options", function()
      it("getsockname, getpeername and setoption answer as LuaSocket does", function()
        H.run(rt, function()
          local srv, port = listen()
          local a = rt.wrap(socket.tcp())
          a:settimeout(LONG)
          assert(a:connect("127.0.0.1", port))
          local b = assert(srv:accept())
          assert.are.same({"127.0.0.1", tostring(port), "inet"}, {srv:getsockname()})
          assert.are.same({"127.0.0.1", port, "inet"}, {a:getpeername()})
          local _, bport = b:getpeername()
          assert.are.same({"127.0.0.1", tostring(bport), "inet"}, {a:getsockname()})
          assert.are.equal(1, b:setoption("tcp-nodelay", true))
          assert.is_true(b:getoption("tcp-nodelay"))
          assert.are.equal(1, b:setoption("linger", {on = true, timeout = 0}))
          assert.matches("invalid option 'bogus'", H.errmsg(b.setoption, b, "bogus", true))
          a:close()
          b:close()
          srv:close()
        end)
      end)

      it("connect reports a refused connection", function()
        H.run(rt, function()
          local srv, port = listen()
          srv:close()                     -- nobody listens there any more
          local c = rt.wrap(socket.tcp())
          c:settimeout(LONG)
          assert.are.same({nil, "connection refused"}, {c:connect("127.0.0.1", port)})
          c:close()
        end)
      end)
    end)

    describe("many connections", function()
      it("echo 50 clients at once, a thread (task) per connection", function()
        local N, M = 50, 20
        local served, echoed = H.run(rt, function()
          local srv, port = listen()
          local server = rt.spawn(function(s, n)
            local handlers = {}
            for i = 1, n do
              local conn = assert(s:accept())
              handlers[i] = rt.spawn(function(c)
                c:settimeout(LONG)
                local k = 0
                while true do
                  local line = c:receive("*l")
                  if not line then break end
                  assert(c:send(line .. "\n"))
                  k = k + 1
                end
                c:close()
                return k
              end, conn)
            end
            s:close()
            local total = 0
            for i = 1, n do
              local ok, k = handlers[i]:join()
              assert(ok, k)
              total = total + k
            end
            return total
          end, srv, N)
          local clients = {}
          for i = 1, N do
            clients[i] = rt.spawn(function(id)
              local c = rt.wrap(require("socket").tcp())
              c:settimeout(LONG)
              assert(c:connect("127.0.0.1", port))
              local good = 0
              for j = 1, M do
                local msg = ("client %d line %d"):format(id, j)
                assert(c:send(msg .. "\n"))
                if c:receive("*l") == msg then good = good + 1 end
              end
              c:close()
              return good
            end, i)
          end
          local good = 0
          for i = 1, N do
            local ok, k = clients[i]:join(LONG)
            assert(ok, k)
            good = good + k
          end
          local ok, total = server:join(LONG)
          assert(ok, total)
          return total, good
        end)
        assert.are.equal(N * M, served)
        assert.are.equal(N * M, echoed)
      end)
    end)

    describe("cancel", function()
      it("wakes a receive with duet.cancelled and loses no byte read so far", function()
        local first, rest = H.run(rt, function()
          local a, b = pair()
          local blocked, caught = rt.Event(), rt.Event()
          local th = rt.spawn(function(s, ev, caught)
            -- set inside the pcall: a cancel right after it is caught too
            local ok, e = pcall(function()
              ev:set()
              return s:receive("*l")
            end)
            caught:set()
            local line = s:receive("*l")  -- the whole line, after the cancel
            s:close()
            return ok, e, line
          end, b, blocked, caught)
          blocked:wait(LONG)
          a:send("par")                   -- read ahead, not returned
          H.settle(rt)
          th:cancel()
          caught:wait(LONG)               -- (the end of the line must not
          a:send("tial\n")                -- race with the cancel)
          local joined, ok, e, line = th:join(LONG)
          assert.is_true(joined)
          a:close()
          return {ok, e}, line
        end)
        assert.are.same({false, duet.cancelled}, first)
        assert.are.equal("partial", rest)
      end)

      it("ends a thread (task) blocked in receive, accept, send or wait_readable", function()
        H.run(rt, function()
          local srv = listen()
          local a, b = pair()
          local e, f = pair()             -- nobody reads f: e's send blocks
          local blocked = rt.Event()
          local ths = {
            rt.spawn(function(s, ev) ev:set(); return s:receive("*a") end, b, blocked),
            rt.spawn(function(s) return s:accept() end, srv),
            rt.spawn(function(s)
              s:settimeout(LONG)
              return s:send(("x"):rep(16 * 1024 * 1024))
            end, e),
          }
          blocked:wait(LONG)
          H.settle(rt)
          for _, th in ipairs(ths) do th:cancel() end
          for _, th in ipairs(ths) do
            assert.are.same({false, duet.cancelled}, {th:join(LONG)})
          end
          local c, d = pair()
          local th = rt.spawn(function(s) return rt.wait_readable(s) end, d)
          H.settle(rt)
          th:cancel()
          assert.are.same({false, duet.cancelled}, {th:join(LONG)})
          for _, s in ipairs{a, b, c, d, e, f, srv} do s:close() end
        end)
      end)
    end)

    describe("rt.wait_readable()", function()
      it("is true at once for input read ahead, even with nothing on the descriptor", function()
        H.run(rt, function()
          local a, b = pair()
          a:send("one\ntwo\n")
          assert.are.equal("one", b:receive("*l"))  -- "two\n" is buffered
          assert.is_true(b:dirty())
          assert.is_true(rt.wait_readable(b, 0))
          assert.is_false(rt.wait_readable(b:getfd(), 0))
          assert.are.equal("two", b:receive("*l"))
          assert.is_false(rt.wait_readable(b, 0))
          a:close()
          b:close()
        end)
      end)

      it("refuses what has no descriptor", function()
        H.run(rt, function()
          assert.are.equal("bad argument #1 to 'wait_readable' (descriptor or object with getfd expected, got table)",
            H.errmsg(function() rt.wait_readable({}) end))
          assert.are.equal("bad argument #1 to 'wait_writable' (invalid descriptor)",
            H.errmsg(function() rt.wait_writable(-1) end))
          assert.are.equal("bad argument #1 to 'wait_readable' (invalid descriptor)",
            H.errmsg(function() rt.wait_readable(2^31) end))
          assert.are.equal("bad argument #1 to 'wait_readable' (invalid descriptor)",
            H.errmsg(function() rt.wait_readable(0.5) end))
          -- what getfd() returns is checked alike on both runtimes: nil,
          -- a fraction or a string are no descriptor (not fd 0)
          for _, v in ipairs{ "nil", 0.5, "x", -1, 2^31 } do
            local obj = { getfd = function() if v ~= "nil" then return v end end }
            assert.are.equal("bad argument #1 to 'wait_writable' (closed or invalid descriptor)",
              H.errmsg(function() rt.wait_writable(obj, 0) end))
          end
          local a, b = pair()
          a:close()
          assert.are.equal("bad argument #1 to 'wait_readable' (closed or invalid descriptor)",
            H.errmsg(function() rt.wait_readable(a) end))
          assert.are.equal("bad argument #2 to 'wait_readable' (timeout must be a non-negative number)",
            H.errmsg(function() rt.wait_readable(b, -1) end))
          b:close()
        end)
      end)
    end)

    it("leaks no descriptor: closed, dropped, cancelled or refused sockets", function()
      local before = open_fds()
      H.run(rt, function()
        for _ = 1, 5 do
          local a, b = pair()
          a:send("x")
          b:close()
          -- `a` is dropped unclosed: collected
        end
        local srv = listen()
        local th = rt.spawn(function(s) return s:accept() end, srv)
        H.settle(rt)
        th:cancel()
        th:join(LONG)
        srv:close()
        local c = rt.wrap(socket.tcp())
        c:connect("127.0.0.1", 1)
        c:close()
      end)
      local after = fds_back_to(before)
      assert.is_true(after <= before, ("%d descriptors open before, %d after")
        :format(before, after))
    end)

    if name == "threads" then
      describe("moving a socket to another thread", function()
        it("moves it with its descriptor; the sender's handle reads as closed", function()
          H.run(rt, function()
            local a, b = pair()
            local fd = b:getfd()
            a:send("first\nsecond\n")
            assert.are.equal("first", b:receive("*l"))  -- "second" is read ahead
            local th = rt.spawn(function(s)
              local line = s:receive("*l")
              local gotfd = s:getfd()
              s:send("from the thread\n")
              s:close()
              return line, gotfd
            end, b)
            assert.are.same({nil, "closed", ""}, {b:receive()})
            assert.are.same({nil, "closed", 0}, {b:send("x")})
            assert.are.same({nil, "closed"}, {b:getpeername()})
            assert.are.equal(-1, b:getfd())
            assert.are.equal(1, b:close())  -- closes nothing: not ours any more
            assert.are.same({true, "second", fd}, {th:join(LONG)})
            assert.are.equal("from the thread", a:receive("*l"))
            a:close()
          end)
        end)

        it("moves it through a queue, alone or inside a table", function()
          H.run(rt, function()
            local a, b = pair()
            local c, d = pair()
            local q = rt.Queue()
            q:put(b)
            q:put({sock = d})
            assert.are.equal(-1, b:getfd())
            assert.are.equal(-1, d:getfd())
            local th = rt.spawn(function(q)
              local s1, t = q:get(), q:get()
              local l1, l2 = s1:receive("*l"), t.sock:receive("*l")
              s1:close()
              t.sock:close()
              return l1, l2
            end, q)
            a:send("via queue\n")
            c:send("in a table\n")
            assert.are.same({true, "via queue", "in a table"}, {th:join(LONG)})
            a:close()
            c:close()
          end)
        end)

        it("stays with the sender when a put times out", function()
          H.run(rt, function()
            local a, b = pair()
            local q = rt.Queue(1)
            q:put(1)
            assert.are.same({nil, "full"}, {q:put(b, SHORT)})
            assert.are.same({nil, "full"}, {q:put({b}, 0)})
            a:send("still mine\n")
            assert.are.equal("still mine", b:receive("*l"))
            a:close()
            b:close()
          end)
        end)

        it("comes back as a thread's result; the first state to take it owns it", function()
          H.run(rt, function()
            local srv, port = listen()
            local th = rt.spawn(function(p)
              local c = rt.wrap(require("socket").tcp())
              c:settimeout(5)
              assert(c:connect("127.0.0.1", p))
              return c
            end, port)
            local conn = assert(srv:accept())
            local ok, c = th:join(LONG)
            assert.is_true(ok)
            assert.is_true(c:getfd() >= 0)
            c:send("back\n")
            conn:settimeout(LONG)
            assert.are.equal("back", conn:receive("*l"))
            local t = rt.SharedTable()
            t.conn = conn                 -- moved into the table
            assert.are.equal(-1, conn:getfd())
            local first = rt.spawn(function(t) return t.conn:getfd() >= 0 end, t)
            assert.are.same({true, true}, {first:join(LONG)})
            assert.are.equal(-1, t.conn:getfd())   -- taken already
            c:close()
            srv:close()
          end)
        end)
      end)
    end

    if name == "coroutines" then
      describe("the scheduler", function()
        it("waits for sockets and timers together", function()
          local order = H.run(rt, function()
            local a, b = pair()
            local order = {}
            local reader = rt.spawn(function()
              local line = b:receive("*l")
              order[#order + 1] = "got " .. line
            end)
            local writer = rt.spawn(function()
              rt.sleep(0.05)
              order[#order + 1] = "slept"
              a:send("line\n")
            end)
            reader:join(LONG)
            writer:join(LONG)
            a:close()
            b:close()
            return order
          end)
          assert.are.same({"slept", "got line"}, order)
        end)

        it("does not let tasks that are always ready starve one waiting on a socket", function()
          local spins = H.run(rt, function()
            local a, b = pair()
            local done, spins = false, 0
            local spinner = rt.spawn(function()
              while not done do
                spins = spins + 1
                rt.sleep(0)
              end
            end)
            local reader = rt.spawn(function()
              b:receive("*l")
              done = true
            end)
            a:send("wake up\n")
            reader:join(LONG)
            spinner:join(LONG)
            a:close()
            b:close()
            return spins
          end)
          assert.is_true(spins >= 1)
        end)

        it("wakes a task waiting on a socket another task closes", function()
          local r = H.run(rt, function()
            local a, b = pair()
            local th = rt.spawn(function() return {b:receive("*l")} end)
            H.settle(rt)
            b:close()
            local _, got = th:join(LONG)
            a:close()
            return got
          end)
          assert.are.same({nil, "closed", ""}, r)
        end)

        it("raises when a socket would wait outside rt.run", function()
          local a, b = H.run(rt, pair)
          assert.matches("blocking call outside rt.run", H.errmsg(b.receive, b))
          b:settimeout(0)
          assert.are.same({nil, "timeout", ""}, {b:receive()})  -- no wait: fine
          a:close()
          b:close()
        end)
      end)
    end

    -- Children of /bin/sh, so #notsan: with TSan preloaded into every child
    -- (make tsan), /bin/sh crashes at start. The child bounds its own wait:
    -- `timeout` would pass a second SIGINT on, and lua.c ends the process at
    -- a second one.
    it("is interrupted by Ctrl-C while the main thread waits on a socket #notsan", function()
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(("package.path = %q; package.cpath = %q\n"):format(package.path, package.cpath),
        [[
        local rt = require("duet").runtime(...)
        rt.run(function()
          local srv = rt.wrap(assert(require("socket").bind("127.0.0.1", 0)))
          io.write("ready\n")
          io.stdout:flush()
          srv:settimeout(10)
          srv:accept()
          io.write("not interrupted\n")
        end)
      ]])
      f:close()
      local out = os.tmpname()
      local p = assert(io.popen(([[
        lua5.4 %s %s >%s 2>&1 & pid=$!
        for i in $(seq 500); do grep -q ready %s && break; sleep 0.01; done
        kill -INT $pid; wait $pid; echo "status $?"
      ]]):format(script, name, out, out)))
      local status = p:read("a")
      p:close()
      local text = assert(io.open(out)):read("a")
      os.remove(script)
      os.remove(out)
      assert.matches("interrupted!", text)
      assert.matches("status 1", status)
    end)

    it("runs examples/echo_client.lua against examples/echo_server.lua #notsan", function()
      local p = assert(io.popen(("LUA_PATH=%q LUA_CPATH=%q lua5.4 examples/echo_client.lua"
        .. " --runtime %s --clients 20 --messages 10 --seconds %d 2>&1")
        :format(package.path, package.cpath, name, LONG)))
      local out = p:read("a")
      local ok = p:close()
      assert.is_true(ok, out)
      assert.matches("20 client%(s%) x 10 line%(s%): 200 echoed, 0 client%(s%) failed\n", out)
      assert.matches("server: served 20 connection%(s%), echoed 200 line%(s%)\n", out)
    end)
  end)
end
