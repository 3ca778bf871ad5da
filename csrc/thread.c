/*
** thread.c — duet threads: Thread objects, join, cancel, the excepthook.
** Each runs its target in a fresh lua_State on an OS thread of pool.c.
** What cancel() reaches, and every wait it wakes, is wait.c's: a Thread
** holds the duet_Waiter of the OS thread that runs it.
*/
#include <dlfcn.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "duet.h"

enum { NEW, RUNNING, DONE };

typedef struct Thread {
  duet_Object base;
  duet_Job job;                           /* how the pool runs it */
  pthread_mutex_t mu;                     /* guards the fields below */
  pthread_cond_t done_cv;                 /* broadcast when DONE */
  char *name;
  lua_Integer ident;
  int daemon, state, joiners, ok;
  duet_Message *target, *args;            /* until it runs */
  duet_Message *result;                   /* results, or the error value */
  char *traceback;
  char *path, *cpath;                     /* the creator's package paths */
  size_t memory_limit;                    /* bytes for its Lua state; 0: none */
  lua_CFunction body;                     /* or a C body (duet_spawn_c) */
  void *body_arg;
  duet_Waiter wait;                       /* a started thread's waiter */
  duet_Waiter *waiter;                    /* what cancel() reaches: &wait,
                                          ** or MainThread's, from wait.c */
} Thread;

static const duet_Type thread_type;

static atomic_llong next_ident = 1;
static atomic_llong next_number = 1;      /* for "Thread-N" */

/* non-daemon threads running, waited for when the main state closes */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv;
static long live_count;
static long live_waiting;                 /* of them, in wait_live */
/* an executor's worker in a task or its initializer: its pool's count of
** workers in wait_live (guarded by live_mu) */
static _Thread_local int *running_unit;

/* the replaceable excepthook, moved into each thread that needs it */
static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static duet_Message *excepthook;

#define MIN_STACK (256 * 1024)

/* ---------------------------------------------------------- thread object */

/* A thread whose results hold the thread itself (return rt.current())
** would keep itself alive: those references do not count (disown_self),
** and are dropped unreleased when the thread goes. */
static void disown_self(Thread *th) {
  size_t k;
  for (k = 0; th->result && k < th->result->nrefs; k++)
    if (th->result->refs[k] == &th->base) duet_release(&th->base);
}

static void thread_destroy(duet_Object *o) {
  Thread *th = (Thread *)o;
  size_t k;
  for (k = 0; th->result && k < th->result->nrefs; k++)
    if (th->result->refs[k] == o) th->result->refs[k] = NULL;
  duet_message_free(th->target);
  duet_message_free(th->args);
  duet_message_free(th->result);
  free(th->name);
  free(th->traceback);
  free(th->path);
  free(th->cpath);
  pthread_mutex_destroy(&th->mu);
  pthread_mutex_destroy(&th->wait.lock);
  pthread_cond_destroy(&th->done_cv);
  free(th);
}

static void thread_describe(duet_Object *o, char *buf, size_t size) {
  static const char *const states[] = {"initial", "started", "stopped"};
  Thread *th = (Thread *)o;
  pthread_mutex_lock(&th->mu);
  snprintf(buf, size, "%s, %s%s", th->name, states[th->state],
           th->daemon ? " daemon" : "");
  pthread_mutex_unlock(&th->mu);
}

static void get_name(lua_State *L, duet_Object *o);
static void get_ident(lua_State *L, duet_Object *o);
static void get_daemon(lua_State *L, duet_Object *o);
static void get_traceback(lua_State *L, duet_Object *o);

static const duet_Field thread_fields[] = {
  {"name", get_name},
  {"ident", get_ident},
  {"daemon", get_daemon},
  {"traceback", get_traceback},
  {NULL, NULL}
};

static const duet_Type thread_type = {"duet.Thread", thread_destroy,
                                      thread_describe, duet_thread_open,
                                      NULL, thread_fields, NULL};

static void thread_run(lua_State *L, duet_Job *job);
static void thread_done(duet_Job *job);

static void thread_init(Thread *th, const char *name, int daemon) {
  th->job.run = thread_run;
  th->job.done = thread_done;
  pthread_mutex_init(&th->mu, NULL);
  pthread_mutex_init(&th->wait.lock, NULL);
  th->wait.owner = th;
  th->waiter = &th->wait;
  duet_cond_init(&th->done_cv);
  th->ident = atomic_fetch_add(&next_ident, 1);
  th->daemon = daemon;
  th->state = NEW;
  th->name = strdup(name);
}

/* The Thread of the calling OS thread (NULL: none yet). */
static Thread *current_thread(void) {
  duet_Waiter *w = duet_waiter();
  return w ? (Thread *)w->owner : NULL;
}

/* The Thread of the calling OS thread; outside duet threads, a
** "MainThread" made on first use around wait.c's waiter for it, and kept
** for the life of the OS thread. */
static Thread *self_thread(lua_State *L) {
  duet_Waiter *w = duet_self_waiter(L);
  if (w->owner == NULL) {
    Thread *th = (Thread *)calloc(1, sizeof *th);
    if (th == NULL) luaL_error(L, "not enough memory");
    atomic_init(&th->base.refs, 1);
    th->base.type = &thread_type;
    thread_init(th, "MainThread", 0);
    th->state = RUNNING;
    th->waiter = w;
    w->owner = th;
  }
  return (Thread *)w->owner;
}

lua_Integer duet_self_ident(lua_State *L) {
  return self_thread(L)->ident;
}


/* Push the excepthook for this state: in a thread, the replacement set from
** any state if there is one; else (and in a main state) its duet's own. */
static void push_excepthook(lua_State *L) {
  duet_Message *hook = NULL;
  if (duet_in_worker()) {
    pthread_mutex_lock(&hook_mu);
    if (excepthook) hook = duet_message_copy(excepthook);
    pthread_mutex_unlock(&hook_mu);
  }
  if (hook) duet_decode_free(L, hook);
  else {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "duet");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "excepthook");
    lua_remove(L, -2);
  }
}

/* Call duet.excepthook(thread, err, traceback) in this thread's state. */
static int call_excepthook(lua_State *L) {
  Thread *th = (Thread *)lua_touserdata(L, 1);
  duet_Object *o;
  lua_settop(L, 1);
  if (th->result) duet_decode(L, th->result);   /* 2: the error value */
  else lua_pushnil(L);
  o = duet_to_object(L, 2);
  if (o && duet_error_index(o) == DUET_ERR_CANCELLED)
    return 0;                             /* ended as asked: no report */
  push_excepthook(L);
  duet_push_object(L, &th->base);
  lua_pushvalue(L, 2);
  lua_pushstring(L, th->traceback ? th->traceback : "");
  lua_call(L, 3, 0);
  return 0;
}

static void report(lua_State *L, Thread *th) {
  lua_pushcfunction(L, call_excepthook);
  lua_pushlightuserdata(L, th);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "Exception in excepthook of thread %s:\n%s\n", th->name,
            luaL_tolstring(L, -1, NULL));
    fflush(stderr);
  }
}

/* (err, traceback) -> duet.excepthook(current thread, err, traceback) */
static int report_call(lua_State *L) {
  push_excepthook(L);
  duet_push_object(L, &self_thread(L)->base);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 3, 0);
  return 0;
}

void duet_report(lua_State *L, int err, const char *traceback) {
  duet_Object *o = duet_to_object(L, err);
  if (o && duet_error_index(o) == DUET_ERR_CANCELLED) return;
  err = lua_absindex(L, err);
  lua_pushcfunction(L, report_call);
  lua_pushvalue(L, err);
  if (traceback) lua_pushstring(L, traceback);
  else luaL_tolstring(L, err, NULL);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "Exception in excepthook of thread %s:\n%s\n",
            self_thread(L)->name, luaL_tolstring(L, -1, NULL));
    fflush(stderr);
    lua_pop(L, 2);
  }
}

/* (err) -> the error value encoded, as a light userdata. */
static int encode_error(lua_State *L) {
  lua_pushlightuserdata(L, duet_encode(L, 1, 1, "error", 0));
  return 1;
}

/* Protected: decode and run the target; leave the encoded outcome in th. */
/* The allocator of a thread with a memory_limit: refuses to grow past it,
** so its Lua code gets "not enough memory" instead of taking the process. */
typedef struct Cap {
  lua_Alloc f;
  void *ud;
  size_t used, limit;
} Cap;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  Cap *c = (Cap *)ud;
  size_t old = ptr ? osize : 0;
  void *p;
  if (nsize > old && c->used + (nsize - old) > c->limit) return NULL;
  p = c->f(c->ud, ptr, osize, nsize);
  if (p != NULL || nsize == 0) c->used = c->used + nsize - old;
  return p;
}

static int thread_body(lua_State *L) {
  Thread *th = (Thread *)lua_touserdata(L, 1);
  int base, n, status;
  Cap cap;
  lua_settop(L, 0);
  lua_pushlightuserdata(L, &th->traceback);
  lua_pushcclosure(L, duet_keep_traceback, 1);  /* 1: message handler */
  base = lua_gettop(L);
  if (th->body) {                         /* duet_spawn_c */
    lua_pushcfunction(L, th->body);
    lua_pushlightuserdata(L, th->body_arg);
    n = 1;
  }
  else {
    duet_decode(L, th->target);
    n = duet_decode(L, th->args);
    duet_message_free(th->target);        /* used: no need to keep them */
    duet_message_free(th->args);
    th->target = th->args = NULL;
  }
  duet_check_cancel(L);                   /* cancelled before it ran */
  if (th->memory_limit) {                 /* only the target is capped */
    cap.f = lua_getallocf(L, &cap.ud);
    cap.used = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024
               + (size_t)lua_gc(L, LUA_GCCOUNTB);
    cap.limit = cap.used + th->memory_limit;
    lua_setallocf(L, capped_alloc, &cap);
  }
  status = lua_pcall(L, n, LUA_MULTRET, 1);
  if (th->memory_limit) lua_setallocf(L, cap.f, cap.ud);
  if (status == LUA_OK) {
    th->result = duet_encode(L, base + 1, lua_gettop(L) - base, "results",
                             DUET_LIST);
    th->ok = 1;
  }
  else {
    int err = lua_gettop(L);
    lua_pushcfunction(L, encode_error);
    lua_pushvalue(L, err);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {  /* an unmovable error: its text */
      lua_pushcfunction(L, encode_error);
      luaL_tolstring(L, err, NULL);
      lua_call(L, 1, 1);
    }
    th->result = (duet_Message *)lua_touserdata(L, -1);
    th->ok = 0;
  }
  return 0;
}

/* The pool's job: run th in the fresh state L (NULL: out of memory). */
static void thread_run(lua_State *L, duet_Job *job) {
  Thread *th = (Thread *)((char *)job - offsetof(Thread, job));
  int need_hook;
  duet_become_worker();
  if (L == NULL) {
    pthread_mutex_lock(&th->mu);
    th->state = DONE;
    th->ok = 0;
    th->traceback = strdup("not enough memory for a new Lua state");
    pthread_cond_broadcast(&th->done_cv);
    pthread_mutex_unlock(&th->mu);
    return;
  }
  duet_set_waiter(&th->wait);
  duet_set_paths(L, th->path, th->cpath);
  duet_waiter_attach(&th->wait, L);
  lua_pushcfunction(L, thread_body);
  lua_pushlightuserdata(L, th);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {  /* a failure around the target */
    int err = lua_gettop(L);
    if (th->traceback == NULL)
      th->traceback = strdup(luaL_tolstring(L, err, NULL));
    lua_pushcfunction(L, encode_error);
    lua_pushvalue(L, err);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {  /* unmovable: send its text */
      lua_pushcfunction(L, encode_error);
      lua_pushstring(L, th->traceback ? th->traceback : "error in thread");
      if (lua_pcall(L, 1, 1, 0) != LUA_OK) lua_pushnil(L);
    }
    th->result = (duet_Message *)lua_touserdata(L, -1);
    th->ok = 0;
  }
  disown_self(th);
  pthread_mutex_lock(&th->mu);
  need_hook = !th->ok && th->joiners == 0;
  pthread_mutex_unlock(&th->mu);
  if (need_hook) {
    lua_settop(L, 0);
    report(L, th);
  }
  duet_waiter_attach(&th->wait, NULL);    /* no more cancel hooks on L */
  lua_sethook(L, NULL, 0, 0);
  pthread_mutex_lock(&th->mu);
  th->state = DONE;
  pthread_cond_broadcast(&th->done_cv);
  pthread_mutex_unlock(&th->mu);
  duet_set_waiter(NULL);
}

/* The thread's OS-level work is over (its state closed): let the process
** exit if it was the last non-daemon one. */
static void thread_done(duet_Job *job) {
  Thread *th = (Thread *)((char *)job - offsetof(Thread, job));
  if (!th->daemon) {
    pthread_mutex_lock(&live_mu);
    if (--live_count <= live_waiting) pthread_cond_broadcast(&live_cv);
    pthread_mutex_unlock(&live_mu);
  }
  duet_release(&th->base);                /* the reference start() took */
}

/* ---------------------------------------------------------- Lua methods */

#define check_thread(L) ((Thread *)duet_check_self(L, &thread_type))

static void start_thread(lua_State *L, Thread *th) {
  int r;
  pthread_mutex_lock(&th->mu);
  r = th->state;
  if (r == NEW) th->state = RUNNING;
  pthread_mutex_unlock(&th->mu);
  if (r != NEW) luaL_error(L, "threads can only be started once");
  if (!th->daemon) {
    pthread_mutex_lock(&live_mu);
    live_count++;
    pthread_mutex_unlock(&live_mu);
  }
  duet_retain(&th->base);                 /* for the running thread */
  r = duet_pool_start(&th->job);
  if (r != 0) {
    duet_release(&th->base);
    pthread_mutex_lock(&th->mu);
    th->state = NEW;
    pthread_mutex_unlock(&th->mu);
    if (!th->daemon) {
      pthread_mutex_lock(&live_mu);
      if (--live_count <= live_waiting) pthread_cond_broadcast(&live_cv);
      pthread_mutex_unlock(&live_mu);
    }
    luaL_error(L, "cannot start thread: %s", strerror(r));
  }
}

/* The creator's package paths, for the new thread's state. */
static void copy_paths(lua_State *L, Thread *th) {
  duet_push_paths(L);
  th->path = strdup(luaL_optstring(L, -2, ""));
  th->cpath = strdup(luaL_optstring(L, -1, ""));
  lua_pop(L, 2);
  if (!th->name || !th->path || !th->cpath) luaL_error(L, "not enough memory");
}

/* Make a Thread from the target at `t` and `n` args from `a`, and leave
** its proxy on the stack top. */
static Thread *make_thread(lua_State *L, int t, int a, int n,
                           const char *name, int daemon) {
  char defname[32];
  Thread *th;
  duet_Message **box = duet_new_box(L, 2);
  box[0] = duet_encode(L, t, 1, "target", 0);
  box[1] = duet_encode(L, a, n, "args", DUET_LIST);
  th = (Thread *)duet_new_object(L, &thread_type, sizeof(Thread));
  if (name == NULL) {                     /* numbered once nothing can fail */
    snprintf(defname, sizeof defname, "Thread-%lld",
             (long long)atomic_fetch_add(&next_number, 1));
    name = defname;
  }
  thread_init(th, name, daemon);
  th->target = box[0];
  th->args = box[1];
  box[0] = box[1] = NULL;
  lua_remove(L, -2);                      /* the box */
  copy_paths(L, th);
  return th;
}

void duet_spawn_c(lua_State *L, const char *name, lua_CFunction body,
                  void *arg) {
  Thread *th = (Thread *)duet_new_object(L, &thread_type, sizeof(Thread));
  thread_init(th, name, 1);
  th->body = body;
  th->body_arg = arg;
  copy_paths(L, th);
  start_thread(L, th);
  lua_pop(L, 1);
}

void duet_keep_alive(int delta) {
  pthread_mutex_lock(&live_mu);
  live_count += delta;
  if (live_count <= live_waiting) pthread_cond_broadcast(&live_cv);
  pthread_mutex_unlock(&live_mu);
}

static const char *opt_field_string(lua_State *L, const char *k) {
  const char *s = NULL;
  int t = lua_getfield(L, 1, k);
  if (t == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (t != LUA_TNIL)
    luaL_argerror(L, 1, lua_pushfstring(L, "field '%s': string expected, "
                                        "got %s", k, duet_type_name(L, -1)));
  return s;                               /* stays on the stack */
}

/* Thread{target=fn, args={...}, name=str, daemon=bool} */
static int thread_new(lua_State *L) {
  Thread *th;
  const char *name;
  int daemon, n = 0, base;
  lua_Integer limit = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  if (lua_getfield(L, 1, "target") != LUA_TFUNCTION)     /* 2 */
    luaL_argerror(L, 1, lua_pushfstring(L, "field 'target': function "
                                        "expected, got %s",
                                        duet_type_name(L, 2)));
  name = opt_field_string(L, "name");                     /* 3 */
  if (lua_getfield(L, 1, "daemon") == LUA_TNIL)           /* 4 */
    daemon = self_thread(L)->daemon;      /* inherited, as in Python */
  else daemon = lua_toboolean(L, 4);
  base = lua_gettop(L);
  switch (lua_getfield(L, 1, "args")) {
    case LUA_TNIL: lua_pop(L, 1); break;
    case LUA_TTABLE: {
      int i;
      n = (int)luaL_len(L, -1);
      luaL_checkstack(L, n, "too many args");
      for (i = 1; i <= n; i++) lua_geti(L, base + 1, i);
      lua_remove(L, base + 1);
      break;
    }
    default:
      luaL_argerror(L, 1, lua_pushfstring(L, "field 'args': table "
                                          "expected, got %s",
                                          duet_type_name(L, -1)));
  }
  if (lua_getfield(L, 1, "memory_limit") != LUA_TNIL) {
    int exact = 0;                        /* 10e6 is 10000000 */
    if (lua_type(L, -1) == LUA_TNUMBER) limit = lua_tointegerx(L, -1, &exact);
    if (!exact || limit <= 0)
      luaL_argerror(L, 1, "field 'memory_limit': positive integer expected");
  }
  lua_pop(L, 1);
  th = make_thread(L, 2, base + 1, n, name, daemon);
  th->memory_limit = (size_t)limit;
  return 1;
}

/* spawn(fn, ...) -> a started Thread */
static int thread_spawn(lua_State *L) {
  int n = lua_gettop(L) - 1;
  Thread *th;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  th = make_thread(L, 1, 2, n, NULL, self_thread(L)->daemon);
  start_thread(L, th);
  return 1;
}

static int thread_start(lua_State *L) {
  start_thread(L, check_thread(L));
  return 0;
}

static int thread_join(lua_State *L) {
  Thread *th = check_thread(L);
  double deadline = duet_deadline(duet_opt_timeout(L, 2));
  int r = 0, state;
  if (th == current_thread()) luaL_error(L, "cannot join current thread");
  pthread_mutex_lock(&th->mu);
  state = th->state;
  pthread_mutex_unlock(&th->mu);
  if (state == NEW) luaL_error(L, "cannot join thread before it is started");
  if (state != DONE) {
    duet_wait_begin(L, &th->done_cv, &th->mu);
    pthread_mutex_lock(&th->mu);
    th->joiners++;
    while (th->state != DONE && (r = duet_wait(L, &th->done_cv, &th->mu,
                                               deadline)) == 0) {}
    th->joiners--;
    state = th->state;
    pthread_mutex_unlock(&th->mu);
    duet_wait_end(L);
    if (state != DONE) {
      if (r != DUET_TIMEDOUT) return duet_wait_error(L, r);
      lua_pushnil(L);
      lua_pushliteral(L, "timeout");
      return 2;
    }
  }
  lua_settop(L, 1);
  lua_pushboolean(L, th->ok);
  if (th->result == NULL) {               /* no memory even for the error */
    lua_pushliteral(L, "not enough memory");
    return 2;
  }
  return 1 + duet_decode(L, th->result);
}

static int thread_is_alive(lua_State *L) {
  Thread *th = check_thread(L);
  int alive;
  pthread_mutex_lock(&th->mu);
  alive = th->state == RUNNING;
  pthread_mutex_unlock(&th->mu);
  lua_pushboolean(L, alive);
  return 1;
}

static int thread_cancel(lua_State *L) {
  duet_cancel(L, check_thread(L)->waiter);
  return 0;
}

/* Its fields: name, ident, daemon, and traceback once it failed. Each
** reads under th->mu and pushes after it: no Lua API call under a mutex.
** (A name can be replaced meanwhile, so it is copied; a traceback is set
** once, before DONE, and lives as long as th.) */
static void get_name(lua_State *L, duet_Object *o) {
  Thread *th = (Thread *)o;
  char *name;
  pthread_mutex_lock(&th->mu);
  name = strdup(th->name);
  pthread_mutex_unlock(&th->mu);
  if (name == NULL) luaL_error(L, "not enough memory");
  lua_pushstring(L, name);                /* a memory error leaks name */
  free(name);
}

static void get_ident(lua_State *L, duet_Object *o) {
  lua_pushinteger(L, ((Thread *)o)->ident);  /* set once, at creation */
}

static void get_daemon(lua_State *L, duet_Object *o) {
  Thread *th = (Thread *)o;
  int daemon;
  pthread_mutex_lock(&th->mu);
  daemon = th->daemon;
  pthread_mutex_unlock(&th->mu);
  lua_pushboolean(L, daemon);
}

static void get_traceback(lua_State *L, duet_Object *o) {
  Thread *th = (Thread *)o;
  const char *traceback = NULL;
  pthread_mutex_lock(&th->mu);
  if (th->state == DONE && !th->ok) traceback = th->traceback;
  pthread_mutex_unlock(&th->mu);
  lua_pushstring(L, traceback);           /* NULL pushes nil */
}

static int thread_newindex(lua_State *L) {
  Thread *th = (Thread *)duet_check_object(L, 1, &thread_type);
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
  if (strcmp(k, "name") == 0) {
    char *name = strdup(luaL_checkstring(L, 3));
    if (name == NULL) return luaL_error(L, "not enough memory");
    pthread_mutex_lock(&th->mu);
    free(th->name);
    th->name = name;
    pthread_mutex_unlock(&th->mu);
  }
  else if (strcmp(k, "daemon") == 0) {
    int started, daemon = lua_toboolean(L, 3);
    pthread_mutex_lock(&th->mu);
    started = th->state != NEW;
    if (!started) th->daemon = daemon;
    pthread_mutex_unlock(&th->mu);
    if (started)
      return luaL_error(L, "cannot set daemon status of active thread");
  }
  else return duet_newindex(L);           /* ident, traceback: read-only */
  return 0;
}

static int thread_current(lua_State *L) {
  duet_push_object(L, &self_thread(L)->base);
  return 1;
}

/* sleep(seconds): a cancellable wait on a private condition. */
static int thread_sleep(lua_State *L) {
  double t = luaL_checknumber(L, 1), deadline;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv;
  int r;
  luaL_argcheck(L, t >= 0, 1, "duration must be a non-negative number");
  duet_check_cancel(L);
  if (t == 0) {
    sched_yield();
    return 0;
  }
  deadline = duet_now() + t;
  duet_cond_init(&cv);
  duet_wait_begin(L, &cv, &mu);
  pthread_mutex_lock(&mu);
  while ((r = duet_wait(L, &cv, &mu, deadline)) == 0) {}
  pthread_mutex_unlock(&mu);
  duet_wait_end(L);
  pthread_cond_destroy(&cv);
  if (r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  return 0;
}

/* stack_size([bytes]) -> the size before; 0 restores the default. */
static int thread_stack_size(lua_State *L) {
  size_t set = 0;
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    /* Lua allows 200 nested C calls; below this they may overflow */
    luaL_argcheck(L, n == 0 || n >= MIN_STACK, 1,
                  "size must be 0 or at least 262144");
    set = n == 0 ? DUET_DEFAULT_STACK : (size_t)n;
  }
  lua_pushinteger(L, (lua_Integer)duet_pool_stack(set));
  return 1;
}

void duet_running_task(int *unit) {
  running_unit = unit;
}

/* The one of live_count that the calling OS thread belongs to, as the count
** of its callers in wait_live: a non-daemon duet thread is one by itself
** (`own`); an executor's worker in a task or its initializer is part of its
** pool, which counts once however many of its workers wait; the main
** thread and daemons belong to none (NULL). */
static int *counted_self(int *own) {
  Thread *th = duet_in_worker() ? current_thread() : NULL;
  if (th == NULL) return NULL;
  if (th->body) return running_unit;
  return th->daemon ? NULL : own;
}

/* Wait until no non-daemon thread runs (rt.run, and the main state's
** exit); a caller that is one itself waits until the only ones left are
** waiting here as it is (two threads in rt.run must not wait for each
** other). 0 when none is left, or why not. */
static int wait_live(lua_State *L, double deadline) {
  int r = 0, own = 0, *unit = counted_self(&own);
  duet_wait_begin(L, &live_cv, &live_mu);
  pthread_mutex_lock(&live_mu);
  if (unit && (*unit)++ == 0) {
    live_waiting++;
    pthread_cond_broadcast(&live_cv);     /* the others may wait for this */
  }
  while (live_count > (unit ? live_waiting : 0)
         && (r = duet_wait(L, &live_cv, &live_mu, deadline)) == 0) {}
  if (unit && --(*unit) == 0) live_waiting--;
  pthread_mutex_unlock(&live_mu);
  duet_wait_end(L);
  return r;
}

static int thread_wait_all(lua_State *L) {
  int r = wait_live(L, duet_deadline(duet_opt_timeout(L, 1)));
  if (r != 0 && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  lua_pushboolean(L, r == 0);
  return 1;
}

/* The main state closing: join the non-daemon threads first. */
static int exit_gc(lua_State *L) {
  duet_Waiter *w = duet_waiter();
  while (wait_live(L, HUGE_VAL) != 0) {}  /* Ctrl-C cannot stop it here */
  if (w && w->L == duet_main_coroutine(L))  /* no cancel hooks now */
    duet_waiter_attach(w, NULL);
  return 0;
}

static int set_excepthook(lua_State *L) {
  duet_Message *m = NULL, *old;
  if (!lua_isnil(L, 1)) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    m = duet_encode(L, 1, 1, "excepthook", 0);
  }
  pthread_mutex_lock(&hook_mu);
  old = excepthook;
  excepthook = m;
  pthread_mutex_unlock(&hook_mu);
  duet_message_free(old);
  return 0;
}

static const luaL_Reg thread_methods[] = {
  {"start", thread_start},
  {"join", thread_join},
  {"is_alive", thread_is_alive},
  {"cancel", thread_cancel},
  {NULL, NULL}
};

/* The fields, for thread_newindex's read-only errors. */
static const luaL_Reg thread_funcs[] = {
  {"Thread", thread_new},
  {"spawn", thread_spawn},
  {"current", thread_current},
  {"stack_size", thread_stack_size},
  {"wait_threads", thread_wait_all},
  {"set_excepthook", set_excepthook},
  {NULL, NULL}
};

/* Once per process. Keep this library loaded for the life of the process:
** daemon threads may still run its code after the main state closes (and
** dlcloses it). */
static void process_init(void) {
  Dl_info info;
  duet_cond_init(&live_cv);
  if (dladdr((void *)&live_count, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
}

/* What every state needs at once: the process set up for threads (an
** executor starts them without the Thread type), waiting, and a main
** state's join at close. */
int duet_thread_setup(lua_State *L) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, process_init);
  duet_wait_open(L);
  /* a main state joins the non-daemon threads when it closes (not
  ** core.c's scratch state, which only lists names) */
  lua_getfield(L, LUA_REGISTRYINDEX, DUET_SCRATCH);
  if (!duet_in_worker() && !lua_toboolean(L, -1)) {
    lua_newuserdatauv(L, 0, 0);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, exit_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "duet.exit");
  }
  lua_pop(L, 1);
  return 0;
}

/* sleep: on first use, without the Thread type, which it does not need. */
int duet_sleep_open(lua_State *L) {
  lua_pushcfunction(L, thread_sleep);
  lua_setfield(L, -2, "sleep");
  return 0;
}

/* The Thread type and spawn, current...: on first use. */
int duet_thread_open(lua_State *L) {
  if (duet_new_type(L, &thread_type, thread_methods, NULL)) {
    luaL_getmetatable(L, thread_type.name);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, thread_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);
  }
  luaL_setfuncs(L, thread_funcs, 0);
  return 0;
}
