/*
** wait.c — the one cancellable, interruptible wait: what a worker is, the
** wait a thread is blocked in, cancel() reaching it, and Ctrl-C.
**
** Each OS thread that waits has a duet_Waiter (thread.c's Thread holds
** it). Cancellation: a waiter records the wait it is blocked in (cond +
** mutex, under its own lock), so cancel() wakes exactly that wait; a busy
** Lua loop is stopped by a count hook installed only when cancelling.
** Ctrl-C: lua.c's SIGINT handler hooks the main coroutine of the main
** state, whose waits sleep in short slices to notice it.
*/
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lualib.h"

#include "duet.h"

static _Thread_local duet_Waiter *current;  /* NULL until first needed */
static _Thread_local int in_worker;       /* a duet OS thread? */

int duet_in_worker(void) {
  return in_worker;
}

void duet_become_worker(void) {
  in_worker = 1;
}

duet_Waiter *duet_waiter(void) {
  return current;
}

void duet_set_waiter(duet_Waiter *w) {
  current = w;
}

duet_Waiter *duet_self_waiter(lua_State *L) {
  duet_Waiter *w = current;
  if (w == NULL) {                        /* an OS thread duet did not start */
    w = (duet_Waiter *)calloc(1, sizeof *w);
    if (w == NULL) luaL_error(L, "not enough memory");
    pthread_mutex_init(&w->lock, NULL);
    if (!in_worker)                       /* so that cancel reaches it */
      duet_waiter_attach(w, duet_main_coroutine(L));
    current = w;                          /* kept for the OS thread's life */
  }
  return w;
}

void duet_waiter_attach(duet_Waiter *w, lua_State *L) {
  pthread_mutex_lock(&w->lock);
  w->L = L;
  if (L) w->tid = pthread_self();
  pthread_mutex_unlock(&w->lock);
}

/* ------------------------------------------------------------- Ctrl-C */

lua_State *duet_main_coroutine(lua_State *L) {
  lua_State *m;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  m = lua_tothread(L, -1);
  lua_pop(L, 1);
  return m;
}

/* lua.c's handler (laction) hooks the main coroutine with every mask and a
** count of 1, a mark no debugger or coverage hook is likely to share. */
#define INTERRUPT_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE \
                        | LUA_MASKCOUNT)

/* Three plain reads of main's hook fields: no stack, no allocation, no
** error, so waits may ask it with their mutex held. */
int duet_interrupt_hooked(lua_State *main) {
  return lua_gethook(main) != NULL && lua_gethookmask(main) == INTERRUPT_MASK
         && lua_gethookcount(main) == 1;
}

int duet_interrupt_pending(lua_State *L) {
  return duet_interrupt_hooked(duet_main_coroutine(L));
}

int duet_raise_interrupt(lua_State *L) {
  lua_sethook(duet_main_coroutine(L), NULL, 0, 0);
  lua_pushliteral(L, "interrupted!");     /* as lua.c's hook says it */
  return lua_error(L);
}

/* ------------------------------------------------------ cancellable waits */

void duet_wait_prepare(lua_State *L) {
  (void)duet_self_waiter(L);
}

void duet_wait_begin(lua_State *L, pthread_cond_t *c, pthread_mutex_t *m) {
  duet_Waiter *w = duet_self_waiter(L);
  /* found here, before the caller locks m: duet_wait runs under m */
  w->main = in_worker ? NULL : duet_main_coroutine(L);
  pthread_mutex_lock(&w->lock);
  w->cv = c;
  w->mu = m;
  pthread_mutex_unlock(&w->lock);
}

void duet_wait_end(lua_State *L) {
  duet_Waiter *w = current;
  (void)L;
  pthread_mutex_lock(&w->lock);
  w->cv = NULL;
  w->mu = NULL;
  pthread_mutex_unlock(&w->lock);
}

/* The main thread's waits sleep in slices this long to notice Ctrl-C. */
#define INTERRUPT_SLICE 0.05

int duet_wait(lua_State *L, pthread_cond_t *c, pthread_mutex_t *m,
              double deadline) {
  duet_Waiter *w = current;
  struct timespec ts;
  double until = deadline;
  int r;
  (void)L;
  if (atomic_load_explicit(&w->cancelled, memory_order_acquire))
    return DUET_CANCELLED;
  if (w->main) {                          /* the main thread */
    if (duet_interrupt_hooked(w->main)) return DUET_INTERRUPTED;
    if (until - duet_now() > INTERRUPT_SLICE)
      until = duet_now() + INTERRUPT_SLICE;
  }
  if (until == HUGE_VAL) {
    pthread_cond_wait(c, m);
    return 0;
  }
  duet_timespec(until, &ts);
  r = pthread_cond_timedwait(c, m, &ts);
  if (r == ETIMEDOUT && until == deadline) return DUET_TIMEDOUT;
  return 0;
}

static void cancel_hook(lua_State *L, lua_Debug *ar);

int duet_wait_error(lua_State *L, int r) {
  duet_Waiter *w = current;
  if (r == DUET_INTERRUPTED) return duet_raise_interrupt(L);
  atomic_store(&w->cancelled, 0);         /* delivered once */
  /* the cancel signal may have set the busy-loop hook too: drop it (the
  ** flag is clear first, so no new signal can set it again) */
  if (w->L && lua_gethook(w->L) == cancel_hook)
    lua_sethook(w->L, NULL, 0, 0);
  if (w->running && lua_gethook(w->running) == cancel_hook)
    lua_sethook(w->running, NULL, 0, 0);
  return duet_raise(L, DUET_ERR_CANCELLED);
}

void duet_check_cancel(lua_State *L) {
  duet_Waiter *w = current;
  if (w && atomic_load_explicit(&w->cancelled, memory_order_acquire))
    duet_wait_error(L, DUET_CANCELLED);
}

/* Has the calling thread been asked to cancel? (no Lua API: safe under a
** mutex; the caller then gives up and calls duet_wait_error) */
int duet_cancel_pending(void) {
  duet_Waiter *w = current;
  return w && atomic_load_explicit(&w->cancelled, memory_order_acquire);
}

/* ------------------------------------------------------------- cancel() */

/* Runs in the cancelled thread: raise duet.cancelled out of its Lua code.
** It takes itself off first: when a wait or another coroutine's hook has
** delivered the cancel already, it is spent and costs no more. */
static void cancel_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (current && atomic_exchange(&current->cancelled, 0))
    duet_raise(L, DUET_ERR_CANCELLED);
}

/* The cancel signal's handler runs in the cancelled thread itself, so it
** may set a hook on its own state: the asynchronous use lua_sethook is
** documented for (lua.c does the same for Ctrl-C). Setting it from the
** cancelling thread would race with the target's own call stack.
** DUET_CANCEL_SIGNAL chooses it (0: none) for programs that use
** SIGRTMIN+2 themselves; cancel_error says why a choice was refused. */
static int cancel_signal;
static const char *cancel_error;

static void on_cancel_signal(int sig) {
  duet_Waiter *w = current;
  lua_State *target;
  (void)sig;
  if (w == NULL || !atomic_load(&w->cancelled)) return;
  target = w->running ? w->running : w->L;
  if (target) lua_sethook(target, cancel_hook, LUA_MASKCOUNT, 1);
}

void duet_cancel(lua_State *L, duet_Waiter *w) {
  atomic_store_explicit(&w->cancelled, 1, memory_order_release);
  pthread_mutex_lock(&w->lock);
  if (w->mu) {                            /* blocked: wake that wait */
    pthread_mutex_lock(w->mu);
    pthread_cond_broadcast(w->cv);
    pthread_mutex_unlock(w->mu);
  }
  if (w->L && w != current && cancel_signal)  /* running Lua: stop soon */
    pthread_kill(w->tid, cancel_signal);
  pthread_mutex_unlock(&w->lock);
  if (w == current) duet_check_cancel(L);
}

/* DUET_CANCEL_SIGNAL: unset, a signal number, "SIGRTMIN+n" or "none". */
static int choose_cancel_signal(void) {
  const char *s = getenv("DUET_CANCEL_SIGNAL");
  char *end;
  long n;
  if (s == NULL || *s == '\0') return SIGRTMIN + 2;
  if (strcmp(s, "none") == 0) return 0;
  if (strncmp(s, "SIGRTMIN", 8) == 0) {
    n = s[8] == '\0' ? 0 : s[8] == '+' ? strtol(s + 9, &end, 10) : -1;
    if (s[8] == '+' && (end == s + 9 || *end != '\0')) n = -1;
    n = n < 0 || n > SIGRTMAX - SIGRTMIN ? -1 : SIGRTMIN + n;
  }
  else {
    n = strtol(s, &end, 10);
    if (end == s || *end != '\0' || n < 0 || n > SIGRTMAX) n = -1;
  }
  return (int)n;
}

static void install_cancel_signal(void) {
  struct sigaction sa;
  cancel_signal = choose_cancel_signal();
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_cancel_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (cancel_signal < 0 || (cancel_signal > 0
                            && sigaction(cancel_signal, &sa, NULL) != 0)) {
    cancel_error = "DUET_CANCEL_SIGNAL must be a signal number duet may "
                   "catch, 'SIGRTMIN+n' or 'none'";
    cancel_signal = 0;
  }
}

/* Plain OS sleep, with no cancellation: the runtimes build their own
** cancellable sleep on top (threads: a wait; coroutines: the scheduler).
** Ctrl-C still stops it: lua.c's SIGINT handler interrupts nanosleep and
** sets a hook on the main coroutine, which we look for. */
static int wait_os_sleep(lua_State *L) {
  double t = luaL_checknumber(L, 1);
  struct timespec ts;
  luaL_argcheck(L, t >= 0, 1, "duration must be a non-negative number");
  duet_timespec(t, &ts);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    if (duet_interrupt_pending(L)) return duet_raise_interrupt(L);
  return 0;
}

int duet_wait_open(lua_State *L) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, install_cancel_signal);
  if (cancel_error) return luaL_error(L, "%s", cancel_error);
  lua_pushcfunction(L, wait_os_sleep);
  lua_setfield(L, -2, "os_sleep");
  return 0;
}

/* ----------------------------------------- coroutines inside a thread */

/* Hooks are per coroutine: a cancel must hook the coroutine the thread is
** running, not only its main one. So a duet thread's state opens
** `coroutine` with a resume and a wrap that note the coroutine they run
** (w->running); the rest is lcorolib's auxresume and auxwrap as they are. */
static int resume_noted(lua_State *L, lua_State *co, int narg) {
  duet_Waiter *w = current;
  lua_State *prev = NULL;
  int status, nres;
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  if (w) {
    prev = w->running;
    w->running = co;
    if (atomic_load(&w->cancelled))       /* asked before co was noted */
      lua_sethook(co, cancel_hook, LUA_MASKCOUNT, 1);
  }
  status = lua_resume(co, L, narg, &nres);
  if (w) w->running = prev;
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);                    /* the error */
  return -1;
}

static int noted_resume(lua_State *L) {
  lua_State *co;
  int r;
  luaL_checktype(L, 1, LUA_TTHREAD);      /* lcorolib's message */
  co = lua_tothread(L, 1);
  r = resume_noted(L, co, lua_gettop(L) - 1);
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

static int noted_call(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int r = resume_noted(L, co, lua_gettop(L));
  if (r < 0) {
    int stat = lua_status(co);
    if (stat != LUA_OK && stat != LUA_YIELD) {  /* an error in co */
#if LUA_VERSION_RELEASE_NUM >= 50406
      stat = lua_closethread(co, L);
#else
      stat = lua_resetthread(co);
#endif
      lua_xmove(co, L, 1);
    }
    if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  return r;
}

static int noted_wrap(lua_State *L) {
  lua_State *co;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, noted_call, 1);
  return 1;
}

int duet_open_coroutine(lua_State *L) {
  luaopen_coroutine(L);
  lua_pushcfunction(L, noted_resume);
  lua_setfield(L, -2, "resume");
  lua_pushcfunction(L, noted_wrap);
  lua_setfield(L, -2, "wrap");
  return 1;
}
