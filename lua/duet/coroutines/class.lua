-- Metatables for the coroutines runtime's objects: a readable __name (shown
-- by argument errors, as for the C objects) and a __tostring in the C style,
-- "duet.Queue (size 3/10): 0x55d0c8a1f2e0".
local format = string.format

-- A metatable named `name` that is also its own method table. `describe`,
-- if given, returns the text shown in parentheses.
return function(name, describe)
  local class = { __name = name }
  class.__index = class
  if describe then
    function class.__tostring(self)
      return format("%s (%s): %p", name, describe(self), self)
    end
  else
    function class.__tostring(self)
      return format("%s: %p", name, self)
    end
  end
  return class
end
