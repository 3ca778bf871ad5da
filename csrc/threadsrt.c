/*
** threadsrt.c — duet.threads, the OS-threads runtime's table (rt): a thin
** layer over duet.core.
**
** It is built here rather than in Lua because a function that uses rt
** takes rt with it to every thread it runs on: each new thread's state
** would open package, search the path and run a Lua file for it, which
** cost four times an empty thread's spawn. Here it is one table, opened
** without package (decode.c's push_module), and its fields come from
** duet.core on first use, so a thread opens only the concepts it needs.
** lua/duet/threads.lua hands the same table to require.
*/
#include <string.h>

#include "duet.h"

static const char rt_key = 'r';           /* registry: this state's rt */

static void push_rt(lua_State *L);

/* rt.RemoteExecutor{...}, rt.RemoteQueue{...}, rt.TokenBucket{redis=...}:
** duet.remote's makers, given rt. (Noted with duet_note_entry, so that the
** makers' argument errors point at the caller.) */
static int remote_make(lua_State *L, const char *module, const char *name) {
  lua_settop(L, 1);
  duet_require(L, module);
  lua_getfield(L, -1, name);
  push_rt(L);
  lua_pushvalue(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

static int remote_executor(lua_State *L) {
  return remote_make(L, "duet.remote.executor", "RemoteExecutor");
}

static int remote_queue(lua_State *L) {
  return remote_make(L, "duet.remote.queue", "RemoteQueue");
}

/* rt.TokenBucket: {redis = url, ...} makes the bucket shared through
** Redis; anything else is duet.core's own. */
static int token_bucket(lua_State *L) {
  int n = lua_gettop(L);
  lua_CFunction make;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_getfield(L, 1, "redis");
    if (!lua_isnil(L, -1))
      return remote_make(L, "duet.remote.tokenbucket", "TokenBucket");
    lua_pop(L, 1);
  }
  duet_push_module(L);
  lua_getfield(L, -1, "TokenBucket");     /* not raw: opens its concept */
  make = lua_tocfunction(L, -1);
  if (make == NULL) {                     /* replaced by the user */
    lua_remove(L, -2);
    lua_insert(L, 1);
    lua_call(L, n, 1);
    return 1;
  }
  lua_settop(L, n);
  /* called in this frame, so that its argument errors name this one */
  return make(L);
}

/* Push one of the C functions above, noted as an entry (duet.h). */
static void push_entry(lua_State *L, lua_CFunction f) {
  duet_note_entry(L, f);
  lua_pushcfunction(L, f);
}

/* The fields that are duet.core's own under another name, or the same. */
static const char *const core_fields[][2] = {
  {"wait", "wait_futures"}, {"as_completed", "as_completed"},
  {"now", "now"}, {"sleep", "sleep"}, {"current", "current"},
  {"spawn", "spawn"}, {"stack_size", "stack_size"}, {NULL, NULL}
};

/* __index of rt: looks the field up once, then keeps it. duet.core's
** constructors (CapWords: Lock, Queue...) and functions; the sockets of
** duet.socket (rt.wrap, rt.wait_readable, rt.wait_writable), whose waits
** block the OS thread; rt.ProcessExecutor (duet.process); the objects on
** Redis (duet.remote.*). */
static int rt_index(lua_State *L) {
  const char *k = duet_index_key(L);
  int i;
  if (k == NULL) return 0;
  if (strcmp(k, "wrap") == 0 || strcmp(k, "wait_readable") == 0
      || strcmp(k, "wait_writable") == 0) {
    duet_require(L, "duet.socket");
    lua_getfield(L, -1, "threads");
    lua_call(L, 0, 1);
    lua_getfield(L, -1, k);
  }
  else if (strcmp(k, "ProcessExecutor") == 0) {
    duet_require(L, "duet.process");
    lua_getfield(L, -1, "threads_executor");
  }
  else if (strcmp(k, "RemoteExecutor") == 0)
    push_entry(L, remote_executor);
  else if (strcmp(k, "RemoteQueue") == 0)
    push_entry(L, remote_queue);
  else if (strcmp(k, "TokenBucket") == 0)
    push_entry(L, token_bucket);
  else {
    const char *field = NULL;
    for (i = 0; core_fields[i][0]; i++)
      if (strcmp(k, core_fields[i][0]) == 0) field = core_fields[i][1];
    if (field == NULL && k[0] >= 'A' && k[0] <= 'Z') field = k;
    if (field == NULL) return 0;
    duet_push_module(L);
    lua_getfield(L, -1, field);           /* not raw: opens its concept */
  }
  if (lua_isnil(L, -1)) return 1;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

/* debug.traceback as a message handler: a string error gets the stack; any
** other value stays as it is. */
static int add_traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL && !lua_isnoneornil(L, 1)) return 1;
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* rt.run(main, ...): main's results, once every non-daemon thread it
** started has finished. Errors in main propagate with a traceback. */
static int rt_run(lua_State *L) {
  int status;
  if (lua_type(L, 1) != LUA_TFUNCTION)    /* named 'run' even under pcall */
    return luaL_error(L, "bad argument #1 to 'run' (function expected, got %s)",
                      lua_isnoneornil(L, 1) ? "no value"
                                            : duet_type_name(L, 1));
  lua_pushcfunction(L, add_traceback);
  lua_insert(L, 1);
  status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 1);
  luaL_checkstack(L, 3, NULL);
  duet_push_module(L);
  lua_getfield(L, -1, "wait_threads");
  lua_remove(L, -2);
  lua_call(L, 0, 0);
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L) - 1;
}

static void push_rt(lua_State *L) {
  static const luaL_Reg funcs[] = {{"run", rt_run}, {NULL, NULL}};
  if (duet_module_table(L, &rt_key, funcs, rt_index, NULL)) {
    lua_pushliteral(L, "threads");
    lua_setfield(L, -2, "name");
  }
}

/* The opener of duet.threads, for luaL_requiref and for threads.lua. */
int duet_threads_module(lua_State *L) {
  push_rt(L);
  return 1;
}

/* The concept's names in duet.core: threads.lua's way in. */
int duet_threadsrt_open(lua_State *L) {
  lua_pushcfunction(L, duet_threads_module);
  lua_setfield(L, -2, "threads_runtime");
  return 0;
}
