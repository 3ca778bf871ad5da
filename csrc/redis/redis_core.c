/*
** redis_core.c — luaopen_duet_redis_core, and the stop flag that
** bin/duet-worker reads: SIGTERM and SIGINT set it, so the worker finishes
** the tasks it holds and leaves instead of dying mid-task. A plain flag is
** all a signal handler may touch; every thread of the process reads it.
*/
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "redis_core.h"

static atomic_int stop_signal;

static void on_stop_signal(int sig) {
  atomic_store(&stop_signal, sig);
}

/* catch_stop_signals() -> nothing: from now on SIGTERM and SIGINT only set
** the flag. */
static int rc_catch_stop_signals(lua_State *L) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
    return luaL_error(L, "cannot catch SIGTERM and SIGINT");
  return 0;
}

/* stop_signal() -> the name of the signal that asked to stop, or nil. */
static int rc_stop_signal(lua_State *L) {
  int sig = atomic_load(&stop_signal);
  if (sig == 0) lua_pushnil(L);
  else lua_pushstring(L, sig == SIGTERM ? "SIGTERM" : "SIGINT");
  return 1;
}

static const luaL_Reg functions[] = {
  {"catch_stop_signals", rc_catch_stop_signals},
  {"stop_signal", rc_stop_signal},
  {NULL, NULL}
};

int luaopen_duet_redis_core(lua_State *L) {
  luaL_newlib(L, functions);
  duet_resp_open(L);
  duet_portable_open(L);
  return 1;
}
