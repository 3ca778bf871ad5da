/*
** core.c — luaopen_duet_core: builds the module table from every concept.
**
** Values, time and what threads need of every state open at once; each
** other concept (the Thread type, errors, queues, locks, executors,
** sockets...) opens in a state the first time one of its names is needed
** there: a module field (`Queue`) or a metatable (an object of that type
** arriving from another thread). Opening everything costs a new thread's
** state more time and memory than the rest of the thread.
** Which names each concept defines is learnt once per process by opening
** it in a scratch state, so no list here has to be kept in step.
*/
#include <stdlib.h>
#include <string.h>

#include "lualib.h"
#include "duet.h"

typedef int (*duet_Opener)(lua_State *L);

/* Each opener adds its functions to the module table on the stack top. */
static const duet_Opener eager[] = {
  duet_clock_open,
  duet_object_open,
  duet_transfer_open,
  duet_portable_open,
  duet_thread_setup,
  NULL
};

static const duet_Opener lazy[] = {
  duet_thread_open,
  duet_sleep_open,
  duet_error_open,
  duet_queue_open,
  duet_sharedtable_open,
  duet_lock_open,
  duet_semaphore_open,
  duet_condition_open,
  duet_event_open,
  duet_barrier_open,
  duet_future_open,
  duet_executor_open,
  duet_tokenbucket_open,
  duet_poll_open,
  duet_socket_open,
  duet_preempt_open,
  duet_jitter_open,
  duet_process_open,
  duet_threadsrt_open,
  duet_duetmod_open,
  NULL
};

typedef struct Name {
  char *name;
  int opener;                             /* index in lazy[] */
} Name;

static Name *names;                       /* what each lazy opener defines */
static size_t nnames;
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

/* Note every string key of the table at idx that `seen` lacks. */
static void note_new_keys(lua_State *L, int idx, int seen, int opener) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      if (lua_rawget(L, seen) == LUA_TNIL) {
        Name *n = (Name *)realloc(names, (nnames + 1) * sizeof *n);
        if (n != NULL) {
          names = n;
          names[nnames].name = strdup(lua_tostring(L, -2));
          names[nnames].opener = opener;
          if (names[nnames].name) nnames++;
        }
        lua_pushvalue(L, -2);
        lua_pushboolean(L, 1);
        lua_rawset(L, seen);
      }
      lua_pop(L, 1);
    }
  }
}

static void mark_keys(lua_State *L, int idx, int seen) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
  }
}

static int learn(lua_State *L) {
  int i, mod, seen;
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(L, LUA_LOADLIBNAME, luaopen_package, 1);
  lua_pushboolean(L, 1);                  /* not a state to join at exit */
  lua_setfield(L, LUA_REGISTRYINDEX, DUET_SCRATCH);
  lua_newtable(L);
  mod = lua_gettop(L);
  for (i = 0; eager[i]; i++) eager[i](L);
  lua_newtable(L);
  seen = lua_gettop(L);
  mark_keys(L, LUA_REGISTRYINDEX, seen);
  mark_keys(L, mod, seen);
  for (i = 0; lazy[i]; i++) {
    lua_settop(L, seen);
    lua_pushvalue(L, mod);
    lazy[i](L);
    lua_settop(L, seen);
    note_new_keys(L, LUA_REGISTRYINDEX, seen, i);
    note_new_keys(L, mod, seen, i);
  }
  return 0;
}

/* Once per process: which names each lazy opener defines. */
static void learn_names(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return;                  /* then every state opens all */
  lua_pushcfunction(L, learn);
  (void)lua_pcall(L, 0, 0, 0);
  lua_close(L);
}

/* Open, in this state, the concepts that define module field `name`, if
** they are not open yet; 0 if none does. */
static int open_named(lua_State *L, const char *name) {
  size_t k;
  int found = 0;
  pthread_once(&names_once, learn_names);
  if (nnames == 0) {                      /* could not learn: open all */
    int i;
    for (i = 0; lazy[i]; i++) duet_open_concept(L, lazy[i]);
    return 1;
  }
  for (k = 0; k < nnames; k++)
    if (strcmp(names[k].name, name) == 0) {
      duet_open_concept(L, lazy[names[k].opener]);
      found = 1;
    }
  return found;
}

/* __index of the module table: the first use of `Queue` opens queues. */
static int core_index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k == NULL || !open_named(L, k)) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, 1);
  return 1;
}

int luaopen_duet_core(lua_State *L) {
  const duet_Opener *o;
  if (duet_get_module(L) == LUA_TTABLE)
    return 1;                             /* opened in this state before */
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  duet_module_set(L, luaopen_duet_core);
  for (o = eager; *o; o++) duet_open_concept(L, *o);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, core_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  return 1;
}
