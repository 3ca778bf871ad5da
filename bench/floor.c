/*
** bench/floor.c: the floors some of make bench's rows are measured
** against, for the benchmarks only (make builds build/bench/floor.so; duet
** never loads it). Each is the least that any Lua library doing the same
** job pays on Lua 5.4, with no duet in it:
**   floor.object()        a userdata whose acquire/release methods do
**                         nothing but return true / nothing: two C
**                         method calls, the floor of a lock pair
**                         (bench/instr_ops.lua "call_floor")
**   floor.idle_states(n)  n pthreads, each with a bare luaL_newstate() of
**                         its own, blocked on a condition variable: the
**                         floor of an idle thread (B8 "floor_thread");
**                         floor.waiting() counts those waiting,
**                         floor.release() wakes and joins them
*/
#include <pthread.h>
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>

/* acquire returns true, as a lock's does; release returns nothing */
static int return_true(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
}

static int return_nothing(lua_State *L) {
  (void)L;
  return 0;
}

static int object(lua_State *L) {
  lua_newuserdatauv(L, sizeof(void *), 0);
  luaL_setmetatable(L, "floor.object");
  return 1;
}

/* ------------------------------------------------------------ idle states */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t counted = PTHREAD_COND_INITIALIZER;
static int released, nwaiting, nfailed;   /* under mu */
static pthread_t *threads;
static int nthreads;

/* Own a state, wait to be released, close it. */
static void *idle_main(void *arg) {
  lua_State *L = luaL_newstate();
  (void)arg;
  pthread_mutex_lock(&mu);
  if (L == NULL) nfailed++;
  nwaiting++;
  pthread_cond_signal(&counted);
  while (!released) pthread_cond_wait(&wake, &mu);
  nwaiting--;
  pthread_mutex_unlock(&mu);
  if (L != NULL) lua_close(L);
  return NULL;
}

/* Wake and join the batch (none: nothing to do). */
static void release_all(void) {
  int i;
  pthread_mutex_lock(&mu);
  released = 1;
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&mu);
  for (i = 0; i < nthreads; i++) pthread_join(threads[i], NULL);
  free(threads);
  threads = NULL;
  nthreads = 0;
}

/* Start n of them, on 1 MB stacks as duet's threads (DUET_DEFAULT_STACK);
** returns how many started once every one has its state and waits. */
static int idle_states(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  pthread_attr_t attr;
  int failed;
  luaL_argcheck(L, n > 0 && n <= 100000 && threads == NULL, 1,
                "one batch of 1 to 100000 at a time");
  threads = calloc((size_t)n, sizeof *threads);
  if (threads == NULL) return luaL_error(L, "not enough memory");
  released = nwaiting = nfailed = 0;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, (size_t)1 << 20);
  for (nthreads = 0; nthreads < n; nthreads++)
    if (pthread_create(&threads[nthreads], &attr, idle_main, NULL) != 0) break;
  pthread_attr_destroy(&attr);
  pthread_mutex_lock(&mu);
  while (nwaiting < nthreads) pthread_cond_wait(&counted, &mu);
  failed = nfailed;
  pthread_mutex_unlock(&mu);
  if (failed > 0) {                       /* a floor without them is wrong */
    release_all();
    return luaL_error(L, "not enough memory for %d Lua states", failed);
  }
  lua_pushinteger(L, nthreads);
  return 1;
}

/* How many of them wait now. */
static int waiting(lua_State *L) {
  int n;
  pthread_mutex_lock(&mu);
  n = nwaiting;
  pthread_mutex_unlock(&mu);
  lua_pushinteger(L, n);
  return 1;
}

static int release(lua_State *L) {
  (void)L;
  release_all();
  return 0;
}

int luaopen_floor(lua_State *L);
int luaopen_floor(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"acquire", return_true}, {"release", return_nothing}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {
    {"object", object}, {"idle_states", idle_states}, {"waiting", waiting},
    {"release", release}, {NULL, NULL}};
  luaL_newmetatable(L, "floor.object");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
