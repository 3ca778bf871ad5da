/*
** duet.h — the interface between the layers of duet.core, from util.c up
** to core.c (docs/ARCHITECTURE.md); queue.h, socket.h and transfer.h are
** private to their files.
*/
#ifndef DUET_H
#define DUET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lua.h"
#include "lauxlib.h"

/* the one exported symbol; states that need duet.core open it lazily */
__attribute__((visibility("default"))) int luaopen_duet_core(lua_State *L);

/* everything else stays inside the module (the Makefile also builds with
** -fvisibility=hidden; spec/exports_spec.lua checks `nm -D`) */
#pragma GCC visibility push(hidden)

/* ----------------------------------------------------------------- util.c */

/* lua_dump of the Lua function on the stack top, with its debug info, into
** malloc'd memory (*len bytes), or NULL when out of memory. */
char *duet_dump(lua_State *L, size_t *len);
uint64_t duet_fnv1a(const void *p, size_t n);   /* FNV-1a, 64 bits */
/* A mutex held briefly: it spins a little before it parks. */
void duet_mutex_init_adaptive(pthread_mutex_t *mu);
/* A message handler (upvalue 1: a light userdata char **) that keeps the
** error's traceback, strdup'd, in that slot and returns the error as is. */
int duet_keep_traceback(lua_State *L);
/* Push a new table whose keys or values ("k", "v") are weak. */
void duet_new_weak(lua_State *L, const char *mode);
/* Push t[key] (t a stack index, key a raw light-userdata key), first made
** a new weak table of `mode` if it is absent: a per-state cache. */
void duet_weak_at(lua_State *L, int t, const void *key, const char *mode);
/* The name an __index(t, k) at 1, 2 looks up: k, a string without a \0
** (no field has one), with the stack cut to t, k; NULL for any other key. */
const char *duet_index_key(lua_State *L);
/* require(name), its module left on the stack. */
void duet_require(lua_State *L, const char *name);
/* Push this state's module table kept at registry[key]: made now, with
** `funcs` and a metatable of `index` and `newindex` (NULL: none), if it is
** not there yet; returns 1 when it was made now. */
int duet_module_table(lua_State *L, const void *key, const luaL_Reg *funcs,
                      lua_CFunction index, lua_CFunction newindex);
/* Note a C function of duet's modules that calls duet's Lua: check.lua
** counts its frames as duet's own when it looks for the user's line. */
void duet_note_entry(lua_State *L, lua_CFunction f);
/* The type name luaL_typeerror would show for the value at idx. */
const char *duet_type_name(lua_State *L, int idx);
/* Raise "bad argument #arg (field 'name': <want> expected, got T)" for the
** value on top; a number where an "integer" is wanted shows as a float. */
int duet_field_error(lua_State *L, int arg, const char *name,
                     const char *want);
/* The length of the list argument at (absolute) idx: its field n when set,
** as table.pack sets it, else #list. An n that is not a non-negative
** integer (1.0 counts as 1) is a bad argument. */
lua_Integer duet_list_len(lua_State *L, int idx);
/* Inside a spin loop: tell the CPU, and the compiler, that memory moves. */
static inline void duet_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#else
  __asm__ __volatile__("" ::: "memory");
#endif
}

/* ----------------------------------------------------------------- core.c */

/* modcache.c: put the compiled-module searcher into the package table at
** `pkg` of a new thread state */
void duet_modcache_install(lua_State *L, int pkg);
/* registry field set in core.c's scratch state: no exit sentinel there */
#define DUET_SCRATCH "duet.scratch"

/* ---------------------------------------------------------------- clock.c */

double duet_now(void);                    /* monotonic seconds */
void duet_timespec(double t, struct timespec *ts);
/* timeout argument: nil -> -1 (forever); else >= 0; error if negative/NaN */
double duet_opt_timeout(lua_State *L, int arg);
/* absolute deadline for a timeout from duet_opt_timeout (HUGE_VAL: none) */
double duet_deadline(double timeout);
void duet_cond_init(pthread_cond_t *c);   /* condvar on CLOCK_MONOTONIC */
int duet_clock_open(lua_State *L);

/* ------------------------------------------------------------------ rng.c */

typedef struct duet_Rng { uint64_t s[4]; } duet_Rng;
void duet_rng_seed(duet_Rng *r, uint64_t seed);
uint64_t duet_rng_next(duet_Rng *r);
uint64_t duet_rng_below(duet_Rng *r, uint64_t n);   /* [0, n), n > 0 */

/* --------------------------------------------------------------- jitter.c */

/* Before a lock, queue or condition operation: a seeded pause when jitter
** is on (threads runtime), nothing otherwise. */
extern atomic_int duet_jitter_enabled;
void duet_jitter_pause(void);
static inline void duet_jitter(void) {
  if (atomic_load_explicit(&duet_jitter_enabled, memory_order_relaxed))
    duet_jitter_pause();
}
int duet_jitter_open(lua_State *L);

/* -------------------------------------------------------------- preempt.c */

int duet_preempt_open(lua_State *L);      /* preempter (coroutines runtime) */

/* --------------------------------------------------------------- object.c */

typedef struct duet_Object duet_Object;

/* A kind that moves by ownership instead of being shared by reference (a
** socket): encode.c calls sent once a message holding it is made, the
** first state that decodes it calls arrived, and a message freed undecoded
** calls unsent. unsent may run under a queue's mutex: no Lua API there. */
typedef struct duet_Moves {
  void (*sent)(lua_State *L, duet_Object *o);
  void (*arrived)(lua_State *L, duet_Object *o);
  void (*unsent)(duet_Object *o);
} duet_Moves;

/* A field of a type, read through __index: get pushes its value. */
typedef struct duet_Field {
  const char *name;
  void (*get)(lua_State *L, duet_Object *o);
} duet_Field;

/* What the layers below a concept know of it. */
typedef struct duet_Type {
  const char *name;                       /* metatable name: "duet.Queue" */
  void (*destroy)(duet_Object *o);        /* free it: last reference gone */
  /* optional: text shown inside __tostring, e.g. "size 3/10" */
  void (*describe)(duet_Object *o, char *buf, size_t size);
  /* the concept's opener: adds its functions to the module table on the
  ** stack top and makes its metatables (run through duet_open_concept);
  ** or an opener of this type's metatable alone (a queue's kind, Lock,
  ** Semaphore: a state handed one makes no other) */
  lua_CFunction open;
  const duet_Moves *moves;                /* NULL: shared by reference */
  const duet_Field *fields;               /* name-NULL-ended, or NULL */
  /* optional: push the metatable a proxy of o wears, when it is not the
  ** one registered under name (a Queue's tells its maxsize) */
  void (*push_meta)(lua_State *L, duet_Object *o);
} duet_Type;

struct duet_Object {
  atomic_long refs;
  const duet_Type *type;
};

/* Create a proxy (left on the stack) and a zeroed native object of `size`
** bytes with one reference held by that proxy. */
void *duet_new_object(lua_State *L, const duet_Type *t, size_t size);
void duet_retain(duet_Object *o);
void duet_release(duet_Object *o);
/* Push this state's proxy for `o` (the same userdata every time). */
void duet_push_object(lua_State *L, duet_Object *o);
/* The live object at `arg` of type `t`, or a standard argument error. */
duet_Object *duet_check_object(lua_State *L, int arg, const duet_Type *t);
/* A proxy: the userdata a state holds for an object. Its seal is a word
** only duet's own proxies hold (their address mixed with one this
** library's load address decides), so a foreign userdata of the same size
** is told apart without looking its metatable up. */
typedef struct duet_Proxy {
  duet_Object *o;                         /* NULL once collected */
  uintptr_t seal;                         /* DUET_SEAL(proxy) */
} duet_Proxy;
extern const char duet_seal_key;
#define DUET_SEAL(p) ((uintptr_t)(p) ^ (uintptr_t)&duet_seal_key \
                      ^ (uintptr_t)0x9e3779b97f4a7c15u)
/* The proxy at idx if it is one of duet's (sealed), else NULL. */
static inline duet_Proxy *duet_sealed(lua_State *L, int idx) {
  duet_Proxy *p = (duet_Proxy *)lua_touserdata(L, idx);
  return p != NULL && lua_rawlen(L, idx) == sizeof(duet_Proxy)
         && p->seal == DUET_SEAL(p) ? p : NULL;
}
/* Fast check of `self` (arg 1) for methods: a sealed proxy of type `t`.
** Inline, as it is most of what an uncontended lock:acquire() costs: two
** API calls (rawlen is 0 for light userdata and keeps the read in bounds)
** instead of getmetatable + rawequal + pop; anything else goes to
** duet_check_object for the standard message. */
static inline duet_Object *duet_check_self(lua_State *L, const duet_Type *t) {
  duet_Proxy *p = duet_sealed(L, 1);
  if (p != NULL && p->o != NULL && p->o->type == t) return p->o;
  return duet_check_object(L, 1, t);
}
/* Any duet object at `idx`, or NULL. */
duet_Object *duet_to_object(lua_State *L, int idx);
/* Register type `t`: metatable with methods (light C functions),
** __index (a method, else one of t->fields: its getter's value), __gc,
** __tostring, __newindex, __name; plus extra metamethods if any. Returns
** 0 when this state had it already (duet.core loaded a second time). */
int duet_new_type(lua_State *L, const duet_Type *t, const luaL_Reg *methods,
                  const luaL_Reg *metamethods);
/* The __newindex duet_new_type gives: `field 'k' is read-only` for a key
** that reads as something or is in the metatable's __fields set, else
** `cannot set field 'k' of <type>`. */
int duet_newindex(lua_State *L);
int duet_object_open(lua_State *L);
int duet_error_open(lua_State *L);       /* duet.cancelled and the rest */
/* The duet.core module, for the layers below core.c: core.c hands down its
** table and its opener (luaopen_duet_core) when it opens in a state, so a
** state that never required duet.core can have it opened from below
** without naming the layer above. */
void duet_module_set(lua_State *L, lua_CFunction opener);  /* pops table */
lua_CFunction duet_module_opener(void);
int duet_get_module(lua_State *L);        /* the table or nil: its type */
void duet_push_module(lua_State *L);      /* opened here first if need be */
/* Run concept opener `open` in this state once, with the module table on
** the stack top; 1 if it ran now. */
int duet_open_concept(lua_State *L, lua_CFunction open);
/* Open the concept of the type named `name` ("duet.Queue") that some state
** of this process has made; 0 if none has. */
int duet_open_type(lua_State *L, const char *name);

/* The shared error values duet.cancelled, duet.timeout, duet.broken_barrier
** and duet.broken_process: static objects, so they compare equal in any
** state. */
enum { DUET_ERR_CANCELLED, DUET_ERR_TIMEOUT, DUET_ERR_BROKEN_BARRIER,
       DUET_ERR_BROKEN_PROCESS };
void duet_push_error(lua_State *L, int which);
int duet_error_index(const duet_Object *o);  /* which, or -1: not one */
void duet_push_types(lua_State *L);       /* the set of type names, or nil */
int duet_raise(lua_State *L, int which);  /* lua_error with that value */

/* ----------------------------------------- transfer.c, encode.c, decode.c */

/* An encoded value list: bytes plus the duet objects it references (one
** reference held on each until decoded or freed). */
typedef struct duet_Message {
  size_t len, nrefs;
  duet_Object **refs;
  char *data;                             /* points just after the struct */
} duet_Message;

enum {
  DUET_PORTABLE = 1,                      /* no objects: for other processes */
  DUET_LIST = 2                           /* name values where[i] even if 1 */
};
/* Encode `n` values starting at `first`; `where` names them in errors
** ("args", "item"). Raises on untransferable values; nothing retained then. */
duet_Message *duet_encode(lua_State *L, int first, int n, const char *where,
                          int flags);
/* Push the values of `m`; returns their count. `m` stays the caller's. */
int duet_decode(lua_State *L, const duet_Message *m);
/* The same, then frees `m` (also when decoding raises). */
int duet_decode_free(lua_State *L, duet_Message *m);
/* Push the values of portable bytes (duet.encode's, without its magic);
** code is refused unless `functions`. Returns their count. */
int duet_decode_bytes(lua_State *L, const char *p, size_t len,
                      int functions);
void duet_message_free(duet_Message *m);  /* releases its objects (a NULL
                                             ref is skipped) */
duet_Message *duet_message_copy(const duet_Message *m);  /* NULL: no memory */
/* Push a userdata owning `n` message slots (all NULL), freed by its __gc
** unless taken out first: keeps messages safe while later steps may raise. */
duet_Message **duet_new_box(lua_State *L, int n);
int duet_transfer_open(lua_State *L);
int duet_portable_open(lua_State *L);     /* duet.encode, duet.decode */

/* ---------------------------------------------------------------- value.c */

/* One transferable value in a fixed-size slot: nil, booleans, numbers,
** short strings and a lone duet object inline (no allocation), anything
** else as an encoded duet_Message. Used by queue.c and sharedtable.c. */
enum {
  DUET_V_NIL, DUET_V_FALSE, DUET_V_TRUE, DUET_V_INT, DUET_V_FLOAT,
  DUET_V_STR, DUET_V_OBJ, DUET_V_MSG
};
#define DUET_VALUE_SHORT 16

typedef struct duet_Value {
  union {
    lua_Integer i;
    lua_Number n;
    char s[DUET_VALUE_SHORT];             /* DUET_V_STR: len bytes */
    duet_Object *o;                       /* DUET_V_OBJ: one reference */
    duet_Message *m;                      /* DUET_V_MSG: owned */
  } u;
  unsigned char tag, len;
} duet_Value;

/* Set `v` from the value at idx (raises on untransferable values, with
** `where` naming it; nothing is held then). */
void duet_value_set(lua_State *L, int idx, const char *where, duet_Value *v);
/* Push `v` and free it (it is DUET_V_NIL afterwards, even if this raises). */
void duet_value_push(lua_State *L, duet_Value *v);
/* Copy `src` into `dst` (no Lua API; safe under a mutex); 0: no memory. */
int duet_value_copy(duet_Value *dst, const duet_Value *src);
void duet_value_free(duet_Value *v);

/* ------------------------------------------------ queue.c, sharedtable.c */

int duet_queue_open(lua_State *L);        /* Queue, LifoQueue, PriorityQueue */
int duet_sharedtable_open(lua_State *L);  /* SharedTable */

/* ----------------------------------------------------------------- pool.c */

/* A job for the OS-thread pool: run(L, job) in a worker with a fresh state
** L (NULL when none could be made); done(job) once that state is closed. */
typedef struct duet_Job {
  void (*run)(lua_State *L, struct duet_Job *job);
  void (*done)(struct duet_Job *job);
} duet_Job;
#define DUET_DEFAULT_STACK ((size_t)1 << 20)
int duet_pool_start(duet_Job *job);       /* 0, or an errno */
/* The stack size of OS threads started from now on; `set` (0: keep it)
** replaces it. Returns the size before. */
size_t duet_pool_stack(size_t set);
/* A thread state's package.path and package.cpath: set now if its package
** library is open, else kept until it opens (on first use), uncopied: the
** strings must outlive the state (a Thread's do, freed after it closes). */
void duet_set_paths(lua_State *L, const char *path, const char *cpath);
/* Push a state's package.path and package.cpath (as strings, or nil),
** without opening a package library not opened yet. */
void duet_push_paths(lua_State *L);

/* ----------------------------------------------------------------- wait.c */

/* What cancel() and Ctrl-C need of an OS thread that waits; thread.c's
** Thread holds one. The calling OS thread's is its current waiter. */
typedef struct duet_Waiter {
  atomic_int cancelled;
  pthread_mutex_t lock;                   /* guards the fields below */
  pthread_cond_t *cv;                     /* the wait it is blocked in */
  pthread_mutex_t *mu;
  lua_State *main;                        /* main coroutine, for Ctrl-C */
  lua_State *L;                           /* while running; MainThread: its
                                             state's main coroutine */
  lua_State *volatile running;            /* the coroutine it resumed */
  pthread_t tid;                          /* while L is set */
  void *owner;                            /* thread.c's Thread, or NULL */
} duet_Waiter;
/* A worker is an OS thread of pool.c that runs duet Threads: no Ctrl-C
** reaches it, so its waits sleep whole. Anything else (the process's main
** thread, a foreign one) waits in slices, looking for Ctrl-C too. */
int duet_in_worker(void);
void duet_become_worker(void);            /* for good, from its first job */
duet_Waiter *duet_waiter(void);           /* the current one, or NULL */
void duet_set_waiter(duet_Waiter *w);
/* The calling OS thread's waiter: its Thread's, or one made on first use
** for an OS thread duet did not start (raises when there is no memory). */
duet_Waiter *duet_self_waiter(lua_State *L);
/* Set the state cancel() hooks (NULL: none any more), and the caller as
** the OS thread it signals. */
void duet_waiter_attach(duet_Waiter *w, lua_State *L);
/* Cancel w's thread: wake the wait it is in, hook its running Lua; raise
** duet.cancelled at once when w is the caller's. */
void duet_cancel(lua_State *L, duet_Waiter *w);
/* Adds os_sleep (a plain sleep that Ctrl-C stops) to the module table on
** top; once per process, sets up the cancel signal (DUET_CANCEL_SIGNAL),
** raising when that variable names none duet may use. */
int duet_wait_open(lua_State *L);

/* A cancellable wait on (cond, mutex). Usage:
**   duet_wait_begin(L, &cond, &mutex);      -- mutex NOT held
**   pthread_mutex_lock(&mutex);
**   while (!ready) {
**     int r = duet_wait(L, &cond, &mutex, deadline);
**     if (r != 0) break;                    -- DUET_TIMEDOUT / DUET_CANCELLED
**   }
**   pthread_mutex_unlock(&mutex);
**   duet_wait_end(L);                       -- may raise cancelled/interrupt
** duet_wait returns 0 after any wake-up (the caller re-checks its
** condition), DUET_TIMEDOUT at the deadline, DUET_CANCELLED when the
** calling thread was cancelled (checked before it ever sleeps), or
** DUET_INTERRUPTED in the main thread when Ctrl-C arrived. */
enum { DUET_TIMEDOUT = 1, DUET_CANCELLED, DUET_INTERRUPTED };
void duet_wait_begin(lua_State *L, pthread_cond_t *c, pthread_mutex_t *m);
/* duet_wait_begin raises only on its first use in an OS thread (no memory
** for its MainThread). A caller that links a waiter on its C stack before
** it calls duet_wait_begin calls this first, so nothing raises meanwhile. */
void duet_wait_prepare(lua_State *L);
int duet_wait(lua_State *L, pthread_cond_t *c, pthread_mutex_t *m,
              double deadline);
void duet_wait_end(lua_State *L);
/* Raise the error for a non-zero, non-timeout duet_wait result. */
int duet_wait_error(lua_State *L, int r);
/* Raise duet.cancelled if the calling thread has been cancelled. */
void duet_check_cancel(lua_State *L);
/* Non-zero if the calling thread has been cancelled (and not yet told);
** no Lua API call, so it may be asked under a mutex. */
int duet_cancel_pending(void);
/* Ctrl-C: has lua.c's SIGINT handler hooked this state's main coroutine?
** duet_raise_interrupt takes that hook off (as lua.c's own hook does) and
** raises "interrupted!". */
int duet_interrupt_pending(lua_State *L);
int duet_raise_interrupt(lua_State *L);
lua_State *duet_main_coroutine(lua_State *L);
/* The same question about a main coroutine found earlier: safe under a
** mutex (duet_wait asks it there). */
int duet_interrupt_hooked(lua_State *main);
/* A thread state's `coroutine` library: resume and wrap note the coroutine
** they run, so that th:cancel() reaches a busy loop inside it. */
int duet_open_coroutine(lua_State *L);

/* --------------------------------------------------------------- thread.c */

/* The calling thread's ident (th.ident), unique in the process; the main
** thread's is made on first use. */
lua_Integer duet_self_ident(lua_State *L);
/* Start a daemon duet Thread named `name` that runs the C function `body`
** in a fresh state of its own, with `arg` as a light userdata argument
** (an executor's long-lived workers). Raises if it cannot be started. */
void duet_spawn_c(lua_State *L, const char *name, lua_CFunction body,
                  void *arg);
/* Count `delta` more (or fewer) reasons for rt.run and the main state's
** close to wait, as each running non-daemon thread is one (an executor
** with work queued or running). No Lua API call: safe under a mutex. */
void duet_keep_alive(int delta);
/* An executor's worker starts a task or its initializer (`unit`: its
** pool's count of workers in rt.run's wait, guarded by thread.c) or ends
** it (NULL): meanwhile its pool counts among the reasons to wait, so
** rt.run there does not wait for the pool it runs in. */
void duet_running_task(int *unit);
/* Report an error nobody else will see (a done callback that raised) the
** way an unjoined thread's is: duet.excepthook(current thread, err,
** traceback); traceback NULL: tostring(err). Never raises. */
void duet_report(lua_State *L, int err, const char *traceback);
int duet_thread_setup(lua_State *L);      /* eager: every state */
int duet_thread_open(lua_State *L);       /* the Thread type, spawn... */
int duet_sleep_open(lua_State *L);

/* ----------------------------------------------------------------- lock.c */

/* How with() and guard() take and give back a lock-like object. acquire
** returns 0 (taken), DUET_TIMEDOUT, or DUET_CANCELLED/DUET_INTERRUPTED
** (for duet_wait_error); timeout as from duet_opt_timeout. release raises
** when the caller may not release it. */
typedef struct duet_LockOps {
  const duet_Type *type;
  int (*acquire)(lua_State *L, duet_Object *o, double timeout);
  void (*release)(lua_State *L, duet_Object *o);
} duet_LockOps;
int duet_lock_with(lua_State *L, const duet_LockOps *ops);   /* x:with */
int duet_lock_guard(lua_State *L, const duet_LockOps *ops);  /* x:guard */
/* What Condition needs of its Lock or RLock. */
duet_Object *duet_rlock_new(lua_State *L);  /* proxy left on the stack */
duet_Object *duet_check_lock(lua_State *L, int arg);  /* Lock or RLock */
const duet_LockOps *duet_lock_ops(duet_Object *lock);
int duet_lock_locked(duet_Object *lock);               /* by anyone */
int duet_lock_owned(lua_State *L, duet_Object *lock);  /* by the caller */
long duet_lock_save(lua_State *L, duet_Object *lock);  /* release fully */
/* Take it back as saved; not cancellable, and no Lua API call. */
void duet_lock_restore(lua_State *L, duet_Object *lock, long saved);
int duet_lock_open(lua_State *L);

/* --------------------------------------------------------------- future.c */

/* A Future is made and completed by its producer (executor.c), or made by
** rt.Future() and settled by whoever holds it; any thread may wait on it.
** It carries `extra` bytes of the producer's own (zeroed), freed with it
** after free_extra(extra) when that is not NULL. SETTLING is the moment
** between a set_result claiming the future and its results being in:
** not done yet, and no longer cancellable. */
typedef struct duet_Future duet_Future;
enum { DUET_FUT_PENDING, DUET_FUT_RUNNING, DUET_FUT_SETTLING,
       DUET_FUT_FINISHED, DUET_FUT_FAILED, DUET_FUT_CANCELLED };
duet_Future *duet_future_new(lua_State *L, size_t extra,
                             void (*free_extra)(void *extra));
void *duet_future_extra(duet_Future *f);
int duet_future_state(duet_Future *f);
/* PENDING -> RUNNING: 1, or 0 when it was cancelled first. */
int duet_future_start(duet_Future *f);
/* RUNNING -> FINISHED (ok: `result` holds the results) or FAILED (`result`
** holds the error value, `traceback` its malloc'd traceback or NULL): takes
** both, wakes the waiters, then calls the done callbacks in L. */
void duet_future_finish(lua_State *L, duet_Future *f, int ok,
                        duet_Message *result, char *traceback);
/* PENDING -> CANCELLED (callbacks called in L): 1; else 0. */
int duet_future_cancel(lua_State *L, duet_Future *f);
/* Wait until done: 0, or DUET_TIMEDOUT / a duet_wait_error code. */
int duet_future_wait(lua_State *L, duet_Future *f, double deadline);
/* A done future's results pushed (their count); raises its error, or
** duet.cancelled. */
int duet_future_push_result(lua_State *L, duet_Future *f);
int duet_future_open(lua_State *L);

/* --------------------------------------------------------------- taskfn.c */

/* A task's function on its way to an executor's worker: its code, made
** once per function value and loaded once per worker state, apart from its
** upvalue values, copied for each run; or the whole function when that
** split would lose something (see taskfn.c). */
typedef struct duet_FnCode duet_FnCode;
typedef struct duet_TaskFn {
  duet_FnCode *code;                      /* the split form, or */
  duet_Message *whole;                    /* the whole function */
  duet_Message *ups;                      /* upvalue values: split form */
  int self_up;                            /* the upvalue holding fn itself */
  int env_up;                             /* _ENV's, which _done leaves */
  int set;                                /* upvalues set by _push */
} duet_TaskFn;
/* Fill `tf` (zeroed) for the function at fn. Raises as duet_encode does;
** whatever it made is then freed by duet_taskfn_clear. */
void duet_taskfn_make(lua_State *L, int fn, duet_TaskFn *tf);
void duet_taskfn_clear(duet_TaskFn *tf);
/* A worker state's loaded code, keyed by its bytes. */
typedef struct duet_FnCache duet_FnCache;
duet_FnCache *duet_fncache_new(void);     /* NULL: no memory */
void duet_fncache_free(lua_State *L, duet_FnCache *c);
/* Push the function of `tf` ready to run: its code found in `c` (or loaded
** and kept there; `c` may be NULL), its upvalues set. Uses up tf's
** messages. After the run, duet_taskfn_done(L, idx, tf) with the function
** at idx lets go of the upvalue values a cached closure holds. */
void duet_taskfn_push(lua_State *L, duet_FnCache *c, duet_TaskFn *tf);
void duet_taskfn_done(lua_State *L, int idx, duet_TaskFn *tf);

/* ------------------------------------------------ executor.c, tokenbucket.c */

int duet_executor_open(lua_State *L);
/* execopts.c: check the options table at 1 of rt.Executor{...} (nil: the
** defaults). Returns the box it pushed at slot 2: the initializer and its
** initargs, encoded (or NULL); *prefix (NULL: none) lives in slot 5. */
duet_Message **duet_executor_options(lua_State *L, lua_Integer *max,
                                     const char **prefix);
int duet_tokenbucket_open(lua_State *L);

/* ----------------------------------------------------------- threadsrt.c */

int duet_threadsrt_open(lua_State *L);    /* core.threads_runtime */
int duet_threads_module(lua_State *L);    /* duet.threads' opener */

/* ------------------------------------------------------------- duetmod.c */

int duet_duetmod_open(lua_State *L);      /* core.duet_module */
int duet_duet_module(lua_State *L);       /* duet's opener */
/* duet's modules built in C (duet, duet.core, duet.threads): the opener of
** the one named, or NULL; and all of them put in the preload table on the
** stack top. A thread's state opens them without package. */
lua_CFunction duet_builtin_opener(const char *name);
void duet_preload_builtins(lua_State *L);

/* ------------------------------------------------------ poll.c, socket.c */

/* Block the calling OS thread until `fd` is ready for `events` (POLLIN,
** POLLOUT) or `deadline` (duet_now() time; HUGE_VAL: none): 1 ready, 0
** timed out. Raises duet.cancelled when the calling thread is cancelled,
** and "interrupted!" on Ctrl-C in the main thread. */
int duet_poll_fd(lua_State *L, int fd, int events, double deadline);
int duet_poll_open(lua_State *L);
int duet_socket_open(lua_State *L);

/* ------------------------------------------------------------ process.c */

int duet_process_open(lua_State *L);      /* child interpreters */

/* One opener per object family (semaphore.c, condition.c, ...). */
int duet_semaphore_open(lua_State *L);
int duet_condition_open(lua_State *L);
int duet_event_open(lua_State *L);
int duet_barrier_open(lua_State *L);

#pragma GCC visibility pop

#endif
