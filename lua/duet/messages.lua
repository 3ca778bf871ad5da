-- duet.messages: the error messages both runtimes raise, in one place.
--
-- The threads runtime raises them from C (csrc/), the coroutines runtime
-- and the Lua-written objects from here: spec/messages_spec.lua checks
-- that each is spelt the same in a C string literal, so the two runtimes
-- cannot drift apart. Formats take string.format's %s/%d/%g, which C
-- writes with lua_pushfstring (%I for %d; snprintf for %g).
return {
  -- argument checks (check.lua, executors, sockets)
  timeout = "timeout must be a non-negative number",
  duration = "duration must be a non-negative number",
  field_type = "field '%s': %s expected, got %s",
  field_positive = "field '%s' must be positive",
  list_n = "field 'n' must be a non-negative integer",
  memory_limit = "field 'memory_limit': positive integer expected",
  initargs_many = "field 'initargs': too many values",
  max_workers = "max_workers must be at least 1",
  broken_executor = "broken executor: the initializer raised: ",
  after_shutdown = "cannot schedule new futures after shutdown",
  bad_fd = "invalid descriptor",
  no_fd = "descriptor or object with getfd",     -- .. " expected, got T"
  closed_fd = "closed or invalid descriptor",
  -- objects
  read_only = "field '%s' is read-only",
  no_field = "cannot set field '%s' of %s",
  -- futures
  future_of_executor = "the future belongs to an executor",
  future_cancelled = "the future is cancelled",
  future_running = "the future is already running",
  future_finished = "the future is already finished",
  future_at = "duet.Future expected at index %d, got %s",
  -- locks, conditions, semaphores, barriers
  release_unlocked = "release unlocked lock",
  release_unowned = "cannot release un-acquired lock",
  unowned = "cannot %s on un-acquired lock",
  lock_expected = "duet.Lock or duet.RLock",     -- .. " expected, got T"
  sem_released = "semaphore released too many times",
  sem_overflow = "semaphore value overflow",
  sem_negative = "value must be non-negative",
  n_at_least_1 = "n must be at least 1",
  parties = "parties must be at least 1",
  -- queues
  priority_nan = "priority is NaN",
  priority_type = "number, string or table expected, got ",
  nil_item_at = "nil item at index ",
  non_nil = "non-nil value expected",
  put_closed = "put on a closed queue",
  over_maxsize = "more items than maxsize",
  max_at_least_1 = "max must be at least 1",
  task_done = "task_done() called too many times",
  -- shared tables
  key_nan = "key is NaN",
  key_type = "string, number or boolean key expected, got ",
  not_a_number = "value at key '%s' is a %s, not a number",
  -- threads
  started_once = "threads can only be started once",
  target_type = "field 'target': function expected, got ",
  args_type = "field 'args': table expected, got ",
  join_current = "cannot join current thread",
  join_unstarted = "cannot join thread before it is started",
  daemon_active = "cannot set daemon status of active thread",
  -- token buckets
  bucket_tostring = "%g/%g tokens",
  bucket_fields = "give either capacity and rate, or max_tokens, "
    .. "refill_tokens and refill_period",
  bucket_tokens = "field 'tokens' must be between 0 and the capacity",
  n_positive = "n must be positive",
  n_over_capacity = "n exceeds the bucket's capacity",
}
