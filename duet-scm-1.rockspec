package = "duet"
version = "scm-1"
source = { url = "git+file:///dev/null" }
description = {
  summary = "OS threads and coroutines behind one concurrency API for Lua 5.4",
  detailed = [[
duet gives Lua scripts OS threads (one Lua state each, running in parallel),
locks, events, queues, executors and a token bucket, and pairs each with a
coroutine equivalent behind the same API.
]],
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = {
  HIREDIS = { header = "hiredis/hiredis.h" },
}
build = {
  type = "builtin",
  modules = {
    ["duet.core"] = {
      sources = {
        "csrc/core.c",
        "csrc/util.c",
        "csrc/clock.c",
        "csrc/object.c",
        "csrc/transfer.c",
        "csrc/encode.c",
        "csrc/decode.c",
        "csrc/portable.c",
        "csrc/thread.c",
        "csrc/wait.c",
        "csrc/pool.c",
        "csrc/modcache.c",
        "csrc/value.c",
        "csrc/queue.c",
        "csrc/queuestore.c",
        "csrc/queuewait.c",
        "csrc/sharedtable.c",
        "csrc/lock.c",
        "csrc/semaphore.c",
        "csrc/condition.c",
        "csrc/event.c",
        "csrc/barrier.c",
        "csrc/future.c",
        "csrc/executor.c",
        "csrc/execopts.c",
        "csrc/taskfn.c",
        "csrc/tokenbucket.c",
        "csrc/poll.c",
        "csrc/socket.c",
        "csrc/socketio.c",
        "csrc/sockopt.c",
        "csrc/rng.c",
        "csrc/preempt.c",
        "csrc/jitter.c",
        "csrc/process.c",
        "csrc/threadsrt.c",
        "csrc/duetmod.c",
      },
      libraries = { "pthread", "m", "dl" },
      defines = { "_GNU_SOURCE" },
    },
    -- RESP and the portable codec for duet.redis: a module of its own, so
    -- that duet.core never links hiredis
    ["duet.redis_core"] = {
      sources = {
        "csrc/redis/redis_core.c",
        "csrc/redis/resp.c",
        "csrc/redis/portable.c",
      },
      libraries = { "hiredis" },
      defines = { "_GNU_SOURCE" },
    },
    ["duet"] = "lua/duet/init.lua",
    ["duet.threads"] = "lua/duet/threads.lua",
    ["duet.socket"] = "lua/duet/socket.lua",
    ["duet.process"] = "lua/duet/process.lua",
    ["duet.procworker"] = "lua/duet/procworker.lua",
    ["duet.redis"] = "lua/duet/redis.lua",
    ["duet.remote.protocol"] = "lua/duet/remote/protocol.lua",
    ["duet.remote.worker"] = "lua/duet/remote/worker.lua",
    ["duet.remote.executor"] = "lua/duet/remote/executor.lua",
    ["duet.remote.queue"] = "lua/duet/remote/queue.lua",
    ["duet.remote.tokenbucket"] = "lua/duet/remote/tokenbucket.lua",
  },
  -- the worker of RemoteExecutor queues (docs/GUIDE.md, "Beyond one machine")
  install = { bin = { ["duet-worker"] = "bin/duet-worker" } },
}
