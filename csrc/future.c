/*
** future.c — Future, the outcome of one task, and rt.wait / rt.as_completed
** over a list of them.
**
** A future is a shared object like any other: every thread that holds it
** may wait on it, read its results or cancel it. Its state is one atomic
** word, so done() and a result() of a done future take no mutex; the
** results (or the error value) are an encoded message written once, before
** the state says so, and decoded by each reader in its own state.
**
** Who completes a future calls its done callbacks in its own Lua state:
** the worker that ran the task, or the thread that cancelled it. So a
** callback added while the future is pending is moved (copied) like a task.
**
** A future made by rt.Future() has no producer: whoever holds it settles
** it with set_result or set_exception, once (a second settle raises
** "invalid state"). A settle first claims the future (PENDING or RUNNING
** -> SETTLING, one compare-and-swap, so it races a cancel or another settle
** cleanly), then completes it as a worker would.
**
** rt.wait and rt.as_completed register a Watcher on each pending future;
** completing a future hands it to its watchers, in completion order.
**
** Futures come by the hundred thousand, so they share a small set of
** mutexes and condition variables (stripes, chosen by address) instead of
** carrying their own: a future and its producer's task then fit one
** 128-byte allocation. A stripe's broadcast may wake a waiter of another
** future; it checks its own and waits again. Lock order: a stripe, then a
** watcher's mutex.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duet.h"

typedef struct Callback {
  struct Callback *next;
  duet_Message *fn;                       /* moved to whoever completes */
} Callback;

typedef struct Watcher Watcher;

typedef struct Node {                     /* a watcher's link in a future */
  Watcher *w;
  duet_Future *f;                         /* retained until unregistered */
  struct Node *prev, *next;
  int linked;                             /* under f's stripe */
} Node;

struct duet_Future {
  duet_Object base;
  atomic_int state;                       /* DUET_FUT_PENDING ... */
  int waiters;                            /* the fields below: under */
  duet_Message *result;                   /* its stripe's mutex */
  char *traceback;                        /* results or error: once done */
  Callback *cbs;                          /* newest first */
  Node *watchers;
  void (*free_extra)(void *extra);
  int settleable;                         /* made by rt.Future() */
};

/* the producer's room, after the future, aligned for anything */
#define EXTRA_AT ((sizeof(duet_Future) + 15) & ~(size_t)15)

typedef struct Stripe {
  pthread_mutex_t mu;
  pthread_cond_t cv;                      /* broadcast when one is done */
} Stripe;

#define NSTRIPES 64
static union {
  Stripe s;
  char pad[128];                          /* one per pair of cache lines */
} stripes[NSTRIPES];

static Stripe *stripe(duet_Future *f) {
  uintptr_t a = (uintptr_t)f >> 6;
  return &stripes[(a ^ (a >> 6) ^ (a >> 12)) % NSTRIPES].s;
}

static void stripes_init(void) {
  int i;
  for (i = 0; i < NSTRIPES; i++) {
    pthread_mutex_init(&stripes[i].s.mu, NULL);
    duet_cond_init(&stripes[i].s.cv);
  }
}

static const char *const state_names[] = {
  "pending", "running", "running", "finished", "finished", "cancelled"
};

static void future_destroy(duet_Object *o) {
  duet_Future *f = (duet_Future *)o;
  Callback *cb, *next;
  if (f->free_extra) f->free_extra(duet_future_extra(f));
  for (cb = f->cbs; cb; cb = next) {
    next = cb->next;
    duet_message_free(cb->fn);
    free(cb);
  }
  duet_message_free(f->result);
  free(f->traceback);
  free(f);
}

static void future_describe(duet_Object *o, char *buf, size_t size) {
  duet_Future *f = (duet_Future *)o;
  snprintf(buf, size, "%s", state_names[atomic_load(&f->state)]);
}

static void get_traceback(lua_State *L, duet_Object *o);

static const duet_Field future_fields[] = {
  {"traceback", get_traceback},
  {NULL, NULL}
};

static const duet_Type future_type = {"duet.Future", future_destroy,
                                      future_describe, duet_future_open,
                                      NULL, future_fields, NULL};

#define check_future(L) ((duet_Future *)duet_check_self(L, &future_type))

static int state_of(duet_Future *f) {
  return atomic_load_explicit(&f->state, memory_order_acquire);
}

/* --------------------------------------------------------- the producer */

/* Futures are made by the hundred thousand, and each proxy goes into a
** table keyed by the object's address; Lua hashes such a key modulo
** 2^k - 1, so addresses 240 bytes apart (3 * 5 * 16) fill only a fifteenth
** of the buckets. Allocations padded to a power-of-two malloc chunk (the
** size plus malloc's 8-byte header) spread evenly. */
static size_t padded(size_t size) {
  size_t chunk = 64;
  while (chunk < size + 8) chunk *= 2;
  return chunk - 8;
}

duet_Future *duet_future_new(lua_State *L, size_t extra,
                             void (*free_extra)(void *extra)) {
  duet_Future *f = (duet_Future *)duet_new_object(L, &future_type,
                                                  padded(EXTRA_AT + extra));
  atomic_init(&f->state, DUET_FUT_PENDING);
  f->free_extra = free_extra;
  return f;
}

void *duet_future_extra(duet_Future *f) {
  return (char *)f + EXTRA_AT;
}

int duet_future_state(duet_Future *f) {
  return state_of(f);
}

int duet_future_start(duet_Future *f) {
  int expected = DUET_FUT_PENDING;
  return atomic_compare_exchange_strong(&f->state, &expected,
                                        DUET_FUT_RUNNING);
}

/* Hand node `n`'s future to its watcher (the future's stripe held). The
** node may be freed as soon as this returns. */
static void deliver(Node *n, int state);


/* (fn, future): fn(future). Protected. */
static int call_back(lua_State *L) {
  lua_call(L, 1, 0);
  return 0;
}

/* (message, future): decode the callback, then fn(future). Protected. */
static int call_moved_back(lua_State *L) {
  duet_Message *m = (duet_Message *)lua_touserdata(L, 1);
  duet_Future *f = (duet_Future *)lua_touserdata(L, 2);
  lua_settop(L, 0);
  duet_decode_free(L, m);
  duet_push_object(L, &f->base);
  lua_call(L, 1, 0);
  return 0;
}

/* Call fn(future) in L with the function at the top, or the message `m`
** when it is NULL... either way protected: an error is reported, as the
** excepthook reports threads' errors, and never raised. */
static void run_callback(lua_State *L, duet_Future *f, duet_Message *m) {
  char *tb = NULL;
  int base = lua_gettop(L) - (m ? 0 : 1);
  lua_pushlightuserdata(L, &tb);
  lua_pushcclosure(L, duet_keep_traceback, 1);
  if (m) {
    lua_pushcfunction(L, call_moved_back);
    lua_pushlightuserdata(L, m);
    lua_pushlightuserdata(L, f);
  }
  else {
    lua_pushcfunction(L, call_back);
    lua_pushvalue(L, base + 1);
    duet_push_object(L, &f->base);
  }
  if (lua_pcall(L, 2, 0, base + (m ? 1 : 2)) != LUA_OK)
    duet_report(L, -1, tb);
  free(tb);
  lua_settop(L, base);
}

/* `f` is done (state already set): wake its waiters and watchers, then
** call its callbacks in L. */
static void complete(lua_State *L, duet_Future *f, int state,
                     duet_Message *result, char *traceback) {
  Stripe *st = stripe(f);
  Callback *cb = NULL, *next, *c;
  Node *n, *nnext;
  pthread_mutex_lock(&st->mu);
  f->result = result;
  f->traceback = traceback;
  atomic_store_explicit(&f->state, state, memory_order_release);
  if (f->waiters) pthread_cond_broadcast(&st->cv);
  for (n = f->watchers; n; n = nnext) {
    nnext = n->next;
    n->linked = 0;
    deliver(n, state);
  }
  f->watchers = NULL;
  for (c = f->cbs; c; c = next) {         /* oldest first */
    next = c->next;
    c->next = cb;
    cb = c;
  }
  f->cbs = NULL;
  pthread_mutex_unlock(&st->mu);
  for (; cb; cb = next) {
    next = cb->next;
    run_callback(L, f, cb->fn);           /* frees the message */
    free(cb);
  }
}

void duet_future_finish(lua_State *L, duet_Future *f, int ok,
                        duet_Message *result, char *traceback) {
  complete(L, f, ok ? DUET_FUT_FINISHED : DUET_FUT_FAILED, result,
           traceback);
}

int duet_future_cancel(lua_State *L, duet_Future *f) {
  int expected = DUET_FUT_PENDING;
  if (!atomic_compare_exchange_strong(&f->state, &expected,
                                      DUET_FUT_CANCELLED))
    return 0;
  complete(L, f, DUET_FUT_CANCELLED, NULL, NULL);
  return 1;
}

/* ----------------------------------------------------------- the waiters */

int duet_future_wait(lua_State *L, duet_Future *f, double deadline) {
  Stripe *st = stripe(f);
  int r = 0;
  if (state_of(f) >= DUET_FUT_FINISHED) return 0;
  duet_wait_begin(L, &st->cv, &st->mu);
  pthread_mutex_lock(&st->mu);
  f->waiters++;
  while (state_of(f) < DUET_FUT_FINISHED
         && (r = duet_wait(L, &st->cv, &st->mu, deadline)) == 0) {}
  f->waiters--;
  if (state_of(f) >= DUET_FUT_FINISHED) r = 0;  /* done wins a tie */
  pthread_mutex_unlock(&st->mu);
  duet_wait_end(L);
  return r;
}

/* The error value of a failed future. */
static void push_error(lua_State *L, duet_Future *f) {
  if (f->result && duet_decode(L, f->result) == 1) return;
  lua_pushliteral(L, "not enough memory");
}

int duet_future_push_result(lua_State *L, duet_Future *f) {
  switch (state_of(f)) {
    case DUET_FUT_FINISHED: return duet_decode(L, f->result);
    case DUET_FUT_CANCELLED: return duet_raise(L, DUET_ERR_CANCELLED);
    default:
      push_error(L, f);
      return lua_error(L);
  }
}

/* Wait for the method at arg 1 with the timeout at arg 2; raise
** duet.timeout when it is not done in time (raise_timeout), else return
** whether it is done. */
static int await(lua_State *L, duet_Future *f, int raise_timeout) {
  double timeout = duet_opt_timeout(L, 2);
  int r = 0;
  if (state_of(f) < DUET_FUT_FINISHED)
    r = timeout == 0 ? DUET_TIMEDOUT
                     : duet_future_wait(L, f, duet_deadline(timeout));
  if (r == DUET_TIMEDOUT) {
    if (raise_timeout) duet_raise(L, DUET_ERR_TIMEOUT);
    return 0;
  }
  if (r != 0) duet_wait_error(L, r);
  return 1;
}

/* ---------------------------------------------------------- Lua methods */

static int future_result(lua_State *L) {
  duet_Future *f = check_future(L);
  await(L, f, 1);
  return duet_future_push_result(L, f);
}

static int future_exception(lua_State *L) {
  duet_Future *f = check_future(L);
  await(L, f, 1);
  switch (state_of(f)) {
    case DUET_FUT_CANCELLED: return duet_raise(L, DUET_ERR_CANCELLED);
    case DUET_FUT_FAILED: push_error(L, f); return 1;
    default: lua_pushnil(L); return 1;
  }
}

static int future_wait(lua_State *L) {
  lua_pushboolean(L, await(L, check_future(L), 0));
  return 1;
}

static int future_done(lua_State *L) {
  lua_pushboolean(L, state_of(check_future(L)) >= DUET_FUT_FINISHED);
  return 1;
}

static int future_running(lua_State *L) {
  int state = state_of(check_future(L));
  lua_pushboolean(L, state == DUET_FUT_RUNNING || state == DUET_FUT_SETTLING);
  return 1;
}

static int future_cancelled(lua_State *L) {
  lua_pushboolean(L, state_of(check_future(L)) == DUET_FUT_CANCELLED);
  return 1;
}

/* Only a task that has not started can be cancelled (as in Python). */
static int future_cancel(lua_State *L) {
  duet_Future *f = check_future(L);
  lua_pushboolean(L, duet_future_cancel(L, f)
                     || state_of(f) == DUET_FUT_CANCELLED);
  return 1;
}

static int future_add_done_callback(lua_State *L) {
  duet_Future *f = check_future(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  if (state_of(f) < DUET_FUT_FINISHED) {
    duet_Message **box = duet_new_box(L, 1);
    Callback *cb;
    int added = 0;
    box[0] = duet_encode(L, 2, 1, "callback", 0);
    cb = (Callback *)malloc(sizeof *cb);
    if (cb == NULL) return luaL_error(L, "not enough memory");
    cb->fn = box[0];
    pthread_mutex_lock(&stripe(f)->mu);
    if (state_of(f) < DUET_FUT_FINISHED) {
      cb->next = f->cbs;
      f->cbs = cb;
      box[0] = NULL;
      added = 1;
    }
    pthread_mutex_unlock(&stripe(f)->mu);
    if (added) return 0;
    free(cb);                             /* done meanwhile: call it here */
    lua_settop(L, 2);
  }
  run_callback(L, f, NULL);
  return 0;
}

/* ------------------------------------------------- settled by the user */

/* rt.Future() -> a pending future that only its holders settle */
static int future_new(lua_State *L) {
  duet_Future *f = duet_future_new(L, 0, NULL);
  f->settleable = 1;
  return 1;
}

/* Raise "invalid state" for a settle or start that `f` refuses. */
static int invalid_state(lua_State *L, duet_Future *f) {
  int state = state_of(f);
  return luaL_error(L, "invalid state: %s", !f->settleable
                    ? "the future belongs to an executor"
                    : state == DUET_FUT_CANCELLED ? "the future is cancelled"
                    : state < DUET_FUT_FINISHED ? "the future is already running"
                    : "the future is already finished");
}

/* Claim `f` for a settle: PENDING or RUNNING -> SETTLING; 0 if neither. */
static int claim(duet_Future *f) {
  int expected = DUET_FUT_PENDING;
  if (!f->settleable) return 0;
  if (atomic_compare_exchange_strong(&f->state, &expected,
                                     DUET_FUT_SETTLING))
    return 1;
  expected = DUET_FUT_RUNNING;
  return atomic_compare_exchange_strong(&f->state, &expected,
                                        DUET_FUT_SETTLING);
}

/* Settle `f` with the message in box[0] (taken from the box), or raise
** when it is not claimable, the message then freed with the box. */
static int settle(lua_State *L, duet_Future *f, duet_Message **box, int ok,
                  char *traceback) {
  duet_Message *m;
  if (!claim(f)) {
    free(traceback);
    return invalid_state(L, f);
  }
  m = box[0];
  box[0] = NULL;
  complete(L, f, ok ? DUET_FUT_FINISHED : DUET_FUT_FAILED, m, traceback);
  return 0;
}

/* f:set_result(...): done, with ... as its results */
static int future_set_result(lua_State *L) {
  duet_Future *f = check_future(L);
  int n = lua_gettop(L) - 1;
  duet_Message **box = duet_new_box(L, 1);
  box[0] = duet_encode(L, 2, n, "results", DUET_LIST);
  return settle(L, f, box, 1, NULL);
}

/* f:set_exception(err [, traceback]): failed with err, which result()
** raises; fut.traceback is the one given, else where this was called. */
static int future_set_exception(lua_State *L) {
  duet_Future *f = check_future(L);
  duet_Message **box;
  const char *tb;
  char *copy;
  luaL_argexpected(L, !lua_isnoneornil(L, 2), 2, "error value");
  tb = luaL_optstring(L, 3, NULL);
  lua_settop(L, 3);
  if (tb == NULL) {
    luaL_traceback(L, L, luaL_tolstring(L, 2, NULL), 1);
    tb = lua_tostring(L, -1);
  }
  box = duet_new_box(L, 1);
  box[0] = duet_encode(L, 2, 1, "error", 0);
  copy = strdup(tb);
  if (copy == NULL) return luaL_error(L, "not enough memory");
  return settle(L, f, box, 0, copy);
}

/* f:set_running_or_notify_cancel(): PENDING -> RUNNING, true; false when
** it was cancelled (for code that runs the work of a future it made). */
static int future_set_running(lua_State *L) {
  duet_Future *f = check_future(L);
  int expected = DUET_FUT_PENDING;
  if (f->settleable && atomic_compare_exchange_strong(&f->state, &expected,
                                                      DUET_FUT_RUNNING)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (f->settleable && state_of(f) == DUET_FUT_CANCELLED) {
    lua_pushboolean(L, 0);
    return 1;
  }
  return invalid_state(L, f);
}

/* traceback: a failed future's, else nil */
static void get_traceback(lua_State *L, duet_Object *o) {
  duet_Future *f = (duet_Future *)o;
  if (state_of(f) == DUET_FUT_FAILED && f->traceback)
    lua_pushstring(L, f->traceback);
  else lua_pushnil(L);
}

/* ------------------------------------------------ rt.wait, as_completed */

struct Watcher {
  pthread_mutex_t mu;                     /* guards the counts and ring */
  pthread_cond_t cv;                      /* signalled by each delivery */
  size_t n, head, tail, nfailed;
  Node *nodes;                            /* one per future */
  Node **ring;                            /* done ones, in order: n slots */
  int ready;                              /* mu, cv, arrays made */
};

static void deliver(Node *n, int state) {
  Watcher *w = n->w;
  pthread_mutex_lock(&w->mu);
  w->ring[w->tail++] = n;
  if (state == DUET_FUT_FAILED) w->nfailed++;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

/* Leave every future; free what was made. Idempotent: __gc and __close. */
static int watcher_gc(lua_State *L) {
  Watcher *w = (Watcher *)lua_touserdata(L, 1);
  size_t i;
  if (w == NULL || !w->ready) return 0;
  w->ready = 0;
  for (i = 0; i < w->n; i++) {
    Node *n = &w->nodes[i];
    duet_Future *f = n->f;
    if (f == NULL) continue;
    pthread_mutex_lock(&stripe(f)->mu);
    if (n->linked) {
      if (n->prev) n->prev->next = n->next;
      else f->watchers = n->next;
      if (n->next) n->next->prev = n->prev;
      n->linked = 0;
    }
    pthread_mutex_unlock(&stripe(f)->mu);
    duet_release(&f->base);
  }
  free(w->nodes);
  free(w->ring);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  return 0;
}

/* The futures of list `arg` (a table), without repeats, into a new list
** left on the stack; returns their count. */
static size_t unique_futures(lua_State *L, int arg) {
  lua_Integer i, n;
  size_t count = 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  n = luaL_len(L, arg);
  lua_createtable(L, (int)(n < 1 << 20 ? n : 0), 0);    /* the list */
  lua_newtable(L);                                      /* seen */
  for (i = 1; i <= n; i++) {
    duet_Object *o;
    lua_geti(L, arg, i);
    o = duet_to_object(L, -1);
    if (o == NULL || o->type != &future_type) {
      const char *got = luaL_getmetafield(L, -1, "__name") == LUA_TSTRING
                        ? lua_tostring(L, -1) : luaL_typename(L, -1);
      luaL_argerror(L, arg, lua_pushfstring(L, "duet.Future expected at "
                    "index %I, got %s", (LUAI_UACINT)i, got));
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TNIL) {
      lua_pushvalue(L, -2);
      lua_pushboolean(L, 1);
      lua_rawset(L, -5);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -5, (lua_Integer)++count);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  return count;
}

/* A watcher over the `n` futures of the list at `list`, registered on each
** (the done ones delivered at once, in list order); left on the stack. */
static Watcher *watch(lua_State *L, int list, size_t n) {
  Watcher *w = (Watcher *)lua_newuserdatauv(L, sizeof(Watcher), 0);
  size_t i;
  memset(w, 0, sizeof *w);
  if (luaL_newmetatable(L, "duet.FutureWatcher")) {
    lua_pushcfunction(L, watcher_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, watcher_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  w->nodes = (Node *)calloc(n ? n : 1, sizeof(Node));
  w->ring = (Node **)calloc(n ? n : 1, sizeof(Node *));
  if (w->nodes == NULL || w->ring == NULL) {
    free(w->nodes);
    free(w->ring);
    luaL_error(L, "not enough memory");
  }
  pthread_mutex_init(&w->mu, NULL);
  duet_cond_init(&w->cv);
  w->n = n;
  w->ready = 1;
  for (i = 0; i < n; i++) {
    Node *nd = &w->nodes[i];
    duet_Future *f;
    lua_rawgeti(L, list, (lua_Integer)i + 1);
    f = (duet_Future *)duet_to_object(L, -1);
    lua_pop(L, 1);
    duet_retain(&f->base);
    nd->w = w;
    nd->f = f;
    pthread_mutex_lock(&stripe(f)->mu);
    if (state_of(f) >= DUET_FUT_FINISHED) deliver(nd, state_of(f));
    else {
      nd->next = f->watchers;
      if (f->watchers) f->watchers->prev = nd;
      f->watchers = nd;
      nd->linked = 1;
    }
    pthread_mutex_unlock(&stripe(f)->mu);
  }
  return w;
}

enum { ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION };

/* Is the wait over, given the futures done so far? (w->mu held) */
static int satisfied(Watcher *w, int when) {
  switch (when) {
    case FIRST_COMPLETED: return w->tail >= 1 || w->n == 0;
    case FIRST_EXCEPTION: return w->nfailed >= 1 || w->tail == w->n;
    default: return w->tail == w->n;
  }
}

/* rt.wait(futures, {timeout=, return_when=}) -> done, not_done */
static int futures_wait(lua_State *L) {
  static const char *const modes[] = {"ALL_COMPLETED", "FIRST_COMPLETED",
                                      "FIRST_EXCEPTION", NULL};
  double timeout = -1;
  int when = ALL_COMPLETED, r = 0, list;
  size_t n, i, ndone = 0;
  lua_settop(L, 2);
  n = unique_futures(L, 1);                                   /* 3 */
  list = 3;
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "timeout") != LUA_TNIL) {          /* 4 */
      int isnum;
      timeout = lua_tonumberx(L, 4, &isnum);
      if (!isnum)
        luaL_argerror(L, 2, lua_pushfstring(L, "number expected, got %s",
                                            duet_type_name(L, 4)));
      luaL_argcheck(L, timeout >= 0, 2,
                    "timeout must be a non-negative number");
    }
    if (lua_getfield(L, 2, "return_when") != LUA_TNIL) {      /* 5 */
      const char *s = lua_tostring(L, 5);
      if (lua_type(L, 5) != LUA_TSTRING)
        luaL_argerror(L, 2, lua_pushfstring(L, "string expected, got %s",
                                            duet_type_name(L, 5)));
      for (when = 0; modes[when] && strcmp(modes[when], s) != 0; when++) {}
      if (modes[when] == NULL)
        luaL_argerror(L, 2, lua_pushfstring(L, "invalid option '%s'", s));
    }
    lua_settop(L, 3);
  }
  if (timeout != 0) {
    Watcher *w = watch(L, list, n);
    double deadline = duet_deadline(timeout);
    duet_wait_begin(L, &w->cv, &w->mu);
    pthread_mutex_lock(&w->mu);
    while (!satisfied(w, when)
           && (r = duet_wait(L, &w->cv, &w->mu, deadline)) == 0) {}
    if (satisfied(w, when)) r = 0;
    pthread_mutex_unlock(&w->mu);
    duet_wait_end(L);
    lua_pushcfunction(L, watcher_gc);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    if (r != 0 && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  }
  lua_createtable(L, (int)(n < 1 << 20 ? n : 0), 0);         /* done */
  lua_newtable(L);                                            /* not_done */
  for (i = 1; i <= n; i++) {
    duet_Future *f;
    lua_rawgeti(L, list, (lua_Integer)i);
    f = (duet_Future *)duet_to_object(L, -1);
    if (state_of(f) >= DUET_FUT_FINISHED)
      lua_rawseti(L, -3, (lua_Integer)++ndone);
    else lua_rawseti(L, -2, (lua_Integer)(i - ndone));
  }
  return 2;
}

/* The as_completed iterator: upvalues the watcher and the deadline. A
** future it yields is let go of at once (its node unlinked already), so a
** long stream of futures does not stay alive in it. */
static int as_completed_next(lua_State *L) {
  Watcher *w = (Watcher *)lua_touserdata(L, lua_upvalueindex(1));
  double deadline = lua_tonumber(L, lua_upvalueindex(2));
  Node *nd = NULL;
  int r = 0;
  if (!w->ready) return 0;
  duet_wait_begin(L, &w->cv, &w->mu);
  pthread_mutex_lock(&w->mu);
  if (w->head == w->n) r = -1;            /* all yielded */
  else {
    while (w->head == w->tail
           && (r = duet_wait(L, &w->cv, &w->mu, deadline)) == 0) {}
    if (w->head < w->tail) {
      nd = w->ring[w->head];
      w->ring[w->head++] = NULL;
      r = 0;
    }
  }
  pthread_mutex_unlock(&w->mu);
  duet_wait_end(L);
  if (r == -1) {
    lua_settop(L, 0);
    lua_pushcfunction(L, watcher_gc);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 1, 0);
    return 0;
  }
  if (r == DUET_TIMEDOUT) return duet_raise(L, DUET_ERR_TIMEOUT);
  if (r != 0) return duet_wait_error(L, r);
  duet_push_object(L, &nd->f->base);      /* the proxy holds it now */
  duet_release(&nd->f->base);
  nd->f = NULL;
  return 1;
}

/* for fut in rt.as_completed(futures, [timeout]) do ... end */
static int futures_as_completed(lua_State *L) {
  double timeout = duet_opt_timeout(L, 2);
  size_t n;
  lua_settop(L, 2);
  n = unique_futures(L, 1);                                   /* 3 */
  watch(L, 3, n);                                             /* 4 */
  lua_pushvalue(L, 4);
  lua_pushnumber(L, duet_deadline(timeout));
  lua_pushcclosure(L, as_completed_next, 2);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 4);                    /* closed when the loop ends */
  return 4;
}

static const luaL_Reg future_methods[] = {
  {"result", future_result},
  {"exception", future_exception},
  {"wait", future_wait},
  {"done", future_done},
  {"running", future_running},
  {"cancelled", future_cancelled},
  {"cancel", future_cancel},
  {"add_done_callback", future_add_done_callback},
  {"set_result", future_set_result},
  {"set_exception", future_set_exception},
  {"set_running_or_notify_cancel", future_set_running},
  {NULL, NULL}
};

static const luaL_Reg future_funcs[] = {
  {"Future", future_new},
  {"wait_futures", futures_wait},
  {"as_completed", futures_as_completed},
  {NULL, NULL}
};

int duet_future_open(lua_State *L) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, stripes_init);
  duet_new_type(L, &future_type, future_methods, NULL);
  luaL_setfuncs(L, future_funcs, 0);
  return 0;
}
