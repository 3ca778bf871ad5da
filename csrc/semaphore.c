/*
** semaphore.c — Semaphore and BoundedSemaphore.
**
** The count is one atomic word: a permit is taken with a CAS when there is
** one, given back with an atomic add; the mutex and condition variable are
** touched only by threads that must park and by releases that find them.
** A bounded release checks its limit inside the same CAS loop, so a release
** that would go above the start value changes nothing.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "duet.h"

typedef struct Semaphore {
  duet_Object base;
  atomic_llong value;
  atomic_int parked;                      /* threads in the slow path */
  long long bound;                        /* the start value; -1: unbounded */
  pthread_mutex_t mu;                     /* orders parking against wakes */
  pthread_cond_t cv;
} Semaphore;

static void sem_destroy(duet_Object *o) {
  Semaphore *s = (Semaphore *)o;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

static void sem_describe(duet_Object *o, char *buf, size_t size) {
  snprintf(buf, size, "value %lld", atomic_load(&((Semaphore *)o)->value));
}

/* A state that is handed one kind makes its metatable alone; the
** constructors come with duet_semaphore_open. */
static int open_sem_type(lua_State *L);
static int open_bsem_type(lua_State *L);

static const duet_Type sem_type = {"duet.Semaphore", sem_destroy,
                                   sem_describe, open_sem_type,
                                   NULL, NULL, NULL};
static const duet_Type bsem_type = {"duet.BoundedSemaphore", sem_destroy,
                                    sem_describe, open_bsem_type,
                                    NULL, NULL, NULL};

/* Take a permit if there is one. seq_cst: with `parked` this is the
** Dekker pair of lock.c (a releaser sees the parker, or the parker sees
** the permit). */
static int sem_try(Semaphore *s) {
  long long v = atomic_load(&s->value);
  while (v > 0)
    if (atomic_compare_exchange_weak(&s->value, &v, v - 1)) return 1;
  return 0;
}

/* 0: got a permit; DUET_TIMEDOUT; DUET_CANCELLED / DUET_INTERRUPTED */
static int sem_wait(lua_State *L, Semaphore *s, double deadline) {
  int r = 0;
  duet_wait_begin(L, &s->cv, &s->mu);
  pthread_mutex_lock(&s->mu);
  atomic_fetch_add(&s->parked, 1);
  while (!sem_try(s)) {
    if ((r = duet_wait(L, &s->cv, &s->mu, deadline)) != 0) break;
  }
  atomic_fetch_sub(&s->parked, 1);
  if (r == DUET_TIMEDOUT && sem_try(s))
    r = 0;                                /* came at the deadline: take it */
  else if (r != 0 && atomic_load(&s->value) > 0
           && atomic_load(&s->parked) > 0)
    pthread_cond_signal(&s->cv);          /* a wake we took goes on */
  pthread_mutex_unlock(&s->mu);
  duet_wait_end(L);
  return r;
}

static int sem_op_acquire(lua_State *L, duet_Object *o, double timeout) {
  Semaphore *s = (Semaphore *)o;
  if (sem_try(s)) return 0;
  if (timeout == 0) return DUET_TIMEDOUT;
  return sem_wait(L, s, duet_deadline(timeout));
}

/* Add n permits (n >= 1) and wake up to n parked threads. */
static void sem_add(lua_State *L, Semaphore *s, long long n) {
  long long v = atomic_load(&s->value);
  int k;
  do {
    if (s->bound >= 0 && v > s->bound - n)
      luaL_error(L, "semaphore released too many times");
    if (v > LLONG_MAX - n) luaL_error(L, "semaphore value overflow");
  } while (!atomic_compare_exchange_weak(&s->value, &v, v + n));
  if ((k = atomic_load(&s->parked)) > 0) {
    pthread_mutex_lock(&s->mu);
    if (n == 1) pthread_cond_signal(&s->cv);
    else if (n >= k) pthread_cond_broadcast(&s->cv);
    else while (n-- > 0) pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
}

static void sem_op_release(lua_State *L, duet_Object *o) {
  sem_add(L, (Semaphore *)o, 1);
}

static const duet_LockOps sem_ops = {&sem_type, sem_op_acquire,
                                     sem_op_release};
static const duet_LockOps bsem_ops = {&bsem_type, sem_op_acquire,
                                      sem_op_release};

/* ------------------------------------------------------------ Lua side */

static int new_sem(lua_State *L, const duet_Type *t, int bounded) {
  lua_Integer v = luaL_optinteger(L, 1, 1);
  Semaphore *s;
  luaL_argcheck(L, v >= 0, 1, "value must be non-negative");
  s = (Semaphore *)duet_new_object(L, t, sizeof(Semaphore));
  atomic_init(&s->value, (long long)v);
  atomic_init(&s->parked, 0);
  s->bound = bounded ? (long long)v : -1;
  pthread_mutex_init(&s->mu, NULL);
  duet_cond_init(&s->cv);
  return 1;
}

static int sem_new(lua_State *L) { return new_sem(L, &sem_type, 0); }
static int bsem_new(lua_State *L) { return new_sem(L, &bsem_type, 1); }

static int acquire(lua_State *L, const duet_Type *t) {
  duet_Object *o = duet_check_self(L, t);
  double timeout = duet_opt_timeout(L, 2);
  int r = sem_op_acquire(L, o, timeout);
  if (r != 0 && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  lua_pushboolean(L, r == 0);
  return 1;
}

static int release(lua_State *L, const duet_Type *t) {
  Semaphore *s = (Semaphore *)duet_check_self(L, t);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, n >= 1, 2, "n must be at least 1");
  sem_add(L, s, (long long)n);
  return 0;
}

/* Each type's methods check self against their own type, so a wrong self
** names the right one in the error. */
static int sem_acquire(lua_State *L) { return acquire(L, &sem_type); }
static int sem_release(lua_State *L) { return release(L, &sem_type); }
static int sem_with(lua_State *L) { return duet_lock_with(L, &sem_ops); }
static int sem_guard(lua_State *L) { return duet_lock_guard(L, &sem_ops); }
static int bsem_acquire(lua_State *L) { return acquire(L, &bsem_type); }
static int bsem_release(lua_State *L) { return release(L, &bsem_type); }
static int bsem_with(lua_State *L) { return duet_lock_with(L, &bsem_ops); }
static int bsem_guard(lua_State *L) {
  return duet_lock_guard(L, &bsem_ops);
}

static const luaL_Reg sem_methods[] = {
  {"acquire", sem_acquire},
  {"release", sem_release},
  {"with", sem_with},
  {"guard", sem_guard},
  {NULL, NULL}
};

static const luaL_Reg bsem_methods[] = {
  {"acquire", bsem_acquire},
  {"release", bsem_release},
  {"with", bsem_with},
  {"guard", bsem_guard},
  {NULL, NULL}
};

static const luaL_Reg sem_funcs[] = {
  {"Semaphore", sem_new},
  {"BoundedSemaphore", bsem_new},
  {NULL, NULL}
};

static int open_sem_type(lua_State *L) {
  duet_new_type(L, &sem_type, sem_methods, NULL);
  return 0;
}

static int open_bsem_type(lua_State *L) {
  duet_new_type(L, &bsem_type, bsem_methods, NULL);
  return 0;
}

int duet_semaphore_open(lua_State *L) {
  open_sem_type(L);
  open_bsem_type(L);
  luaL_setfuncs(L, sem_funcs, 0);
  return 0;
}
