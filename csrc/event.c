/*
** event.c — Event: a flag that threads wait for.
**
** The flag is atomic so is_set() and a wait on a set event take no mutex.
** Each set() also bumps a generation under the mutex, so a waiter wakes for
** a set() even if a clear() follows before it runs (Python's Event does the
** same: wait() returns true when it was woken by a set).
*/
#include <stdio.h>
#include <stdlib.h>

#include "duet.h"

typedef struct Event {
  duet_Object base;
  atomic_int flag;
  unsigned long gen;                      /* bumped by set(); under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
} Event;

static void event_destroy(duet_Object *o) {
  Event *e = (Event *)o;
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cv);
  free(e);
}

static void event_describe(duet_Object *o, char *buf, size_t size) {
  snprintf(buf, size, "%s", atomic_load(&((Event *)o)->flag) ? "set"
                                                             : "unset");
}

static const duet_Type event_type = {"duet.Event", event_destroy,
                                     event_describe,
                                     duet_event_open, NULL, NULL, NULL};

#define check_event(L) ((Event *)duet_check_self(L, &event_type))

static int event_new(lua_State *L) {
  Event *e = (Event *)duet_new_object(L, &event_type, sizeof(Event));
  atomic_init(&e->flag, 0);
  pthread_mutex_init(&e->mu, NULL);
  duet_cond_init(&e->cv);
  return 1;
}

static int event_set(lua_State *L) {
  Event *e = check_event(L);
  pthread_mutex_lock(&e->mu);
  if (!atomic_load(&e->flag)) {
    atomic_store(&e->flag, 1);
    e->gen++;
    pthread_cond_broadcast(&e->cv);
  }
  pthread_mutex_unlock(&e->mu);
  return 0;
}

static int event_clear(lua_State *L) {
  Event *e = check_event(L);
  pthread_mutex_lock(&e->mu);
  atomic_store(&e->flag, 0);
  pthread_mutex_unlock(&e->mu);
  return 0;
}

static int event_is_set(lua_State *L) {
  lua_pushboolean(L, atomic_load(&check_event(L)->flag));
  return 1;
}

/* ev:wait([timeout]) -> true (set) | false (timed out) */
static int event_wait(lua_State *L) {
  Event *e = check_event(L);
  double timeout = duet_opt_timeout(L, 2), deadline;
  unsigned long gen;
  int r = 0, set;
  if (atomic_load(&e->flag) || timeout == 0) {
    lua_pushboolean(L, atomic_load(&e->flag));
    return 1;
  }
  deadline = duet_deadline(timeout);
  duet_wait_begin(L, &e->cv, &e->mu);
  pthread_mutex_lock(&e->mu);
  gen = e->gen;
  for (;;) {                              /* a set seen last still counts */
    set = atomic_load(&e->flag) || e->gen != gen;
    if (set || r != 0) break;
    r = duet_wait(L, &e->cv, &e->mu, deadline);
  }
  pthread_mutex_unlock(&e->mu);
  duet_wait_end(L);
  if (!set && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  lua_pushboolean(L, set);
  return 1;
}

static const luaL_Reg event_methods[] = {
  {"set", event_set},
  {"clear", event_clear},
  {"is_set", event_is_set},
  {"wait", event_wait},
  {NULL, NULL}
};

static const luaL_Reg event_funcs[] = {
  {"Event", event_new},
  {NULL, NULL}
};

int duet_event_open(lua_State *L) {
  duet_new_type(L, &event_type, event_methods, NULL);
  luaL_setfuncs(L, event_funcs, 0);
  return 0;
}
