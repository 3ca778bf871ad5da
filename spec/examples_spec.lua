-- The examples (examples/*.lua), each run as a child lua5.4 on both runtimes
-- at small sizes, checked on what it prints. Times are never asserted, only
-- the shape of the lines that report them.
--
-- Tagged notsan: `make tsan` preloads TSan into every child process, and
-- /bin/sh (which io.popen runs) crashes at start with it preloaded.

local LUA = os.getenv("LUA") or "lua5.4"

local function quote(s) return "'" .. s:gsub("'", [['\'']]) .. "'" end

-- Run examples/<script> with the shell words `args`; return its stdout,
-- stderr and exit status. The child gets this process's module paths, so it
-- loads the same duet (a sanitizer build included).
local function run(script, args)
  local errfile = os.tmpname()
  local cmd = ("LUA_PATH=%s LUA_CPATH=%s %s examples/%s %s 2>%s"):format(
    quote(package.path), quote(package.cpath), LUA, script, args, errfile)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local _, _, status = p:close()
  local f = assert(io.open(errfile))
  local err = f:read("a")
  f:close()
  os.remove(errfile)
  return out, err, status
end

local function lines_of(s)
  local t = {}
  for line in s:gmatch("[^\n]*") do t[#t + 1] = line end
  if t[#t] == "" then t[#t] = nil end    -- after the final newline
  return t
end

-- Run it and return its lines; a failed run fails with the child's output.
local function output(script, args)
  local out, err, status = run(script, args)
  assert(status == 0, ("%s %s exited with %s:\n%s%s"):format(script, args,
    tostring(status), out, err))
  return lines_of(out)
end

-- The lines of `lines` that match `pattern`, with their captures.
local function matching(lines, pattern)
  local found = {}
  for _, line in ipairs(lines) do
    local caps = { line:match(pattern) }
    if caps[1] ~= nil then found[#found + 1] = caps end
  end
  return found
end

for _, name in ipairs{ "threads", "coroutines" } do
  local R = "--runtime " .. name .. " "

  describe("examples on " .. name .. " #notsan", function()
    describe("cutlery.lua", function()
      local before = "Kitchen inventory before service: Cutlery(knives=100, forks=100)"
      local fixed = "Kitchen inventory after service: Cutlery(knives=100, forks=100)"

      it("with a lock, ends with 100 knives and 100 forks", function()
        local lines = output("cutlery.lua", R .. "200 --lock")
        assert.same({ before, fixed }, lines)
      end)

      if name == "coroutines" then
        it("without a lock, still ends with 100 and 100", function()
          local lines = output("cutlery.lua", R .. "200")
            assert.same({ before, fixed }, lines)
        end)
      else
        -- the race may by chance come out right: only the form is checked
        it("without a lock, prints the counts", function()
          local lines = output("cutlery.lua", R .. "200")
            assert.equal(2, #lines)
          assert.equal(before, lines[1])
          assert.truthy(lines[2]:match(
            "^Kitchen inventory after service: Cutlery%(knives=%-?%d+, forks=%-?%d+%)$"))
        end)
      end
    end)

    describe("race.lua", function()
      it("with a lock, x ends at 0", function()
        local lines = output("race.lua", R .. "--lock 20000")
        assert.same({
          "2 threads on " .. name .. ": x = x + 1 and x = x - 1, 20,000 times each, with a lock",
          "x = 0",
        }, lines)
      end)

      it("without a lock, prints x" .. (name == "coroutines" and " = 0" or ""), function()
        local lines = output("race.lua", R .. "20000")
        assert.equal(2, #lines)
        assert.equal("2 threads on " .. name
          .. ": x = x + 1 and x = x - 1, 20,000 times each, no lock", lines[1])
        if name == "coroutines" then
          assert.equal("x = 0", lines[2])
        else
          assert.truthy(lines[2]:match("^x = %-?%d+$"))
        end
      end)
    end)

    it("producer_consumer.lua moves every item in order, then the pill stops the consumer",
      function()
        local lines = output("producer_consumer.lua", R .. "--items 4 --delay 0.01")
        assert.equal(10, #lines)
        local produced, consumed = {}, {}
        for i, line in ipairs(lines) do
          local p = line:match("^producing (%d+)$")
          local c = line:match("^consuming (%d+)$")
          if p then produced[#produced + 1] = tonumber(p) end
          if c then
            consumed[#consumed + 1] = tonumber(c)
            assert.is_true(#produced > tonumber(c), "consumed before produced: " .. i)
          end
        end
        assert.same({ 0, 1, 2, 3 }, produced)
        assert.same({ 0, 1, 2, 3 }, consumed)
        assert.equal(1, #matching(lines, "^producer done$"))
        assert.equal("consumer done", lines[#lines])
      end)

    it("token_bucket.lua logs refills, successes and denials, and stops cleanly", function()
      local lines = output("token_bucket.lua", R .. "--requests 8 --period 0.08")
      local log = "^%[INFO +[%d.]+ ([%w-]+)%]: (.*)$"
      assert.equal("-- part 1: a queue of 5 tokens, a refill thread adding 2 every 0.08 s, a stop event",
        lines[1])
      local part2
      for i, line in ipairs(lines) do
        if line:match("^%-%- part 2") then part2 = i end
      end
      assert.is_not_nil(part2)
      assert.equal("-- part 2: rt.TokenBucket, 5 tokens at most, 2 more every 0.08 s, no thread",
        lines[part2])
      for i, line in ipairs(lines) do
        if i ~= 1 and i ~= part2 then
          assert.truthy(line:match(log), "not a log line: " .. line)
        end
      end
      for part, range in ipairs{ { 2, part2 - 1 }, { part2 + 1, #lines } } do
        local msgs = {}
        for i = range[1], range[2] do
          local who, msg = lines[i]:match(log)
          msgs[#msgs + 1] = who .. ": " .. msg
        end
        local requests = matching(msgs, "^MainThread: request (%d+): (%a+)$")
        assert.equal(8, #requests)
        local count = { success = 0, denied = 0 }
        for k, r in ipairs(requests) do
          assert.equal(tostring(k), r[1])
          count[r[2]] = count[r[2]] + 1
        end
        assert.equal(8, count.success + count.denied)
        assert.is_true(count.success >= 1, "no success in part " .. part)
        assert.is_true(count.denied >= 1, "no denial in part " .. part)
        assert.equal(1, #matching(msgs,
          ("^MainThread: %d success, %d denied$"):format(count.success, count.denied)))
        if part == 1 then
          assert.equal("MainThread: Starting refill thread.", msgs[1])
          assert.is_true(#matching(msgs, "^RefillThread: Refilling bucket with 2 tokens%.$") >= 1)
          assert.same({ "MainThread: Setting stop event to true.",
            "RefillThread: Stopping refill thread.",
            "RefillThread: Refill thread completed." }, { table.unpack(msgs, #msgs - 2) })
        else
          assert.equal(0, #matching(msgs, "^RefillThread"))
        end
      end
    end)

    it("executor.lua gets each job's results, and the bad job's error, from futures", function()
      local lines = output("executor.lua", R .. "--jobs 3 --workers 2")
      assert.same({
        "4 jobs submitted to an executor with 2 workers (" .. name .. ")",
        "job 1: 10 numbers, sum 55",
        "job 2: 20 numbers, sum 210",
        "job 3: 30 numbers, sum 465",
        'bad job: failed: value 3 is not a number: "three"',
        "executor shut down",
      }, lines)
    end)

    it("countdown.lua counts down as a thread, a coroutine and a coprocess", function()
      local lines = output("countdown.lua", R .. "--from 3")
      local count = { "T-minus 3", "T-minus 2", "T-minus 1", "Kaboom!" }
      local expected = { "-- as a thread (" .. name .. " runtime)" }
      table.move(count, 1, 4, 2, expected)
      expected[6] = "-- as a coroutine"
      table.move(count, 1, 4, 7, expected)
      expected[11] = "-- as a coprocess (a ProcessExecutor's worker)"
      table.move(count, 1, 4, 12, expected)
      assert.same(expected, lines)
    end)

    it("riemann.lua --processes adds runs on 1..n worker processes", function()
      local lines = output("riemann.lua", R .. "--rectangles 100000 --threads 2 --tries 1 --processes")
      assert.equal(7, #lines)
      local hows = { "1 thread", "2 threads", "executor, 2 workers", "1 process", "2 processes" }
      for i, how in ipairs(hows) do
        local h, result = lines[i + 2]:match("^(.-)  +([%d.]+) +[%d.]+ +[%d.]+x$")
        assert.equal(how, h)
        assert.near(2, tonumber(result), 1e-6)
      end
    end)

    it("io_vs_cpu.lua prints a table of times", function()
      local lines = output("io_vs_cpu.lua", R
        .. "--io-workers 5 --io-steps 2 --io-sleep 0.01 --cpu-steps 200000 --tries 1")
      assert.equal(6, #lines)
      assert.truthy(lines[1]:match("^workload %(" .. name .. "%) +workers +seconds +time vs 1 worker$"))
      local rows = {
        "^I/O%-bound, 2 sleeps of 0%.01 s each +1 +[%d.]+$",
        "^I/O%-bound, 2 sleeps of 0%.01 s each +5 +[%d.]+ +[%d.]+x$",
        "^CPU%-bound, 200,000 steps in all +1 +[%d.]+$",
        "^CPU%-bound, 200,000 steps in all +2 +[%d.]+ +[%d.]+x$",
        "^both at once +5 %+ 1 +[%d.]+$",
      }
      for i, pattern in ipairs(rows) do
        assert.truthy(lines[i + 1]:match(pattern), "row " .. i .. ": " .. lines[i + 1])
      end
    end)

    it("riemann.lua finds 2 on 1..n threads and through an executor", function()
      local lines = output("riemann.lua", R .. "--rectangles 100000 --threads 3 --tries 1")
      assert.equal(6, #lines)
      assert.equal("Riemann sum of sin(x) over [0, pi], 100,000 rectangles (exact value: 2), "
        .. name .. " runtime", lines[1])
      assert.truthy(lines[2]:match("^how +result +seconds +speed%-up$"))
      local hows = { "1 thread", "2 threads", "3 threads", "executor, 3 workers" }
      for i, how in ipairs(hows) do
        local h, result = lines[i + 2]:match("^(.-)  +([%d.]+) +[%d.]+ +[%d.]+x$")
        assert.equal(how, h)
        assert.near(2, tonumber(result), 1e-6)
      end
    end)

    it("threadmem.lua reports memory before and while the threads wait", function()
      local lines = output("threadmem.lua", R .. "--threads 50")
      if lines[1]:match("does not have") then return end     -- no /proc here
      assert.equal(6, #lines)
      assert.truthy(lines[1]:match("^PID = %d+, " .. name .. " runtime$"))
      assert.truthy(lines[2]:match("^stack size per thread: "))
      assert.truthy(lines[3]:match("^before: +VIRT +[%d.]+ MiB +RES +[%d.]+ MiB$"))
      assert.truthy(lines[4]:match("^50 idle threads: VIRT +[%d.]+ MiB +RES +[%d.]+ MiB$"))
      assert.truthy(lines[5]:match("^per thread: VIRT %-?[%d.]+ KiB, RES %-?[%d.]+ KiB$"))
      assert.equal("all threads joined", lines[6])
    end)

    it("sum_sequence.lua prints every step in order", function()
      local lines = output("sum_sequence.lua", R .. "--steps 30 --fuzz 0.002")
      local expected, sum = {}, 1
      for counter = 0, 29 do
        expected[#expected + 1] = ("%d + %d = %d"):format(sum, counter, sum + counter)
        expected[#expected + 1] = ("-"):rep(20)
        sum = sum + counter
      end
      expected[#expected + 1] = ("after 30 steps: sum = %d (expected %d)"):format(sum, sum)
      assert.same(expected, lines)
    end)
  end)
end

describe("examples #notsan", function()
  it("demo.lua serves the restaurant four ways, each with what it shows", function()
    local lines = output("demo.lua", "--tables 50")
    local commands = matching(lines, "^%$ lua5%.4 examples/cutlery%.lua 50 (.*)$")
    assert.same({ { "--runtime threads" }, { "--runtime threads --lock" },
      { "--runtime coroutines" }, { "--runtime coroutines --seed 7" },
      { "--runtime coroutines --seed 7" } }, commands)
    local after = matching(lines, "^Kitchen inventory after service: (.*)$")
    assert.equal(5, #after)
    assert.equal("Cutlery(knives=100, forks=100)", after[2][1])
    assert.equal("Cutlery(knives=100, forks=100)", after[3][1])
    assert.equal(after[4][1], after[5][1])           -- the seed replays
    local explored = matching(lines, "^duet%.explore: (.*)$")
    assert.equal(2, #explored)
    assert.truthy(explored[1][1]:match("^seed %d+ failed %(run %d+ of 100%); replay it with DUET_SEED=%d+$"))
    assert.equal("all 100 runs pass", explored[2][1])
  end)

  it("cutlery.lua and race.lua with --seed replay the same counts", function()
    local a = output("cutlery.lua", "--runtime coroutines --seed 3 300")
    assert.same(a, output("cutlery.lua", "--runtime coroutines --seed 3 300"))
    local seen, n = {}, 0
    for seed = 1, 5 do
      local x = output("race.lua", "--runtime coroutines --seed " .. seed .. " 20000")[2]
      if not seen[x] then seen[x], n = true, n + 1 end
      assert.equal(x, output("race.lua", "--runtime coroutines --seed " .. seed .. " 20000")[2])
    end
    assert.is_true(n >= 2, "one outcome for 5 seeds")
  end)

  it("refuse an unknown option with a usage line", function()
    local out, err, status = run("race.lua", "--bogus")
    assert.equal(2, status)
    assert.equal("", out)
    assert.truthy(err:match("unknown option %-%-bogus\nusage: lua5%.4 examples/race%.lua "))
  end)

  it("refuse an unknown runtime", function()
    local _, err, status = run("race.lua", "--runtime fibers")
    assert.equal(2, status)
    assert.truthy(err:match("unknown runtime fibers"))
  end)
end)
