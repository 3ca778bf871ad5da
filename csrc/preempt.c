/*
** preempt.c — seeded preemption for the coroutines runtime.
**
** A Preempter holds duet's generator (rng.c) and a count hook that it sets
** on each task's coroutine. When the count runs out the hook yields the
** task from inside its Lua code (a count hook may yield in Lua 5.4), so the
** scheduler gets it back as though it had blocked and picks the next task
** with the same generator: the whole interleaving is a function of the seed.
**
** The hook yields only at a safe point. It waits (looks again a few
** instructions later) while the task cannot yield (a C boundary: a
** table.sort comparator, a metamethod called from C, a gsub callback),
** while the running function is duet's own Lua code (its source starts
** with the prefix the scheduler gives, so the runtime's steps stay
** atomic), and while the scheduler holds preemption off (SharedTable
** updates). A coroutine the preempter did not arm (one a task created,
** which inherits its creator's hook) loses the hook at its first count.
**
** One Preempter is active per Lua state, kept in the registry, where the
** hook (which gets nothing but the coroutine) finds it; one that is
** stopped or replaced leaves its coroutines' hooks to remove themselves.
*/
#include <stdio.h>
#include <string.h>

#include "duet.h"

#define PREEMPTER "duet.Preempter"
#define PREFIX_MAX 512
#define WHERE_MAX 256
/* instructions between looks while a task may not yield */
#define DEFER_BOUNDARY 32

typedef struct Preempter {
  duet_Rng rng;
  lua_Integer min, max;                   /* instructions between preemptions */
  int hold;                               /* > 0: the scheduler forbids it */
  int preempted;                          /* the last yield was the hook's */
  size_t prefix_len;
  char prefix[PREFIX_MAX];                /* source prefix of duet's code */
  char where[WHERE_MAX];                  /* "source:line" of that yield */
} Preempter;

static const char active_key = 'p';       /* registry: the active preempter */

static Preempter *check_preempter(lua_State *L) {
  return (Preempter *)luaL_checkudata(L, 1, PREEMPTER);
}

static int draw_count(Preempter *p) {
  uint64_t span = (uint64_t)(p->max - p->min) + 1;
  return (int)(p->min + (lua_Integer)duet_rng_below(&p->rng, span));
}

static void preempt_hook(lua_State *L, lua_Debug *ar);

static void rearm(lua_State *L, int count) {
  lua_sethook(L, preempt_hook, LUA_MASKCOUNT, count);
}

/* Was `L` armed by `p` (index 'idx' on the stack)? */
static int armed(lua_State *L, int idx) {
  int yes;
  lua_getiuservalue(L, idx, 1);
  lua_pushthread(L);
  yes = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return yes;
}

static void preempt_hook(lua_State *L, lua_Debug *ar) {
  Preempter *p;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &active_key);
  p = (Preempter *)lua_touserdata(L, -1);
  if (p == NULL || !armed(L, lua_gettop(L))) {
    lua_pop(L, 1);
    lua_sethook(L, NULL, 0, 0);           /* stopped, or not a task */
    return;
  }
  lua_pop(L, 1);
  if (p->hold > 0 || !lua_isyieldable(L)) {
    rearm(L, DEFER_BOUNDARY);
    return;
  }
  lua_getinfo(L, "Sl", ar);
  if (strncmp(ar->source, p->prefix, p->prefix_len) == 0) {
    rearm(L, 1);                          /* duet's code: just after it */
    return;
  }
  snprintf(p->where, sizeof p->where, "%s:%d", ar->short_src,
           ar->currentline);
  p->preempted = 1;
  rearm(L, draw_count(p));
  lua_yield(L, 0);
}

/* core.preempter(seed, min, max, prefix): a new preempter, made the
** active one. */
static int preempter_new(lua_State *L) {
  lua_Integer seed = luaL_checkinteger(L, 1);
  lua_Integer min = luaL_checkinteger(L, 2);
  lua_Integer max = luaL_checkinteger(L, 3);
  size_t len;
  const char *prefix = luaL_checklstring(L, 4, &len);
  Preempter *p;
  luaL_argcheck(L, min >= 1 && min <= 1000000000, 2, "out of range");
  luaL_argcheck(L, max >= min && max <= 1000000000, 3, "out of range");
  luaL_argcheck(L, len < PREFIX_MAX, 4, "too long");
  p = (Preempter *)lua_newuserdatauv(L, sizeof(Preempter), 1);
  memset(p, 0, sizeof *p);
  duet_rng_seed(&p->rng, (uint64_t)seed);
  p->min = min;
  p->max = max;
  memcpy(p->prefix, prefix, len);
  p->prefix_len = len;
  luaL_setmetatable(L, PREEMPTER);
  duet_new_weak(L, "k");                  /* the armed coroutines */
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &active_key);
  return 1;
}

/* p:arm(co): preempt coroutine co from now on. */
static int preempter_arm(lua_State *L) {
  Preempter *p = check_preempter(L);
  lua_State *co = lua_tothread(L, 2);
  luaL_argexpected(L, co != NULL, 2, "coroutine");
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  rearm(co, draw_count(p));
  return 0;
}

/* p:below(n): a draw in 1..n (1 when n <= 1, drawing nothing). */
static int preempter_below(lua_State *L) {
  Preempter *p = check_preempter(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  lua_pushinteger(L, n <= 1 ? 1 : 1 + (lua_Integer)duet_rng_below(&p->rng,
                                                         (uint64_t)n));
  return 1;
}

/* p:take(): "source:line" if the task that just yielded was preempted
** there, else nil. */
static int preempter_take(lua_State *L) {
  Preempter *p = check_preempter(L);
  if (!p->preempted) return 0;
  p->preempted = 0;
  lua_pushstring(L, p->where);
  return 1;
}

/* p:hold(delta): forbid (+1) or allow again (-1) preemption. */
static int preempter_hold(lua_State *L) {
  Preempter *p = check_preempter(L);
  p->hold += (int)luaL_checkinteger(L, 2);
  return 0;
}

/* p:stop(): no longer the active preempter. */
static int preempter_stop(lua_State *L) {
  check_preempter(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &active_key);
  if (lua_rawequal(L, 1, -1)) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &active_key);
  }
  return 0;
}

static const luaL_Reg preempter_methods[] = {
  {"arm", preempter_arm},
  {"below", preempter_below},
  {"take", preempter_take},
  {"hold", preempter_hold},
  {"stop", preempter_stop},
  {NULL, NULL}
};

static const luaL_Reg preempt_funcs[] = {
  {"preempter", preempter_new},
  {NULL, NULL}
};

int duet_preempt_open(lua_State *L) {
  if (luaL_newmetatable(L, PREEMPTER)) {
    luaL_newlib(L, preempter_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, preempt_funcs, 0);
  return 0;
}
