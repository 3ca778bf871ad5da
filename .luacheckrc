-- luacheck (make lint): Lua 5.4 everywhere; specs also see busted's globals.
std = "lua54"
max_line_length = false
-- 'not (x >= y)' is written so on purpose: it is true for NaN as well
ignore = { "581" }
files["spec/"] = {
  std = "+busted",
  -- specs shadow names on purpose (each case its own `q`, `ok`, `i`),
  -- and pass callbacks whose arguments they ignore
  ignore = { "212", "42.", "43." },
  -- globals that specs set in one state and read in another
  globals = { "DUET_NESTED", "DUET_TRANSFER_GLOBAL", "WORKER_STATE",
              "x_user_global" },
}
-- an example's methods need not all use self
files["examples/"] = { self = false }
