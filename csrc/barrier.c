/*
** barrier.c — Barrier(parties, [action]).
**
** Each waiting thread links a Party record (on its own C stack) in arrival
** order. The last to arrive runs the action, if any, in its own Lua state
** with the mutex released, then hands every linked party its index (arrival
** order, 0..parties-2; it keeps parties-1), unlinks them all and wakes
** them. Because a released party reads its outcome from its own record,
** the next pass can start at once: no draining phase.
**
** A party that times out breaks the barrier (as in Python); one that is
** cancelled unlinks itself, as if it had never arrived, so indices stay
** 0..parties-1 and the barrier stays usable. Once the last party has
** arrived the pass is decided: a waiter then waits for its outcome even if
** its own timeout passes meanwhile.
**
** The action is a Lua function: it is moved (transfer rules) into any
** thread that turns out to be last, decoded once per state and cached
** there; the creating state uses the function itself.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duet.h"

enum { WAITING, RELEASED, BROKEN };      /* a party's outcome */
enum { FILLING, ACTION, BROKE };          /* the barrier's phase */

typedef struct Party {
  struct Party *next;
  int outcome;
  lua_Integer index;
} Party;

typedef struct Barrier {
  duet_Object base;
  lua_Integer parties;                    /* fixed */
  duet_Message *action;                   /* fixed; NULL: none */
  pthread_mutex_t mu;                     /* guards the rest */
  pthread_cond_t cv;
  Party *head, **tail;                    /* waiting, in arrival order */
  lua_Integer count;                      /* linked parties */
  int phase;
  unsigned long pass;                     /* bumped whenever a pass ends */
} Barrier;

static const char action_key = 'a';      /* registry: proxy -> action */

static void barrier_destroy(duet_Object *o) {
  Barrier *b = (Barrier *)o;
  duet_message_free(b->action);
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cv);
  free(b);
}

static void barrier_describe(duet_Object *o, char *buf, size_t size) {
  Barrier *b = (Barrier *)o;
  long long n;
  int broken;
  pthread_mutex_lock(&b->mu);
  n = b->count;
  broken = b->phase == BROKE;
  pthread_mutex_unlock(&b->mu);
  snprintf(buf, size, "%lld/%lld waiting%s", n, (long long)b->parties,
           broken ? ", broken" : "");
}

static void get_parties(lua_State *L, duet_Object *o);
static void get_n_waiting(lua_State *L, duet_Object *o);
static void get_broken(lua_State *L, duet_Object *o);

static const duet_Field barrier_fields[] = {
  {"parties", get_parties},
  {"n_waiting", get_n_waiting},
  {"broken", get_broken},
  {NULL, NULL}
};

static const duet_Type barrier_type = {"duet.Barrier", barrier_destroy,
                                       barrier_describe, duet_barrier_open,
                                       NULL, barrier_fields, NULL};

#define check_barrier(L) ((Barrier *)duet_check_self(L, &barrier_type))

/* ------------------------------------------------ pass endings (mu held) */

/* Every linked party gets `outcome` (indices in arrival order); the list
** empties and a new pass begins in `phase`. */
static void end_pass(Barrier *b, int outcome, int phase) {
  Party *p;
  lua_Integer i = 0;
  for (p = b->head; p != NULL; p = p->next) {
    p->outcome = outcome;
    p->index = i++;
  }
  b->head = NULL;
  b->tail = &b->head;
  b->count = 0;
  b->phase = phase;
  b->pass++;
  pthread_cond_broadcast(&b->cv);
}

static void unlink_party(Barrier *b, Party *me) {
  Party **pp = &b->head;
  while (*pp != me) pp = &(*pp)->next;
  *pp = me->next;
  if (b->tail == &me->next) b->tail = pp;
  b->count--;
}

/* ------------------------------------------------------------- the action */

/* Push this state's cache: proxy -> action function. */
static void push_cache(lua_State *L) {   /* weak keys: dies with the proxy */
  duet_weak_at(L, LUA_REGISTRYINDEX, &action_key, "k");
}

/* Push this state's action function (self at 1). */
static void push_action(lua_State *L, Barrier *b) {
  push_cache(L);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pop(L, 1);
    duet_decode(L, b->action);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
}

/* ---------------------------------------------------------------- wait */

/* The last party, called with mu held: run the action (mu released around
** it), then release everyone. Returns with mu released and the wait ended;
** raises on an action error or a break that happened while it ran. */
static int release_pass(lua_State *L, Barrier *b) {
  if (b->action) {
    unsigned long pass = b->pass;
    int status;
    b->phase = ACTION;
    pthread_mutex_unlock(&b->mu);
    duet_wait_end(L);                     /* the action may wait itself */
    status = lua_pcall(L, 0, 0, 0);       /* the action, pushed before */
    pthread_mutex_lock(&b->mu);
    if (b->phase != ACTION || b->pass != pass) {  /* reset/aborted meanwhile */
      pthread_mutex_unlock(&b->mu);
      if (status != LUA_OK) return lua_error(L);
      return duet_raise(L, DUET_ERR_BROKEN_BARRIER);
    }
    if (status != LUA_OK) {
      end_pass(b, BROKEN, BROKE);
      pthread_mutex_unlock(&b->mu);
      return lua_error(L);                /* the action's own error */
    }
    end_pass(b, RELEASED, FILLING);
    pthread_mutex_unlock(&b->mu);
  }
  else {
    end_pass(b, RELEASED, FILLING);
    pthread_mutex_unlock(&b->mu);
    duet_wait_end(L);                     /* never under mu: cancel's order */
  }
  lua_pushinteger(L, b->parties - 1);
  return 1;
}

/* b:wait([timeout]) -> arrival index 0..parties-1 */
static int barrier_wait(lua_State *L) {
  Barrier *b = check_barrier(L);
  double deadline = duet_deadline(duet_opt_timeout(L, 2));
  Party me;
  int r = 0, decided;
  lua_settop(L, 1);
  if (b->action) push_action(L, b);       /* 2: Lua calls before the lock */
  me.next = NULL;
  me.outcome = WAITING;
  me.index = 0;
  duet_wait_begin(L, &b->cv, &b->mu);
  pthread_mutex_lock(&b->mu);
  while (b->phase == ACTION                /* the previous pass's action */
         && (r = duet_wait(L, &b->cv, &b->mu, HUGE_VAL)) == 0) {}
  if (r == 0 && b->phase == FILLING && b->count + 1 == b->parties)
    return release_pass(L, b);
  if (r == 0 && b->phase == FILLING) {
    *b->tail = &me;
    b->tail = &me.next;
    b->count++;
    while (me.outcome == WAITING
           && (r = duet_wait(L, &b->cv, &b->mu, deadline)) == 0) {}
    decided = me.outcome != WAITING || b->phase == ACTION;
    if (!decided && r == DUET_TIMEDOUT) end_pass(b, BROKEN, BROKE);
    else if (!decided) unlink_party(b, &me);  /* cancelled: never came */
    else                                  /* only the outcome is left */
      while (me.outcome == WAITING) pthread_cond_wait(&b->cv, &b->mu);
  }
  else if (r == 0) me.outcome = BROKEN;   /* phase BROKE */
  pthread_mutex_unlock(&b->mu);
  duet_wait_end(L);
  if (r != 0 && me.outcome == WAITING) return duet_wait_error(L, r);
  if (me.outcome == RELEASED) {
    lua_pushinteger(L, me.index);
    return 1;
  }
  return duet_raise(L, DUET_ERR_BROKEN_BARRIER);
}

/* --------------------------------------------------------------- the rest */

static int barrier_reset(lua_State *L) {
  Barrier *b = check_barrier(L);
  pthread_mutex_lock(&b->mu);
  end_pass(b, BROKEN, FILLING);
  pthread_mutex_unlock(&b->mu);
  return 0;
}

static int barrier_abort(lua_State *L) {
  Barrier *b = check_barrier(L);
  pthread_mutex_lock(&b->mu);
  end_pass(b, BROKEN, BROKE);
  pthread_mutex_unlock(&b->mu);
  return 0;
}

static void get_parties(lua_State *L, duet_Object *o) {
  lua_pushinteger(L, ((Barrier *)o)->parties);
}

static void get_n_waiting(lua_State *L, duet_Object *o) {
  Barrier *b = (Barrier *)o;
  lua_Integer n;
  pthread_mutex_lock(&b->mu);
  n = b->phase == BROKE ? 0 : b->count;
  pthread_mutex_unlock(&b->mu);
  lua_pushinteger(L, n);
}

static void get_broken(lua_State *L, duet_Object *o) {
  Barrier *b = (Barrier *)o;
  int broken;
  pthread_mutex_lock(&b->mu);
  broken = b->phase == BROKE;
  pthread_mutex_unlock(&b->mu);
  lua_pushboolean(L, broken);
}

/* Barrier(parties, [action]) */
static int barrier_new(lua_State *L) {
  lua_Integer parties = luaL_checkinteger(L, 1);
  Barrier *b;
  luaL_argcheck(L, parties >= 1, 1, "parties must be at least 1");
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  b = (Barrier *)duet_new_object(L, &barrier_type, sizeof(Barrier));  /* 3 */
  b->parties = parties;
  b->head = NULL;
  b->tail = &b->head;
  pthread_mutex_init(&b->mu, NULL);
  duet_cond_init(&b->cv);
  if (!lua_isnil(L, 2)) {
    b->action = duet_encode(L, 2, 1, "action", 0);
    push_cache(L);                        /* here: the function itself */
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 2);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  return 1;
}

static const luaL_Reg barrier_methods[] = {
  {"wait", barrier_wait},
  {"reset", barrier_reset},
  {"abort", barrier_abort},
  {NULL, NULL}
};

static const luaL_Reg barrier_funcs[] = {
  {"Barrier", barrier_new},
  {NULL, NULL}
};

int duet_barrier_open(lua_State *L) {
  duet_new_type(L, &barrier_type, barrier_methods, NULL);
  luaL_setfuncs(L, barrier_funcs, 0);
  return 0;
}
