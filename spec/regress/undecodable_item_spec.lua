-- Regression (issue 15, item 3): one item a getter's state cannot decode
-- (here it holds a module that exists only in the sender) went back to the
-- head of the queue, so every later get in every thread raised the same
-- error and nothing behind it could be reached. Now that item is taken off
-- the queue (it counts as done for join), its getter gets the error, and
-- the queue keeps flowing. (Threads runtime only: the coroutines runtime
-- never encodes items.)
local duet = require "duet"
local rt = duet.threads

describe("regression: an undecodable queue item (threads)", function()
  local MOD = "duet_regress_only_in_sender"

  before_each(function() package.loaded[MOD] = { here = true } end)
  after_each(function() package.loaded[MOD] = nil end)

  local function in_thread(fn, ...)
    local th = rt.Thread{ target = fn, args = { ... } }
    th:start()
    return th:join(30)
  end

  it("get: raises to that getter only; the items behind it still come out", function()
    local q = rt.Queue()
    q:put("before")
    q:put({ package.loaded[MOD] })
    q:put("after")
    local ok, a, err, b, left = in_thread(function(q)
      local a = q:get(0)
      local _, err = pcall(q.get, q, 0)
      return a, err, q:get(0), q:size()
    end, q)
    assert.is_true(ok, a)
    assert.are.equal("before", a)
    assert.matches("cannot decode a queue item %(it is taken off the queue%)", err)
    assert.matches(MOD, err)
    assert.are.equal("after", b)
    assert.are.equal(0, left)
  end)

  it("get_many: the others go back in order, and join counts the dropped one done", function()
    local q = rt.Queue()
    q:put("one")
    q:put({ package.loaded[MOD] })
    q:put("three")
    local ok, err, got = in_thread(function(q)
      local _, err = pcall(q.get_many, q, 3, 0)
      local got = q:get_many(3, 0)
      for _ = 1, #got do q:task_done() end
      return err, got
    end, q)
    assert.is_true(ok, err)
    assert.matches("cannot decode a queue item", err)
    assert.are.same({ "one", "three" }, got)
    assert.is_true(q:join(30))
  end)

  it("a PriorityQueue keeps its order for the items put back", function()
    local q = rt.PriorityQueue()
    q:put({ 3, "c" })
    q:put({ 1, package.loaded[MOD] })
    q:put({ 2, "b" })
    local ok, err, first, second = in_thread(function(q)
      local _, err = pcall(q.get_many, q, 3, 0)
      return err, q:get(0)[2], q:get(0)[2]
    end, q)
    assert.is_true(ok, err)
    assert.matches("cannot decode a queue item", err)
    assert.are.same({ "b", "c" }, { first, second })
  end)
end)
