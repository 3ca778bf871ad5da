/*
** poll.c — waiting for descriptors: the threads runtime's cancellable wait
** on one descriptor, and the coroutines scheduler's Poller (every watched
** descriptor and the next timer in one ppoll()).
**
** A duet thread blocked on a descriptor must wake when cancelled. cancel()
** sends the thread a signal while it runs (wait.c), and poll calls are never
** restarted after a signal handler; so the wait blocks signals, looks at
** the cancel flag, then lets ppoll() unblock them atomically: a cancel
** either comes before the look or interrupts the ppoll, never in between.
** Any other thread (the main one) waits in short slices, looking for a
** cancel and for Ctrl-C (lua.c's SIGINT handler sets a hook) between
** them, as duet_wait does.
*/
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "duet.h"

#define SLICE 0.05                        /* seconds: Ctrl-C latency */

/* ppoll until `until` (HUGE_VAL: no limit), with `mask` during the wait. */
static int ppoll_until(struct pollfd *p, nfds_t n, double until,
                       const sigset_t *mask) {
  struct timespec ts;
  double left;
  if (until == HUGE_VAL) return ppoll(p, n, NULL, mask);
  left = until - duet_now();              /* may be just below 0 */
  duet_timespec(left, &ts);
  return ppoll(p, n, &ts, mask);
}

/* A worker: no slices; see the comment at the top. */
static int wait_signalled(lua_State *L, struct pollfd *p, double deadline) {
  sigset_t block, old;
  sigfillset(&block);
  for (;;) {
    int r = -1, e = EINTR, cancel;
    pthread_sigmask(SIG_BLOCK, &block, &old);
    cancel = duet_cancel_pending();
    if (!cancel) {
      r = ppoll_until(p, 1, deadline, &old);
      e = errno;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r > 0) return 1;
    if (r == 0) return 0;
    if (cancel || e == EINTR) {
      duet_check_cancel(L);               /* raises when it was a cancel */
      continue;
    }
    return luaL_error(L, "poll: %s", strerror(e));
  }
}

/* Any thread but a worker: the main one, which Ctrl-C reaches. */
static int wait_sliced(lua_State *L, struct pollfd *p, double deadline) {
  for (;;) {
    double until = duet_now() + SLICE;
    int r;
    duet_check_cancel(L);
    if (duet_interrupt_pending(L)) return duet_raise_interrupt(L);
    if (until >= deadline) until = deadline;
    r = ppoll_until(p, 1, until, NULL);
    if (r > 0) return 1;
    if (r == 0 && until == deadline) return 0;
    if (r < 0 && errno != EINTR)
      return luaL_error(L, "poll: %s", strerror(errno));
  }
}

int duet_poll_fd(lua_State *L, int fd, int events, double deadline) {
  struct pollfd p;
  p.fd = fd;
  p.events = (short)events;
  p.revents = 0;
  if (deadline <= duet_now()) {           /* a zero timeout: just look */
    duet_check_cancel(L);
    return poll(&p, 1, 0) > 0;
  }
  return duet_in_worker() ? wait_signalled(L, &p, deadline)
                          : wait_sliced(L, &p, deadline);
}

/* ----------------------------------------- wait_readable / wait_writable */

/* The descriptor of the value at `arg`: an integer (a float with one, as
** LuaSocket's getfd gives), or anything with a getfd() method. Sets
** *buffered when it has input read ahead (dirty(): duet and LuaSocket
** sockets), which a wait for readability must not miss. */
static int check_descriptor(lua_State *L, int arg, int *buffered) {
  lua_Integer fd;
  *buffered = 0;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    int isint;
    fd = lua_tointegerx(L, arg, &isint);
    luaL_argcheck(L, isint && fd >= 0 && fd <= 0x7fffffff, arg,
                  "invalid descriptor");
    return (int)fd;
  }
  if (lua_type(L, arg) == LUA_TUSERDATA
      && luaL_getmetafield(L, arg, "__index") != LUA_TNIL)
    lua_pop(L, 1);                        /* indexing it will not raise */
  else if (!lua_istable(L, arg))
    luaL_typeerror(L, arg, "descriptor or object with getfd");
  if (lua_getfield(L, arg, "getfd") != LUA_TFUNCTION)
    luaL_typeerror(L, arg, "descriptor or object with getfd");
  lua_pushvalue(L, arg);
  lua_call(L, 1, 1);
  {                                       /* nil or 3.5: no descriptor */
    int isint;
    fd = lua_tointegerx(L, -1, &isint);
    lua_pop(L, 1);
    luaL_argcheck(L, isint && fd >= 0 && fd <= 0x7fffffff, arg,
                  "closed or invalid descriptor");
  }
  if (lua_getfield(L, arg, "dirty") == LUA_TFUNCTION) {
    lua_pushvalue(L, arg);
    lua_call(L, 1, 1);
    *buffered = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return (int)fd;
}

static int wait_descriptor(lua_State *L, int events) {
  int buffered, fd = check_descriptor(L, 1, &buffered);
  double timeout = duet_opt_timeout(L, 2);
  if (buffered && events == POLLIN) lua_pushboolean(L, 1);
  else lua_pushboolean(L, duet_poll_fd(L, fd, events,
                                       duet_deadline(timeout)));
  return 1;
}

static int poll_wait_readable(lua_State *L) {
  return wait_descriptor(L, POLLIN);
}

static int poll_wait_writable(lua_State *L) {
  return wait_descriptor(L, POLLOUT);
}

/* fd_ready(fd, ev) -> is it ready now for ev (1: read, 2: write)? */
static int poll_fd_ready(lua_State *L) {
  struct pollfd p;
  p.fd = (int)luaL_checkinteger(L, 1);
  p.events = luaL_checkinteger(L, 2) == 1 ? POLLIN : POLLOUT;
  p.revents = 0;
  lua_pushboolean(L, poll(&p, 1, 0) > 0);
  return 1;
}

/* ------------------------------------------------------------- Poller */

/* The coroutines scheduler's set of watched descriptors, kept between
** waits so that watching one costs no system call: a pollfd array, and
** an index from descriptor to slot. Interest is one-shot: a descriptor
** reported ready for reading stops being watched for reading (the tasks
** woken watch it again if they must wait again). Events in Lua: 1 read,
** 2 write. */
typedef struct Poller {
  struct pollfd *fds;
  int n, cap;
  int *slot;                              /* fd -> index + 1; 0: none */
  int nslot;
} Poller;

#define POLLER "duet.Poller"

static Poller *check_poller(lua_State *L) {
  return (Poller *)luaL_checkudata(L, 1, POLLER);
}

static short to_poll(lua_Integer ev) {
  return (short)(((ev & 1) ? POLLIN : 0) | ((ev & 2) ? POLLOUT : 0));
}

static int poller_new(lua_State *L) {
  Poller *p = (Poller *)lua_newuserdatauv(L, sizeof(Poller), 0);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, POLLER);
  return 1;
}

static int poller_gc(lua_State *L) {
  Poller *p = (Poller *)lua_touserdata(L, 1);
  free(p->fds);
  free(p->slot);
  memset(p, 0, sizeof *p);
  return 0;
}

static void remove_at(Poller *p, int i) {
  int last = --p->n;
  p->slot[p->fds[i].fd] = 0;
  if (i != last) {
    p->fds[i] = p->fds[last];
    p->slot[p->fds[i].fd] = i + 1;
  }
}

/* p:add(fd, ev): watch fd for ev too. */
static int poller_add(lua_State *L) {
  Poller *p = check_poller(L);
  lua_Integer fd = luaL_checkinteger(L, 2);
  short ev = to_poll(luaL_checkinteger(L, 3));
  luaL_argcheck(L, fd >= 0 && fd < 0x7fffffff, 2, "invalid descriptor");
  if (fd >= p->nslot) {
    int n = p->nslot ? p->nslot : 64, *s;
    while (n <= fd) n *= 2;
    s = (int *)realloc(p->slot, (size_t)n * sizeof *s);
    if (s == NULL) return luaL_error(L, "not enough memory");
    memset(s + p->nslot, 0, (size_t)(n - p->nslot) * sizeof *s);
    p->slot = s;
    p->nslot = n;
  }
  if (p->slot[fd]) {
    p->fds[p->slot[fd] - 1].events |= ev;
    return 0;
  }
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 64;
    struct pollfd *f = (struct pollfd *)realloc(p->fds,
                                                (size_t)cap * sizeof *f);
    if (f == NULL) return luaL_error(L, "not enough memory");
    p->fds = f;
    p->cap = cap;
  }
  p->fds[p->n].fd = (int)fd;
  p->fds[p->n].events = ev;
  p->fds[p->n].revents = 0;
  p->slot[fd] = ++p->n;
  return 0;
}

/* p:del(fd, ev): stop watching fd for ev (nothing if it was not). */
static int poller_del(lua_State *L) {
  Poller *p = check_poller(L);
  lua_Integer fd = luaL_checkinteger(L, 2);
  short ev = to_poll(luaL_checkinteger(L, 3));
  if (fd >= 0 && fd < p->nslot && p->slot[fd]) {
    int i = p->slot[fd] - 1;
    p->fds[i].events &= (short)~ev;
    if (p->fds[i].events == 0) remove_at(p, i);
  }
  return 0;
}

/* p:wait(timeout, out) -> n: wait until a watched descriptor is ready or
** `timeout` seconds pass (negative: no limit; 0: just look); out[2k-1] =
** fd, out[2k] = events ready (1 read, 2 write, 3 both: errors and hang-ups
** wake every kind of waiter). Raises "interrupted!" on Ctrl-C. */
static int poller_wait(lua_State *L) {
  Poller *p = check_poller(L);
  double timeout = luaL_checknumber(L, 2);
  double deadline = timeout < 0 ? HUGE_VAL : duet_now() + timeout;
  int r, i, k = 0;
  luaL_checktype(L, 3, LUA_TTABLE);
  if (timeout == 0) r = poll(p->fds, (nfds_t)p->n, 0);
  else for (;;) {
    double until = duet_now() + SLICE;
    if (until >= deadline) until = deadline;
    r = ppoll_until(p->fds, (nfds_t)p->n, until, NULL);
    if (r > 0) break;
    if (r < 0 && errno != EINTR)
      return luaL_error(L, "poll: %s", strerror(errno));
    if (duet_interrupt_pending(L)) return duet_raise_interrupt(L);
    if (r == 0 && until == deadline) break;
  }
  /* backwards, so that a slot filled by remove_at was seen already */
  for (i = p->n - 1; i >= 0 && r > 0; i--) {
    struct pollfd *f = &p->fds[i];
    short got = f->revents, fired;
    int ev;
    if (got == 0) continue;
    r--;
    f->revents = 0;
    if (got & (POLLERR | POLLHUP | POLLNVAL)) fired = f->events;
    else fired = (short)(got & f->events);
    ev = ((fired & POLLIN) ? 1 : 0) | ((fired & POLLOUT) ? 2 : 0);
    lua_pushinteger(L, f->fd);
    lua_rawseti(L, 3, ++k);
    lua_pushinteger(L, ev);
    lua_rawseti(L, 3, ++k);
    f->events &= (short)~fired;
    if (f->events == 0 || (got & POLLNVAL)) remove_at(p, i);
  }
  lua_pushinteger(L, k / 2);
  return 1;
}

/* p:count() -> how many descriptors are watched */
static int poller_count(lua_State *L) {
  lua_pushinteger(L, check_poller(L)->n);
  return 1;
}

/* p:clear(): watch nothing */
static int poller_clear(lua_State *L) {
  Poller *p = check_poller(L);
  while (p->n > 0) remove_at(p, p->n - 1);
  return 0;
}

static const luaL_Reg poller_methods[] = {
  {"add", poller_add},
  {"del", poller_del},
  {"wait", poller_wait},
  {"count", poller_count},
  {"clear", poller_clear},
  {NULL, NULL}
};

static const luaL_Reg poll_funcs[] = {
  {"wait_readable", poll_wait_readable},
  {"wait_writable", poll_wait_writable},
  {"fd_ready", poll_fd_ready},
  {"poller", poller_new},
  {NULL, NULL}
};

int duet_poll_open(lua_State *L) {
  if (luaL_newmetatable(L, POLLER)) {
    luaL_newlib(L, poller_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, poller_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, poll_funcs, 0);
  return 0;
}
