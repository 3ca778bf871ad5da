-- Writes the fuzzer's seed corpus: duet.encode of varied values, without
-- the magic prefix (the fuzz target adds it). Usage: lua5.4 corpus.lua DIR
local duet = require "duet"
local dir = assert(arg[1], "usage: corpus.lua DIR")
local shared = {1, 2}
local cyclic = {name = "loop"}
cyclic.self = cyclic
local seeds = {
  nil, true, false, 0, -1, 2^53, math.mininteger, 1.5, -0.0, 1/0,
  "", "hello", ("x"):rep(300), "\0\1\2",
  {}, {1, 2, 3}, {a = 1, b = {c = {d = "deep"}}}, {shared, shared},
  cyclic, setmetatable({1}, {__name = "meta"}),
  {[true] = false, [1.5] = "f", [{}] = {}}, {duet.cancelled, duet.timeout},
}
for i = 1, 22 do
  local s = duet.encode(seeds[i])
  local f = assert(io.open(("%s/seed%02d"):format(dir, i), "wb"))
  f:write(s:sub(#"\27duet1" + 1))
  f:close()
end
