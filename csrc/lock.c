/*
** lock.c — Lock and RLock, and the with()/guard() that every lock-like
** object (Lock, RLock, Semaphore, BoundedSemaphore, Condition) shares.
**
** A lock is one atomic word. A free lock is taken with one compare-and-
** swap and given back with one atomic exchange; only when that finds
** threads parked does the release touch the mutex to wake one of them.
** A contended acquire spins briefly (the holder is usually about to let
** go: a park and wake costs ~14 us, a spin a few hundred ns) and then
** parks on a condition variable rather than a raw futex, so that duet's
** cancellable waits (duet_wait) and thread:cancel() apply unchanged.
**
** The lock is not fair: a releasing thread may take it straight back.
** Like Python's, and it is what keeps the uncontended path one CAS.
*/
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "duet.h"

/* ------------------------------------------------------------- the word */

typedef struct Mutex {
  atomic_int held;                        /* 0 free, 1 held */
  atomic_int parked;                      /* threads in the slow path */
  atomic_int waking;                      /* a woken parker is yet to retry */
  pthread_mutex_t mu;                     /* orders parking against wakes */
  pthread_cond_t cv;
} Mutex;


static int spin_limit;                    /* 0 on one CPU: spinning is waste */

static void mutex_init(Mutex *m) {
  atomic_init(&m->held, 0);
  atomic_init(&m->parked, 0);
  atomic_init(&m->waking, 0);
  pthread_mutex_init(&m->mu, NULL);
  duet_cond_init(&m->cv);
}

static void mutex_destroy(Mutex *m) {
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv);
}

/* The parked counter and the word form a Dekker pair with the release
** (store word, then read parked): both sides are seq_cst, so either the
** releaser sees the parker or the parker's CAS sees the free word. */
static int mutex_try(Mutex *m) {
  int free_ = 0;
  return atomic_compare_exchange_strong(&m->held, &free_, 1);
}

static int mutex_spin(Mutex *m) {
  int i;
  for (i = 0; i < spin_limit; i++) {
    if (atomic_load_explicit(&m->held, memory_order_relaxed) == 0
        && mutex_try(m))
      return 1;
    duet_cpu_relax();
  }
  return 0;
}

/* Wake one parked thread. The mutex makes the wake land after a parker's
** last failed CAS (it holds mu from counting itself in until
** pthread_cond_wait lets go). */
static void wake_one(Mutex *m) {
  pthread_mutex_lock(&m->mu);
  if (atomic_load(&m->parked) > 0) pthread_cond_signal(&m->cv);
  else atomic_store(&m->waking, 0);       /* nobody to retry: none pending */
  pthread_mutex_unlock(&m->mu);
}

/* One wake in flight is enough: until the woken parker has retried (it
** clears `waking` first, then CASes the word), later releases need not
** signal, so a holder that takes and gives the lock back in a loop pays
** for one wake per parked episode instead of one per release. Any return
** from a wait clears `waking`, so a wake that found nobody (a parker
** leaving on timeout) cannot leave it stuck. All seq_cst: a release that
** saw `waking` set stored its free word before, so the parker's later CAS
** sees it. */
static inline void mutex_wake(Mutex *m) {
  if (atomic_load(&m->parked) > 0 && !atomic_exchange(&m->waking, 1))
    wake_one(m);
}

/* Give the word back; returns 0 if it was not held (nothing changed). */
static inline int mutex_release(Mutex *m) {
  if (atomic_exchange(&m->held, 0) == 0) return 0;
  mutex_wake(m);
  return 1;
}

/* Contended acquire. 0: acquired; DUET_TIMEDOUT (holds nothing);
** DUET_CANCELLED / DUET_INTERRUPTED (holds nothing). No Lua API call while
** mu is held: duet_wait_begin/end run outside it. */
static int mutex_wait(lua_State *L, Mutex *m, double deadline) {
  int r = 0;
  if (mutex_spin(m)) return 0;
  duet_wait_begin(L, &m->cv, &m->mu);
  pthread_mutex_lock(&m->mu);
  atomic_fetch_add(&m->parked, 1);
  while (!mutex_try(m)) {
    r = duet_wait(L, &m->cv, &m->mu, deadline);
    atomic_store(&m->waking, 0);
    if (r != 0) break;
  }
  atomic_fetch_sub(&m->parked, 1);
  if (r == DUET_TIMEDOUT && mutex_try(m))
    r = 0;                                /* free at the deadline: take it */
  else if (r != 0 && atomic_load(&m->held) == 0
           && atomic_load(&m->parked) > 0)
    pthread_cond_signal(&m->cv);          /* a wake we took goes on */
  pthread_mutex_unlock(&m->mu);
  duet_wait_end(L);
  return r;
}

/* Acquire with a timeout as from duet_opt_timeout (-1: forever). */
static int mutex_acquire(lua_State *L, Mutex *m, double timeout) {
  if (mutex_try(m)) return 0;
  if (timeout == 0) return DUET_TIMEDOUT;
  return mutex_wait(L, m, duet_deadline(timeout));
}

/* Not cancellable: Condition.wait taking its lock back, which must happen
** whatever the wait's outcome so that the caller's release stays right. */
static void mutex_take(Mutex *m) {
  if (mutex_try(m) || mutex_spin(m)) return;
  pthread_mutex_lock(&m->mu);
  atomic_fetch_add(&m->parked, 1);
  while (!mutex_try(m)) {
    pthread_cond_wait(&m->cv, &m->mu);
    atomic_store(&m->waking, 0);
  }
  atomic_fetch_sub(&m->parked, 1);
  pthread_mutex_unlock(&m->mu);
}

/* acquire's result: true/false, or raise cancelled/interrupted */
static int push_acquired(lua_State *L, int r) {
  if (r != 0 && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  lua_pushboolean(L, r == 0);
  return 1;
}

/* ----------------------------------------------------------------- Lock */

typedef struct Lock {
  duet_Object base;
  Mutex m;
} Lock;

static void lock_destroy(duet_Object *o) {
  mutex_destroy(&((Lock *)o)->m);
  free(o);
}

static void lock_describe(duet_Object *o, char *buf, size_t size) {
  Lock *k = (Lock *)o;
  snprintf(buf, size, "%s", atomic_load(&k->m.held) ? "locked" : "unlocked");
}

/* A state that is handed a Lock makes Lock's metatable alone; duet.Lock()
** and RLock() come with duet_lock_open. */
static int open_lock_type(lua_State *L);
static int open_rlock_type(lua_State *L);

static const duet_Type lock_type = {"duet.Lock", lock_destroy,
                                    lock_describe, open_lock_type, NULL, NULL,
                                    NULL};

#define check_lock(L) ((Lock *)duet_check_self(L, &lock_type))

static int lock_op_acquire(lua_State *L, duet_Object *o, double timeout) {
  duet_jitter();
  return mutex_acquire(L, &((Lock *)o)->m, timeout);
}

static void lock_op_release(lua_State *L, duet_Object *o) {
  if (!mutex_release(&((Lock *)o)->m))
    luaL_error(L, "release unlocked lock");
}

static const duet_LockOps lock_ops = {&lock_type, lock_op_acquire,
                                      lock_op_release};

static int lock_new(lua_State *L) {
  Lock *k = (Lock *)duet_new_object(L, &lock_type, sizeof(Lock));
  mutex_init(&k->m);
  return 1;
}

/* lock:acquire([timeout]) -> true | false. The uncontended path is this
** function's first CAS; everything else is out of line. */
static int lock_acquire(lua_State *L) {
  Lock *k = check_lock(L);
  double timeout = lua_gettop(L) < 2 ? -1 : duet_opt_timeout(L, 2);
  duet_jitter();
  if (mutex_try(&k->m)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return push_acquired(L, timeout == 0 ? DUET_TIMEDOUT
                          : mutex_wait(L, &k->m, duet_deadline(timeout)));
}

static int lock_release(lua_State *L) {
  Lock *k = check_lock(L);
  if (!mutex_release(&k->m)) return luaL_error(L, "release unlocked lock");
  return 0;
}

static int lock_locked(lua_State *L) {
  Lock *k = check_lock(L);
  lua_pushboolean(L, atomic_load(&k->m.held) != 0);
  return 1;
}

static int lock_with(lua_State *L) { return duet_lock_with(L, &lock_ops); }
static int lock_guard(lua_State *L) { return duet_lock_guard(L, &lock_ops); }

static const luaL_Reg lock_methods[] = {
  {"acquire", lock_acquire},
  {"release", lock_release},
  {"locked", lock_locked},
  {"with", lock_with},
  {"guard", lock_guard},
  {NULL, NULL}
};

/* ---------------------------------------------------------------- RLock */

typedef struct RLock {
  duet_Object base;
  Mutex m;
  atomic_llong owner;                     /* thread ident; 0: none */
  atomic_long count;                      /* written by the owner only */
} RLock;

static void rlock_destroy(duet_Object *o) {
  mutex_destroy(&((RLock *)o)->m);
  free(o);
}

static void rlock_describe(duet_Object *o, char *buf, size_t size) {
  RLock *k = (RLock *)o;
  long long owner = atomic_load(&k->owner);
  if (owner == 0) snprintf(buf, size, "unlocked");
  else snprintf(buf, size, "owner %lld, count %ld", owner,
                atomic_load_explicit(&k->count, memory_order_relaxed));
}

static const duet_Type rlock_type = {"duet.RLock", rlock_destroy,
                                     rlock_describe,
                                     open_rlock_type, NULL, NULL, NULL};

#define check_rlock(L) ((RLock *)duet_check_self(L, &rlock_type))

/* Only the calling thread can have stored its own ident in owner, so a
** relaxed read that equals it is exact. */
static int rlock_owned(RLock *k, lua_Integer me) {
  return atomic_load_explicit(&k->owner, memory_order_relaxed) == me;
}

static void rlock_set_owner(RLock *k, lua_Integer me, long count) {
  atomic_store_explicit(&k->owner, me, memory_order_relaxed);
  atomic_store_explicit(&k->count, count, memory_order_relaxed);
}

static int rlock_op_acquire(lua_State *L, duet_Object *o, double timeout) {
  RLock *k = (RLock *)o;
  lua_Integer me = duet_self_ident(L);
  int r;
  duet_jitter();
  if (rlock_owned(k, me)) {
    atomic_store_explicit(&k->count, atomic_load_explicit(
        &k->count, memory_order_relaxed) + 1, memory_order_relaxed);
    return 0;
  }
  r = mutex_acquire(L, &k->m, timeout);
  if (r == 0) rlock_set_owner(k, me, 1);
  return r;
}

static void rlock_op_release(lua_State *L, duet_Object *o) {
  RLock *k = (RLock *)o;
  long n;
  if (!rlock_owned(k, duet_self_ident(L)))
    luaL_error(L, "cannot release un-acquired lock");
  n = atomic_load_explicit(&k->count, memory_order_relaxed) - 1;
  if (n > 0) {
    atomic_store_explicit(&k->count, n, memory_order_relaxed);
    return;
  }
  rlock_set_owner(k, 0, 0);
  mutex_release(&k->m);
}

static const duet_LockOps rlock_ops = {&rlock_type, rlock_op_acquire,
                                       rlock_op_release};

static int rlock_new(lua_State *L) {
  duet_rlock_new(L);
  return 1;
}

static int rlock_acquire(lua_State *L) {
  RLock *k = check_rlock(L);
  double timeout = duet_opt_timeout(L, 2);
  return push_acquired(L, rlock_op_acquire(L, &k->base, timeout));
}

static int rlock_release(lua_State *L) {
  rlock_op_release(L, &check_rlock(L)->base);
  return 0;
}

static int rlock_locked(lua_State *L) {
  RLock *k = check_rlock(L);
  lua_pushboolean(L, atomic_load(&k->m.held) != 0);
  return 1;
}

static int rlock_with(lua_State *L) { return duet_lock_with(L, &rlock_ops); }
static int rlock_guard(lua_State *L) {
  return duet_lock_guard(L, &rlock_ops);
}

static const luaL_Reg rlock_methods[] = {
  {"acquire", rlock_acquire},
  {"release", rlock_release},
  {"locked", rlock_locked},
  {"with", rlock_with},
  {"guard", rlock_guard},
  {NULL, NULL}
};

/* ----------------------------------------------------- for Condition */

duet_Object *duet_rlock_new(lua_State *L) {
  RLock *k = (RLock *)duet_new_object(L, &rlock_type, sizeof(RLock));
  mutex_init(&k->m);
  return &k->base;
}

duet_Object *duet_check_lock(lua_State *L, int arg) {
  duet_Object *o = duet_to_object(L, arg);
  if (o == NULL || (o->type != &lock_type && o->type != &rlock_type))
    luaL_typeerror(L, arg, "duet.Lock or duet.RLock");
  return o;
}

const duet_LockOps *duet_lock_ops(duet_Object *o) {
  return o->type == &rlock_type ? &rlock_ops : &lock_ops;
}

int duet_lock_locked(duet_Object *o) {
  if (o->type == &rlock_type)
    return atomic_load(&((RLock *)o)->m.held) != 0;
  return atomic_load(&((Lock *)o)->m.held) != 0;
}

/* A plain Lock has no owner: held by anyone counts (Python does the same
** for a Condition over a Lock). */
int duet_lock_owned(lua_State *L, duet_Object *o) {
  if (o->type == &rlock_type)
    return rlock_owned((RLock *)o, duet_self_ident(L));
  return atomic_load(&((Lock *)o)->m.held) != 0;
}

long duet_lock_save(lua_State *L, duet_Object *o) {
  long n = 1;
  (void)L;
  if (o->type == &rlock_type) {
    RLock *k = (RLock *)o;
    n = atomic_load_explicit(&k->count, memory_order_relaxed);
    rlock_set_owner(k, 0, 0);
    mutex_release(&k->m);
  }
  else mutex_release(&((Lock *)o)->m);
  return n;
}

void duet_lock_restore(lua_State *L, duet_Object *o, long saved) {
  if (o->type == &rlock_type) {
    RLock *k = (RLock *)o;
    lua_Integer me = duet_self_ident(L);
    mutex_take(&k->m);
    rlock_set_owner(k, me, saved);
  }
  else mutex_take(&((Lock *)o)->m);
}

/* ------------------------------------------------------ with and guard */

/* After fn: release always, then its results or its error. Also the
** continuation when fn yields (a coroutine inside a thread), which keeps
** the same upvalues, so self is checked the fast way again. */
static int with_done(lua_State *L, int status, lua_KContext ctx) {
  const duet_LockOps *ops = (const duet_LockOps *)ctx;
  ops->release(L, duet_check_self(L, ops->type));
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L) - 1;
}

static void check_callable(lua_State *L, int arg) {
  if (lua_type(L, arg) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, arg, "__call") == LUA_TNIL)
      luaL_typeerror(L, arg, "function");
    lua_pop(L, 1);
  }
}

/* x:with(fn, ...) -> fn(...)'s results; releases even when fn raises */
int duet_lock_with(lua_State *L, const duet_LockOps *ops) {
  duet_Object *o = duet_check_self(L, ops->type);
  int r;
  check_callable(L, 2);
  r = ops->acquire(L, o, -1);
  if (r != 0) return duet_wait_error(L, r);
  return with_done(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0,
                                 (lua_KContext)ops, with_done),
                   (lua_KContext)ops);
}

/* The to-be-closed value of guard(): its user value is the object's proxy,
** which keeps the object alive until the guard closes. */
typedef struct Guard {
  const duet_LockOps *ops;
  duet_Object *o;                         /* NULL once closed */
} Guard;

static const char *const guard_name = "duet.Guard";

static int guard_close(lua_State *L) {
  Guard *g = (Guard *)luaL_checkudata(L, 1, guard_name);
  duet_Object *o = g->o;
  if (o != NULL) {
    g->o = NULL;
    g->ops->release(L, o);
  }
  return 0;
}

static int guard_tostring(lua_State *L) {
  Guard *g = (Guard *)luaL_checkudata(L, 1, guard_name);
  lua_pushfstring(L, "%s (%s): %p", guard_name,
                  g->o ? "held" : "closed", (void *)g);
  return 1;
}

static const luaL_Reg guard_meta[] = {
  {"__close", guard_close},
  {"__tostring", guard_tostring},
  {"__newindex", duet_newindex},
  {NULL, NULL}
};

/* local _ <close> = x:guard() */
int duet_lock_guard(lua_State *L, const duet_LockOps *ops) {
  duet_Object *o = duet_check_self(L, ops->type);
  Guard *g;
  int r;
  lua_settop(L, 1);
  g = (Guard *)lua_newuserdatauv(L, sizeof(Guard), 1);  /* closed first */
  g->ops = ops;
  g->o = NULL;
  /* made here: a state may hold a Semaphore or Condition, whose guard()
  ** this is too, and never have opened Lock */
  if (luaL_newmetatable(L, guard_name)) luaL_setfuncs(L, guard_meta, 0);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  r = ops->acquire(L, o, -1);
  if (r != 0) return duet_wait_error(L, r);
  g->o = o;
  return 1;
}

/* ------------------------------------------------------------------ open */

static const luaL_Reg lock_funcs[] = {
  {"Lock", lock_new},
  {"RLock", rlock_new},
  {NULL, NULL}
};

static void process_init(void) {
  spin_limit = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 100 : 0;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static int open_lock_type(lua_State *L) {
  pthread_once(&once, process_init);
  duet_new_type(L, &lock_type, lock_methods, NULL);
  return 0;
}

static int open_rlock_type(lua_State *L) {
  pthread_once(&once, process_init);
  duet_new_type(L, &rlock_type, rlock_methods, NULL);
  return 0;
}

int duet_lock_open(lua_State *L) {
  open_lock_type(L);
  open_rlock_type(L);
  luaL_setfuncs(L, lock_funcs, 0);
  return 0;
}
