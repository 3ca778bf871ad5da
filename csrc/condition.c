/*
** condition.c — Condition over a duet Lock or RLock (its own RLock if none
** is given).
**
** Each waiter parks on its own condition variable, linked in arrival order
** under the Condition's mutex; notify(n) unlinks the first n, marks them and
** signals exactly those. So notify(n) wakes exactly n (or all there are),
** and a waiter that times out or is cancelled before being notified just
** unlinks itself. One notified and cancelled at the same moment hands its
** notification to the next waiter, so it is never lost.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "duet.h"

typedef struct Waiter {
  pthread_cond_t cv;
  int notified;                           /* set (and unlinked) by notify */
  struct Waiter *prev, *next;
} Waiter;

typedef struct Condition {
  duet_Object base;
  duet_Object *lock;                      /* Lock or RLock; one reference */
  const duet_LockOps *ops;
  pthread_mutex_t mu;                     /* guards the list */
  Waiter *head, *tail;
  long nwaiting;
} Condition;

static void cond_destroy(duet_Object *o) {
  Condition *c = (Condition *)o;
  if (c->lock) duet_release(c->lock);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static void cond_describe(duet_Object *o, char *buf, size_t size) {
  Condition *c = (Condition *)o;
  long n;
  pthread_mutex_lock(&c->mu);
  n = c->nwaiting;
  pthread_mutex_unlock(&c->mu);
  snprintf(buf, size, "waiters %ld", n);
}

static const duet_Type cond_type = {"duet.Condition", cond_destroy,
                                    cond_describe,
                                    duet_condition_open, NULL, NULL, NULL};

#define check_cond(L) ((Condition *)duet_check_self(L, &cond_type))

/* ------------------------------------------------------ the waiter list */

static void link_waiter(Condition *c, Waiter *w) {
  w->next = NULL;
  w->prev = c->tail;
  if (c->tail) c->tail->next = w;
  else c->head = w;
  c->tail = w;
  c->nwaiting++;
}

static void unlink_waiter(Condition *c, Waiter *w) {
  if (w->prev) w->prev->next = w->next;
  else c->head = w->next;
  if (w->next) w->next->prev = w->prev;
  else c->tail = w->prev;
  c->nwaiting--;
}

/* Wake the first n waiters (n < 0: all); mu held. */
static void notify_locked(Condition *c, lua_Integer n) {
  while (n != 0 && c->head != NULL) {
    Waiter *w = c->head;
    unlink_waiter(c, w);
    w->notified = 1;
    pthread_cond_signal(&w->cv);
    if (n > 0) n--;
  }
}

/* ------------------------------------------------------------- waiting */

/* Wait for a notify with the lock given up, then take the lock back
** (whatever happened, so the caller's release stays right). 1: notified;
** 0: timed out; raises cancelled/interrupted. */
static int cond_wait_until(lua_State *L, Condition *c, double deadline) {
  Waiter w;
  long saved;
  int r = 0, notified;
  duet_jitter();
  duet_wait_prepare(L);                   /* nothing raises once w is linked */
  duet_cond_init(&w.cv);
  w.notified = 0;
  pthread_mutex_lock(&c->mu);
  link_waiter(c, &w);                     /* before the lock goes: no notify
                                             can slip between */
  pthread_mutex_unlock(&c->mu);
  saved = duet_lock_save(L, c->lock);
  duet_wait_begin(L, &w.cv, &c->mu);
  pthread_mutex_lock(&c->mu);
  while (!w.notified && (r = duet_wait(L, &w.cv, &c->mu, deadline)) == 0) {}
  notified = w.notified;
  if (!notified) unlink_waiter(c, &w);
  else if (r == DUET_CANCELLED || r == DUET_INTERRUPTED)
    notify_locked(c, 1);                  /* pass the notification on */
  pthread_mutex_unlock(&c->mu);
  duet_wait_end(L);                       /* no canceller touches w.cv now */
  pthread_cond_destroy(&w.cv);
  duet_lock_restore(L, c->lock, saved);
  if (r != 0 && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  return notified;
}

static void check_owned(lua_State *L, Condition *c, const char *what) {
  if (!duet_lock_owned(L, c->lock))
    luaL_error(L, "cannot %s on un-acquired lock", what);
}

/* c:wait([timeout]) -> true (notified) | false (timed out) */
static int cond_wait(lua_State *L) {
  Condition *c = check_cond(L);
  double timeout = duet_opt_timeout(L, 2);
  check_owned(L, c, "wait");
  lua_pushboolean(L, timeout != 0
                  && cond_wait_until(L, c, duet_deadline(timeout)));
  return 1;
}

/* c:wait_for(predicate, [timeout]) -> the predicate's last value */
static int cond_wait_for(lua_State *L) {
  Condition *c = check_cond(L);
  double timeout = duet_opt_timeout(L, 3), deadline;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  deadline = duet_deadline(timeout);
  for (;;) {
    lua_pushvalue(L, 2);
    lua_call(L, 0, 1);
    if (lua_toboolean(L, -1)) return 1;
    if (timeout >= 0 && deadline - duet_now() <= 0) return 1;
    lua_pop(L, 1);
    check_owned(L, c, "wait");
    cond_wait_until(L, c, deadline);
  }
}

/* c:notify([n=1]): wake the first n waiters (fewer if fewer wait) */
static int cond_notify(lua_State *L) {
  Condition *c = check_cond(L);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  check_owned(L, c, "notify");
  duet_jitter();
  if (n > 0) {
    pthread_mutex_lock(&c->mu);
    notify_locked(c, n);
    pthread_mutex_unlock(&c->mu);
  }
  return 0;
}

static int cond_notify_all(lua_State *L) {
  Condition *c = check_cond(L);
  check_owned(L, c, "notify");
  pthread_mutex_lock(&c->mu);
  notify_locked(c, -1);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* ---------------------------------------- the lock, seen through c */

static int cond_op_acquire(lua_State *L, duet_Object *o, double timeout) {
  Condition *c = (Condition *)o;
  return c->ops->acquire(L, c->lock, timeout);
}

static void cond_op_release(lua_State *L, duet_Object *o) {
  Condition *c = (Condition *)o;
  c->ops->release(L, c->lock);
}

static const duet_LockOps cond_ops = {&cond_type, cond_op_acquire,
                                      cond_op_release};

static int cond_acquire(lua_State *L) {
  Condition *c = check_cond(L);
  double timeout = duet_opt_timeout(L, 2);
  int r = c->ops->acquire(L, c->lock, timeout);
  if (r != 0 && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  lua_pushboolean(L, r == 0);
  return 1;
}

static int cond_release(lua_State *L) {
  Condition *c = check_cond(L);
  c->ops->release(L, c->lock);
  return 0;
}

/* whether any thread holds the lock, as Lock:locked() */
static int cond_locked(lua_State *L) {
  Condition *c = check_cond(L);
  lua_pushboolean(L, duet_lock_locked(c->lock));
  return 1;
}

static int cond_with(lua_State *L) { return duet_lock_with(L, &cond_ops); }
static int cond_guard(lua_State *L) {
  return duet_lock_guard(L, &cond_ops);
}

/* Condition([lock]) */
static int cond_new(lua_State *L) {
  Condition *c;
  duet_Object *lock;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lock = duet_rlock_new(L);             /* 1: its proxy */
  }
  else {
    lock = duet_check_lock(L, 1);
    lua_settop(L, 1);
  }
  c = (Condition *)duet_new_object(L, &cond_type, sizeof(Condition));
  pthread_mutex_init(&c->mu, NULL);
  duet_retain(lock);
  c->lock = lock;
  c->ops = duet_lock_ops(lock);
  return 1;
}

static const luaL_Reg cond_methods[] = {
  {"acquire", cond_acquire},
  {"release", cond_release},
  {"locked", cond_locked},
  {"with", cond_with},
  {"guard", cond_guard},
  {"wait", cond_wait},
  {"wait_for", cond_wait_for},
  {"notify", cond_notify},
  {"notify_all", cond_notify_all},
  {NULL, NULL}
};

static const luaL_Reg cond_funcs[] = {
  {"Condition", cond_new},
  {NULL, NULL}
};

int duet_condition_open(lua_State *L) {
  duet_new_type(L, &cond_type, cond_methods, NULL);
  luaL_setfuncs(L, cond_funcs, 0);
  return 0;
}
