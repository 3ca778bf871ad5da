/*
** executor.c — Executor: a pool of persistent worker threads.
**
** Each worker is a duet Thread ("Executor-N_k") with one Lua state of its
** own, kept for the executor's life. Tasks wait in a C queue (a list of
** futures, linked through the room each future keeps for its producer);
** their arguments and results travel as encoded messages, the function
** as a duet_TaskFn (taskfn.c: its code loaded once per worker, its
** upvalues copied for each run).
**
** Options (the same as duet.executor_options checks for the executors
** written in Lua): initializer and initargs, run once in each worker before
** it takes a task; thread_name_prefix, the workers' names. A raising
** initializer breaks the pool, as in Python: the queued tasks fail with a
** "broken executor" error, submit raises it from then on, and no worker is
** started again.
**
** Lifetime: the Executor object owns a TaskPool (its queue and workers;
** pool.c's PoolThreads are another thing, the OS threads under duet
** threads); each worker holds the TaskPool too, and leaves once it is
** shut down and its queue is empty. An Executor collected without
** shutdown is shut down with wait=false. While tasks are queued or
** running, or a worker runs its initializer, the pool counts as a live
** thread (duet_keep_alive), so rt.run and the process exit wait for them;
** an idle pool does not.
*/
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duet.h"


/* ------------------------------------------------------------- the pool */

typedef struct Task {                     /* in its future's extra room */
  struct Task *next;                      /* in the queue */
  duet_Future *fut;
  duet_TaskFn fn;
  duet_Message *args;
} Task;

static void task_clear(void *extra) {
  Task *t = (Task *)extra;
  duet_taskfn_clear(&t->fn);
  duet_message_free(t->args);
  t->args = NULL;
}

typedef struct Worker Worker;

/* Idle workers: a worker that finds the queue empty first spins a little
** (at most max_spinners of them at a time) and only then parks. Tiny tasks
** submitted back to back then cost no futex wake each: parking and waking
** a thread costs ~14 us, far more than such a task. A worker counts as
** idle from the moment its task's function returns (completing the future
** comes after), and a submit wakes a parked worker only when the queued
** tasks outnumber the idle workers awake; a worker that takes a task and
** sees that is still so wakes the next one. */
#define SPIN_SECONDS 50e-6

typedef struct TaskPool {
  atomic_long refs;                       /* the Executor and each worker */
  pthread_mutex_t mu;                     /* guards all below */
  pthread_cond_t exit_cv;                 /* the last worker left */
  Task *head, *tail;
  long npending;
  atomic_long queued;                     /* npending, for spinners */
  atomic_int shutdown;                    /* written under mu */
  atomic_int nidle;                       /* workers not in a task's fn */
  int nworkers, nrunning, max_workers;
  int nsleeping, nspinning;               /* idle ones parked, spinning */
  int number, next_k;                     /* Executor-<number>_<k> */
  int alive;                              /* holds a keep-alive count */
  int ninit;                              /* workers in the initializer */
  int live_waiters;                       /* of its workers, in rt.run's
                                             wait (thread.c's live_mu) */
  Worker *sleepers;                       /* parked idle workers */
  Worker *all;                            /* every worker, freed with p */
  duet_Message *init, *initargs;          /* the initializer; or NULL */
  char *prefix;                           /* workers are <prefix>_<k> */
  char *broken;                           /* set once: the initializer's */
  char *broken_tb;                        /* error, as text; traceback */
} TaskPool;

static int max_spinners;                  /* by the CPU count; 0: one CPU */

struct Worker {
  TaskPool *pool;
  int k;                                  /* Executor-N_<k> */
  pthread_cond_t cv;                      /* lives as long as the pool, */
  int asleep;                             /* so a wake may come late */
  Worker *next, *all_next;
  duet_FnCache *cache;                    /* code loaded in its state */
  char *traceback;                        /* of the task that failed */
};

static atomic_int next_number;
static _Thread_local TaskPool *own_pool;      /* a worker's pool */

/* A pool's broken error when its text could not be copied: the pool must
** still break, or its queued tasks would wait for workers that are gone. */
static char broken_no_memory[] =
  "broken executor: the initializer raised (no memory to keep its error)";

static void free_broken(char *broken) {
  if (broken != broken_no_memory) free(broken);
}

static void pool_release(TaskPool *p) {
  if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
    while (p->all) {
      Worker *w = p->all;
      p->all = w->all_next;
      pthread_cond_destroy(&w->cv);
      free(w);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->exit_cv);
    duet_message_free(p->init);
    duet_message_free(p->initargs);
    free(p->prefix);
    free_broken(p->broken);
    free(p->broken_tb);
    free(p);
  }
}

/* No work left: stop counting as a live thread. (p->mu held) Called as a
** worker parks or leaves, not each time the queue runs dry: tiny tasks
** would toggle it for every one. */
static void settle_alive(TaskPool *p) {
  if (p->alive && p->npending == 0 && p->nrunning == 0 && p->ninit == 0) {
    p->alive = 0;
    duet_keep_alive(-1);
  }
}

/* Take a parked worker off the list; signal its cv (at once, or after
** unlocking p->mu, to spare it waking into a held mutex). (p->mu held) */
static Worker *unpark(TaskPool *p) {
  Worker *w = p->sleepers;
  p->sleepers = w->next;
  w->asleep = 0;
  p->nsleeping--;
  return w;
}

static void wake_all(TaskPool *p) {           /* p->mu held */
  while (p->sleepers) pthread_cond_signal(&unpark(p)->cv);
}

/* A parked worker to wake if the queued tasks outnumber the idle workers
** awake to take them, else NULL. (p->mu held) */
static Worker *wake_for_work(TaskPool *p) {
  if (p->sleepers && p->npending > atomic_load(&p->nidle) - p->nsleeping)
    return unpark(p);
  return NULL;
}

/* Spin until work comes, the pool shuts down, or SPIN_SECONDS pass. */
static void spin_for_work(TaskPool *p) {
  double until = 0;
  int i;
  for (i = 1;; i++) {
    if (atomic_load_explicit(&p->queued, memory_order_relaxed) > 0
        || atomic_load_explicit(&p->shutdown, memory_order_relaxed))
      return;
    if ((i & 63) == 0) {
      double now = duet_now();
      if (until == 0) until = now + SPIN_SECONDS;
      else if (now >= until) return;
      sched_yield();                      /* a busy machine: let others run */
    }
    else duet_cpu_relax();
  }
}

/* ------------------------------------------------------- in the worker */


/* (err) -> the error value encoded, as a light userdata. */
static int encode_error(lua_State *L) {
  lua_pushlightuserdata(L, duet_encode(L, 1, 1, "error", 0));
  return 1;
}

/* Protected (worker, task, message handler): run the task; its encoded
** results as a light userdata, or raises. */
static int task_call(lua_State *L) {
  Worker *w = (Worker *)lua_touserdata(L, 1);
  Task *t = (Task *)lua_touserdata(L, 2);
  duet_Message *args = t->args;
  int n;
  duet_Message *m;
  lua_replace(L, 1);                      /* 1: the message handler */
  lua_settop(L, 1);
  duet_taskfn_push(L, w->cache, &t->fn);  /* 2 */
  lua_pushvalue(L, 2);                    /* 3: to call */
  t->args = NULL;
  n = duet_decode_free(L, args);
  duet_check_cancel(L);
  if (lua_pcall(L, n, LUA_MULTRET, 1) != LUA_OK) {
    duet_taskfn_done(L, 2, &t->fn);
    return lua_error(L);
  }
  duet_taskfn_done(L, 2, &t->fn);
  m = duet_encode(L, 3, lua_gettop(L) - 2, "results", DUET_LIST);
  lua_pushlightuserdata(L, m);
  return 1;
}

/* Run task `t` (already RUNNING) and complete its future. */
static void run_task(lua_State *L, Worker *w, Task *t) {
  duet_Message *result = NULL;
  char *tb = NULL;
  int ok;
  w->traceback = NULL;
  duet_running_task(&w->pool->live_waiters);
  lua_pushcfunction(L, task_call);
  lua_pushlightuserdata(L, w);
  lua_pushlightuserdata(L, t);
  lua_pushvalue(L, 1);                    /* the worker's message handler */
  ok = lua_pcall(L, 3, 1, 0) == LUA_OK;
  if (ok) result = (duet_Message *)lua_touserdata(L, -1);
  else {
    int err = lua_gettop(L);
    tb = w->traceback;                    /* NULL: it failed around fn */
    w->traceback = NULL;
    if (tb == NULL) {
      const char *msg = luaL_tolstring(L, err, NULL);
      size_t n = strlen(msg) + 1;
      if ((tb = (char *)malloc(n)) != NULL) memcpy(tb, msg, n);
      lua_pop(L, 1);
    }
    lua_pushcfunction(L, encode_error);
    lua_pushvalue(L, err);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {  /* unmovable: its text */
      lua_pushcfunction(L, encode_error);
      luaL_tolstring(L, err, NULL);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK) lua_pushnil(L);
    }
    result = (duet_Message *)lua_touserdata(L, -1);
  }
  lua_settop(L, 1);
  task_clear(t);
  atomic_fetch_add(&w->pool->nidle, 1);   /* back for more very soon */
  duet_future_finish(L, t->fut, ok, result, tb);
  duet_running_task(NULL);
  lua_settop(L, 1);
}

/* Protected (pool): initializer(initargs...). */
static int init_call(lua_State *L) {
  TaskPool *p = (TaskPool *)lua_touserdata(L, 1);
  int n;
  lua_settop(L, 0);
  duet_decode(L, p->init);
  n = duet_decode(L, p->initargs);
  lua_call(L, n, 0);
  return 0;
}

/* (text) -> the text encoded, as a light userdata. Protected. */
static int encode_text(lua_State *L) {
  lua_pushlightuserdata(L, duet_encode(L, 1, 1, "error", 0));
  return 1;
}

/* Fail the tasks of list `t` (taken off the queue) with the error of the
** broken pool `p`; each still queued, so none has started. */
static void fail_tasks(lua_State *L, TaskPool *p, Task *t) {
  while (t) {
    Task *next = t->next;
    duet_Future *f = t->fut;
    if (duet_future_start(f)) {           /* else cancelled meanwhile */
      duet_Message *m = NULL;
      lua_pushcfunction(L, encode_text);
      lua_pushstring(L, p->broken);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK)
        m = (duet_Message *)lua_touserdata(L, -1);
      lua_pop(L, 1);
      task_clear(t);
      duet_future_finish(L, f, 0, m, p->broken_tb ? strdup(p->broken_tb)
                                                  : NULL);
    }
    else task_clear(t);
    duet_release((duet_Object *)f);
    t = next;
  }
}

/* Run the pool's initializer in this worker (the message handler at 1): 1
** when it returned; else the pool is broken (by this worker unless another
** was first), its queued tasks fail, and 0. */
static int initialize(lua_State *L, Worker *w) {
  TaskPool *p = w->pool;
  char *broken, *tb;
  Task *orphans = NULL;
  int ok;
  if (p->init == NULL) return 1;
  w->traceback = NULL;
  pthread_mutex_lock(&p->mu);             /* the pool has work meanwhile */
  p->ninit++;
  if (!p->alive) {
    p->alive = 1;
    duet_keep_alive(1);
  }
  pthread_mutex_unlock(&p->mu);
  duet_running_task(&p->live_waiters);
  lua_pushcfunction(L, init_call);
  lua_pushlightuserdata(L, p);
  ok = lua_pcall(L, 1, 0, 1) == LUA_OK;
  duet_running_task(NULL);
  pthread_mutex_lock(&p->mu);
  p->ninit--;                             /* settled when the worker parks */
  pthread_mutex_unlock(&p->mu);
  if (ok) return 1;
  lua_pushliteral(L, "broken executor: the initializer raised: ");
  luaL_tolstring(L, -2, NULL);
  lua_concat(L, 2);
  broken = strdup(lua_tostring(L, -1));
  if (broken == NULL) broken = broken_no_memory;
  tb = w->traceback;
  w->traceback = NULL;
  lua_settop(L, 1);
  pthread_mutex_lock(&p->mu);
  if (p->broken == NULL) {
    p->broken = broken;
    p->broken_tb = tb;
    broken = tb = NULL;
    orphans = p->head;
    p->head = p->tail = NULL;
    p->npending = 0;
    atomic_store(&p->queued, 0);
  }
  pthread_mutex_unlock(&p->mu);
  free_broken(broken);
  free(tb);
  fail_tasks(L, p, orphans);
  return 0;
}

/* The worker's body: take tasks until shut down with the queue empty. */
static int worker_body(lua_State *L) {
  Worker *w = (Worker *)lua_touserdata(L, 1);
  TaskPool *p = w->pool;
  int ok;
  lua_settop(L, 0);
  w->cache = duet_fncache_new();          /* NULL: loads every time */
  lua_pushlightuserdata(L, &w->traceback); /* the failing task's */
  lua_pushcclosure(L, duet_keep_traceback, 1);  /* 1: kept for every task */
  own_pool = p;
  ok = initialize(L, w);
  pthread_mutex_lock(&p->mu);
  for (; ok;) {
    Task *t = p->head;
    Worker *next;
    if (t == NULL && !p->shutdown && p->nspinning < max_spinners) {
      p->nspinning++;
      pthread_mutex_unlock(&p->mu);
      spin_for_work(p);
      pthread_mutex_lock(&p->mu);
      p->nspinning--;
      t = p->head;
    }
    while (t == NULL && !p->shutdown) {
      settle_alive(p);
      w->asleep = 1;
      w->next = p->sleepers;
      p->sleepers = w;
      p->nsleeping++;
      while (w->asleep) pthread_cond_wait(&w->cv, &p->mu);
      t = p->head;
    }
    if (t == NULL) break;                 /* shut down, and no work left */
    p->head = t->next;
    if (p->head == NULL) p->tail = NULL;
    atomic_store_explicit(&p->queued, --p->npending, memory_order_relaxed);
    atomic_fetch_sub(&p->nidle, 1);
    p->nrunning++;
    next = wake_for_work(p);              /* more work than awake workers */
    pthread_mutex_unlock(&p->mu);
    if (next) pthread_cond_signal(&next->cv);
    if (duet_future_start(t->fut)) run_task(L, w, t);
    else {                                /* cancelled while queued */
      atomic_fetch_add(&p->nidle, 1);
      task_clear(t);
    }
    duet_release((duet_Object *)t->fut);  /* the queue's reference */
    pthread_mutex_lock(&p->mu);
    p->nrunning--;
  }
  settle_alive(p);
  p->nworkers--;
  atomic_fetch_sub(&p->nidle, 1);
  if (p->nworkers == 0) pthread_cond_broadcast(&p->exit_cv);
  pthread_mutex_unlock(&p->mu);
  duet_fncache_free(L, w->cache);
  w->cache = NULL;
  free(w->traceback);
  w->traceback = NULL;
  own_pool = NULL;
  pool_release(p);                        /* which frees w, at the last */
  return 0;
}

/* ------------------------------------------------------------- Executor */

typedef struct Executor {
  duet_Object base;
  TaskPool *pool;
} Executor;

static void executor_destroy(duet_Object *o) {
  Executor *ex = (Executor *)o;
  TaskPool *p = ex->pool;
  if (p) {                                /* shutdown{wait=false} */
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->shutdown, 1);
    wake_all(p);
    pthread_mutex_unlock(&p->mu);
    pool_release(p);
  }
  free(ex);
}

static void executor_describe(duet_Object *o, char *buf, size_t size) {
  TaskPool *p = ((Executor *)o)->pool;
  if (p == NULL) return;
  pthread_mutex_lock(&p->mu);
  snprintf(buf, size, "%d worker%s, %ld pending%s", p->nworkers,
           p->nworkers == 1 ? "" : "s", p->npending,
           p->broken ? ", broken" : p->shutdown ? ", shut down" : "");
  pthread_mutex_unlock(&p->mu);
}

static const duet_Type executor_type = {"duet.Executor", executor_destroy,
                                        executor_describe,
                                        duet_executor_open, NULL, NULL, NULL};

#define check_executor(L) ((Executor *)duet_check_self(L, &executor_type))

/* Executor{max_workers=, initializer=, initargs=, thread_name_prefix=}:
** checked as duet.executor_options checks them (execopts.c). */
static int executor_new(lua_State *L) {
  lua_Integer max;
  Executor *ex;
  TaskPool *p;
  duet_Message **init;
  const char *prefix;
  int at;
  init = duet_executor_options(L, &max, &prefix);
  /* the object first: a failure after it leaves nothing unowned */
  ex = (Executor *)duet_new_object(L, &executor_type, sizeof(Executor));
  at = lua_gettop(L);
  p = (TaskPool *)calloc(1, sizeof *p);
  if (p == NULL) return luaL_error(L, "not enough memory");
  atomic_init(&p->refs, 1);
  duet_mutex_init_adaptive(&p->mu);       /* held briefly */
  duet_cond_init(&p->exit_cv);
  atomic_init(&p->queued, 0);
  atomic_init(&p->shutdown, 0);
  atomic_init(&p->nidle, 0);
  p->max_workers = (int)max;
  p->number = atomic_fetch_add(&next_number, 1);
  ex->pool = p;
  if (prefix == NULL) prefix = lua_pushfstring(L, "Executor-%d", p->number);
  p->prefix = strdup(prefix);
  if (p->prefix == NULL) return luaL_error(L, "not enough memory");
  p->init = init[0];
  p->initargs = init[1];
  init[0] = init[1] = NULL;
  lua_pushvalue(L, at);
  return 1;
}

/* (worker) -> start the worker's thread. Protected. */
static int spawn_worker(lua_State *L) {
  Worker *w = (Worker *)lua_touserdata(L, 1);
  duet_spawn_c(L, lua_pushfstring(L, "%s_%d", w->pool->prefix, w->k),
               worker_body, w);
  return 0;
}

static void cancel_tasks(lua_State *L, Task *t);

/* Start worker number k, its place already counted in p. When no worker
** is left to run the queued tasks, they are cancelled and this raises. */
static void add_worker(lua_State *L, TaskPool *p, int k) {
  Worker *w = (Worker *)calloc(1, sizeof *w);
  Task *orphans = NULL;
  int ok = 0, none;
  if (w != NULL) {
    w->pool = p;
    w->k = k;
    duet_cond_init(&w->cv);
    atomic_fetch_add(&p->refs, 1);
    lua_pushcfunction(L, spawn_worker);
    lua_pushlightuserdata(L, w);
    pthread_mutex_lock(&p->mu);
    w->all_next = p->all;
    p->all = w;
    pthread_mutex_unlock(&p->mu);
    ok = lua_pcall(L, 1, 0, 0) == LUA_OK;
    if (!ok) pool_release(p);             /* w stays listed, freed with p */
  }
  else lua_pushliteral(L, "not enough memory");
  if (ok) return;
  pthread_mutex_lock(&p->mu);
  p->nworkers--;
  atomic_fetch_sub(&p->nidle, 1);
  none = p->nworkers == 0;
  if (none) {
    pthread_cond_broadcast(&p->exit_cv);
    orphans = p->head;
    p->head = p->tail = NULL;
    p->npending = 0;
    atomic_store(&p->queued, 0);
    settle_alive(p);
  }
  pthread_mutex_unlock(&p->mu);
  if (!none) {                            /* the others will run them */
    lua_pop(L, 1);
    return;
  }
  cancel_tasks(L, orphans);
  lua_error(L);
}

/* Submit fn (at fn) with `nargs` arguments from `first`; leaves the future
** on the stack. The future is made first: the messages go straight into
** its task, so whatever raises half-way is freed with it. */
static duet_Future *submit(lua_State *L, TaskPool *p, int fn,
                           int first, int nargs) {
  duet_Future *fut;
  Task *t;
  Worker *w = NULL;
  int k = -1, shut;
  const char *broken;
  fn = lua_absindex(L, fn);
  first = lua_absindex(L, first);
  fut = duet_future_new(L, sizeof(Task), task_clear);
  t = (Task *)duet_future_extra(fut);
  t->fut = fut;
  duet_taskfn_make(L, fn, &t->fn);
  t->args = duet_encode(L, first, nargs, "args", DUET_LIST);
  duet_retain((duet_Object *)fut);        /* the queue's reference */
  pthread_mutex_lock(&p->mu);
  broken = p->broken;                     /* never changes once set */
  shut = p->shutdown || broken;
  if (!shut) {
    t->next = NULL;
    if (p->tail) p->tail->next = t;
    else p->head = t;
    p->tail = t;
    atomic_store_explicit(&p->queued, ++p->npending, memory_order_relaxed);
    if (!p->alive) {
      p->alive = 1;
      duet_keep_alive(1);
    }
    if (p->sleepers) w = wake_for_work(p);
    else if (p->npending > atomic_load(&p->nidle)
             && p->nworkers < p->max_workers) {
      p->nworkers++;
      atomic_fetch_add(&p->nidle, 1);
      k = p->next_k++;
    }
  }
  pthread_mutex_unlock(&p->mu);
  if (w) pthread_cond_signal(&w->cv);
  if (shut) {
    task_clear(t);
    duet_release((duet_Object *)fut);
    if (broken) luaL_error(L, "%s", broken);
    luaL_error(L, "cannot schedule new futures after shutdown");
  }
  if (k >= 0) add_worker(L, p, k);
  return fut;
}

/* ex:submit(fn, ...) -> Future */
static int executor_submit(lua_State *L) {
  Executor *ex = check_executor(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  submit(L, ex->pool, 2, 3, lua_gettop(L) - 2);
  return 1;
}

typedef struct MapState {
  lua_Integer n, at;                      /* items; the one awaited */
  double deadline;
} MapState;

/* Protected (ms, futures): the first result of each, in order. */
static int map_collect(lua_State *L) {
  MapState *ms = (MapState *)lua_touserdata(L, 1);
  lua_createtable(L, (int)(ms->n < 1 << 20 ? ms->n : 0), 0);   /* 3 */
  for (ms->at = 1; ms->at <= ms->n; ms->at++) {
    duet_Future *f;
    int r;
    lua_rawgeti(L, 2, ms->at);
    f = (duet_Future *)duet_to_object(L, -1);
    r = duet_future_wait(L, f, ms->deadline);
    if (r == DUET_TIMEDOUT) return duet_raise(L, DUET_ERR_TIMEOUT);
    if (r != 0) return duet_wait_error(L, r);
    lua_settop(L, 3);
    if (duet_future_push_result(L, f) == 0) lua_pushnil(L);
    lua_settop(L, 4);
    lua_rawseti(L, 3, ms->at);
  }
  lua_pushinteger(L, ms->n);              /* a nil result leaves a hole */
  lua_setfield(L, 3, "n");
  return 1;
}

/* ex:map(fn, items, [timeout]) -> the results, in the order of items */
static int executor_map(lua_State *L) {
  Executor *ex = check_executor(L);
  MapState ms;
  lua_Integer i;
  double timeout;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TTABLE);
  timeout = duet_opt_timeout(L, 4);
  lua_settop(L, 3);
  ms.n = duet_list_len(L, 3);
  lua_createtable(L, (int)(ms.n > 0 && ms.n < 1 << 20 ? ms.n : 0), 0); /* 4 */
  for (i = 1; i <= ms.n; i++) {
    lua_geti(L, 3, i);
    submit(L, ex->pool, 2, 5, 1);
    lua_rawseti(L, 4, i);
    lua_pop(L, 1);
  }
  ms.deadline = duet_deadline(timeout);   /* counted from the last submit */
  lua_pushcfunction(L, map_collect);
  lua_pushlightuserdata(L, &ms);
  lua_pushvalue(L, 4);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    /* give up on those not started: the awaited one too, after a timeout
    ** or a cancel (a failed one is done, and cancel leaves it alone) */
    for (i = ms.at; i <= ms.n; i++) {
      lua_rawgeti(L, 4, i);
      duet_future_cancel(L, (duet_Future *)duet_to_object(L, -1));
      lua_pop(L, 1);
    }
    return lua_error(L);
  }
  return 1;
}

/* Shut `p` down; cancel the queued tasks if asked. Returns the tasks
** taken off the queue (their futures still to cancel, then release). */
static Task *shut_down(TaskPool *p, int cancel) {
  Task *t = NULL;
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->shutdown, 1);
  if (cancel) {
    t = p->head;
    p->head = p->tail = NULL;
    p->npending = 0;
    atomic_store(&p->queued, 0);
    settle_alive(p);
  }
  wake_all(p);
  pthread_mutex_unlock(&p->mu);
  return t;
}

static void cancel_tasks(lua_State *L, Task *t) {
  while (t) {
    Task *next = t->next;
    duet_Future *f = t->fut;
    duet_future_cancel(L, f);
    task_clear(t);
    duet_release((duet_Object *)f);
    t = next;
  }
}

/* Wait until every worker has left (workers of this pool excepted: a task
** shutting down its own executor must not wait for itself). */
static int wait_workers(lua_State *L, TaskPool *p, int self) {
  int r = 0;
  duet_wait_begin(L, &p->exit_cv, &p->mu);
  pthread_mutex_lock(&p->mu);
  while (p->nworkers > self
         && (r = duet_wait(L, &p->exit_cv, &p->mu, HUGE_VAL)) == 0) {}
  pthread_mutex_unlock(&p->mu);
  duet_wait_end(L);
  return r;
}

/* ex:shutdown{wait=true, cancel_futures=false} */
static int executor_shutdown(lua_State *L) {
  Executor *ex = check_executor(L);
  int wait = 1, cancel = 0, r;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "wait") != LUA_TNIL) wait = lua_toboolean(L, -1);
    lua_getfield(L, 2, "cancel_futures");
    cancel = lua_toboolean(L, -1);
  }
  lua_settop(L, 1);
  cancel_tasks(L, shut_down(ex->pool, cancel));
  if (wait) {
    r = wait_workers(L, ex->pool, own_pool == ex->pool);
    if (r != 0) return duet_wait_error(L, r);
  }
  return 0;
}

/* local ex <close> = rt.Executor{...}: shutdown{wait=true} */
static int executor_close(lua_State *L) {
  Executor *ex = check_executor(L);
  int r;
  cancel_tasks(L, shut_down(ex->pool, 0));
  r = wait_workers(L, ex->pool, own_pool == ex->pool);
  if (r != 0) return duet_wait_error(L, r);
  return 0;
}

static const luaL_Reg executor_methods[] = {
  {"submit", executor_submit},
  {"map", executor_map},
  {"shutdown", executor_shutdown},
  {NULL, NULL}
};

static const luaL_Reg executor_meta[] = {
  {"__close", executor_close},
  {NULL, NULL}
};

static const luaL_Reg executor_funcs[] = {
  {"Executor", executor_new},
  {NULL, NULL}
};

static void process_init(void) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  max_spinners = ncpu > 1 ? (int)ncpu : 0;
}

int duet_executor_open(lua_State *L) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, process_init);
  duet_new_type(L, &executor_type, executor_methods, executor_meta);
  luaL_setfuncs(L, executor_funcs, 0);
  return 0;
}
