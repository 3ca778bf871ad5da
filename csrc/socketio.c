/*
** socketio.c — duet.Socket's I/O methods: receive, send, accept, connect,
** bind and listen, and what a socket's methods check: its owner, its kind,
** LuaSocket's words for errors. Each I/O method is a loop of non-blocking
** attempts that waits (wait_fd) when one would block; a coroutines
** socket's method resumes in its continuation. socket.c makes, moves and
** closes sockets and checks self for these methods; this is the part that
** touches the descriptor and the read-ahead buffer.
*/
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socket.h"

enum { IO_DONE, IO_WAIT, IO_CLOSED, IO_ERROR, IO_TIMEOUT };

#define SMALL_READ 4096                   /* below this room, read via stack */
#define KEEP_BUF 65536                    /* an empty buffer above: freed */

/* ------------------------------------------------ ownership and kinds */

const char *const socket_kinds[] = {"master", "client", "server", NULL};

/* Each Lua state's id for ownership, made on first use: never reused, so
** a socket given back to a state that has closed is owned by nobody. */
static const char id_key = 'o';
static atomic_llong next_id = 1;

long long socket_state_id(lua_State *L) {
  long long id;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &id_key) == LUA_TNUMBER) {
    id = (long long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return id;
  }
  lua_pop(L, 1);
  id = atomic_fetch_add(&next_id, 1);
  lua_pushinteger(L, (lua_Integer)id);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &id_key);
  return id;
}

/* Usable here: owned by this state and not closed. */
int socket_usable(lua_State *L, Socket *s) {
  return atomic_load_explicit(&s->owner, memory_order_acquire)
         == socket_state_id(L)
         && !atomic_load_explicit(&s->closed, memory_order_relaxed);
}

void socket_check_kind(lua_State *L, Socket *s, int want) {
  int k = KIND(s);
  if (k != want)
    luaL_argerror(L, 1, lua_pushfstring(L, "tcp{%s} expected, got tcp{%s}",
                                        socket_kinds[want], socket_kinds[k]));
}

void socket_init(Socket *s, long long owner, int fd, int kind, int family,
                 int coro) {
  atomic_init(&s->owner, owner);
  atomic_init(&s->sender, 0);
  atomic_init(&s->fd, fd);
  atomic_init(&s->kind, kind);
  atomic_init(&s->closed, 0);
  s->family = family;
  s->coro = coro;
  s->block = s->total = -1;
}

/* The coroutines runtime's hooks: registry[&socket_hooks_key] = {wait,
** closing}. */
const char socket_hooks_key = 'h';

/* For sockopt.c: the descriptor of s, checked as the other methods check
** it; -1 when it reads as closed here. */
int socket_fd(lua_State *L, Socket *s, int want) {
  if (!socket_usable(L, s)) return -1;
  if (want >= 0) socket_check_kind(L, s, want);
  return FD(s);
}

/* ------------------------------------------------------------- helpers */

/* LuaSocket's words for the errors scripts test for. */
static void push_error(lua_State *L, int err) {
  char buf[128];
  switch (err) {
    case EADDRINUSE: lua_pushliteral(L, "address already in use"); return;
    case EISCONN: lua_pushliteral(L, "already connected"); return;
    case EACCES: lua_pushliteral(L, "permission denied"); return;
    case ECONNREFUSED: lua_pushliteral(L, "connection refused"); return;
    case ECONNABORTED: case ECONNRESET: case EPIPE:
      lua_pushliteral(L, "closed");
      return;
    case ETIMEDOUT: lua_pushliteral(L, "timeout"); return;
    default: lua_pushstring(L, strerror_r(err, buf, sizeof buf)); return;
  }
}

static int fail(lua_State *L, int err) {
  lua_pushnil(L);
  push_error(L, err);
  return 2;
}

static int fail_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

/* The absolute deadline of an operation starting now. */
static double op_deadline(Socket *s) {
  double now, d = HUGE_VAL;
  if (s->block < 0 && s->total < 0) return d;
  now = duet_now();
  if (s->block >= 0) d = now + s->block;
  if (s->total >= 0 && now + s->total < d) d = now + s->total;
  return d;
}

static int ready_now(int fd, short events) {
  struct pollfd p;
  p.fd = fd;
  p.events = events;
  p.revents = 0;
  return poll(&p, 1, 0) > 0;
}

/* Wait until fd is ready for `ev` (1 read, 2 write) or the deadline at
** stack index `dl`: 1 ready, 0 timed out. A coroutines socket suspends its
** task through the scheduler, resuming in continuation `k` (which gets the
** wait's answer on the stack top) when the wait yields. */
static int wait_fd(lua_State *L, Socket *s, int ev, int dl, lua_KFunction k) {
  double deadline = lua_tonumber(L, dl);
  int ready;
  if (deadline <= duet_now()) return 0;
  if (s->coro) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &socket_hooks_key) != LUA_TTABLE)
      return luaL_error(L, "duet: no coroutines scheduler in this state");
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
    lua_pushinteger(L, FD(s));
    lua_pushinteger(L, ev);
    if (deadline == HUGE_VAL) lua_pushnil(L);
    else lua_pushnumber(L, deadline);
    lua_callk(L, 3, 1, (lua_KContext)s, k);
    ready = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return ready;
  }
  return duet_poll_fd(L, FD(s), ev == 1 ? POLLIN : POLLOUT, deadline);
}

/* ------------------------------------------------------------ receive */

/* Read what has arrived into the buffer: IO_DONE (got some), IO_WAIT,
** IO_CLOSED or IO_ERROR (*err). Short of room, it reads on the stack and
** keeps only what came: an idle connection holds a few bytes, not 8 KB. */
static int fill(Socket *s, int *err) {
  char tmp[8192];
  for (;;) {
    ssize_t n;
    int direct;
    if (s->first > 0 && s->cap - s->last < SMALL_READ) {
      memmove(s->buf, s->buf + s->first, s->last - s->first);
      s->last -= s->first;
      s->first = 0;
    }
    direct = s->cap - s->last >= SMALL_READ;
    n = recv(FD(s), direct ? s->buf + s->last : tmp,
             direct ? s->cap - s->last : sizeof tmp, 0);
    if (n > 0) {
      s->drained = (size_t)n < (direct ? s->cap - s->last : sizeof tmp);
      if (!direct) {
        size_t want = s->last + (size_t)n, cap = s->cap;
        if (want > cap) {
          char *b;
          cap = cap * 2 > want ? cap * 2 : (want + 63) & ~(size_t)63;
          b = (char *)realloc(s->buf, cap);
          if (b == NULL) {                /* drops what was just read */
            *err = ENOMEM;
            return IO_ERROR;
          }
          s->buf = b;
          s->cap = cap;
        }
        memcpy(s->buf + s->last, tmp, (size_t)n);
      }
      s->last += (size_t)n;
      return IO_DONE;
    }
    if (n == 0) return IO_CLOSED;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->drained = 1;
      return IO_WAIT;
    }
    if (errno == ECONNRESET || errno == ECONNABORTED || errno == EPIPE)
      return IO_CLOSED;
    *err = errno;
    return IO_ERROR;
  }
}

static void consume(Socket *s, size_t n) {
  s->first += n;
  s->scanned = 0;
  if (s->first >= s->last) {
    s->first = s->last = 0;
    if (s->cap > KEEP_BUF) {
      free(s->buf);
      s->buf = NULL;
      s->cap = 0;
    }
  }
}

/* Patterns, as stored at stack index 2: a byte count (>= 0), or these. */
#define PAT_LINE (-1)
#define PAT_ALL (-2)

/* Read until the pattern is complete (IO_DONE; *pos: the \n of a line) or
** it cannot be now. With `lazy`, a descriptor that the last read emptied
** is not read again before a wait: in a request-reply exchange the answer
** is seldom there yet, and a thread's wait (ppoll, then the read) costs no
** more than that failed read. (A task's wait costs a pass of the scheduler,
** more than the read: coroutines sockets always read first.) */
static int attempt_receive(Socket *s, lua_Integer pat, size_t *pos,
                           int *err, int lazy) {
  for (;;) {
    size_t avail = s->last - s->first;
    int r;
    if (pat == PAT_LINE) {
      if (avail > s->scanned) {
        const char *from = s->buf + s->first + s->scanned;
        const char *nl = (const char *)memchr(from, '\n',
                                              avail - s->scanned);
        if (nl) {
          *pos = (size_t)(nl - (s->buf + s->first));
          return IO_DONE;
        }
        s->scanned = avail;
      }
    }
    else if (pat >= 0 && avail >= (size_t)pat && (pat > 0 || avail > 0))
      return IO_DONE;
    if (lazy && s->drained) return IO_WAIT;
    if ((r = fill(s, err)) != IO_DONE) return r;
  }
}

/* Push prefix .. the n bytes at p (without any \r when strip is set). */
static void push_data(lua_State *L, const char *p, size_t n, int strip) {
  size_t plen;
  const char *prefix = lua_tolstring(L, 3, &plen);
  luaL_Buffer b;
  if (plen == 0 && !(strip && n > 0 && memchr(p, '\r', n))) {
    lua_pushlstring(L, p, n);
    return;
  }
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, prefix, plen);
  while (n > 0) {
    const char *cr = strip ? (const char *)memchr(p, '\r', n) : NULL;
    size_t k = cr ? (size_t)(cr - p) : n;
    luaL_addlstring(&b, p, k);
    if (cr) k++;
    p += k;
    n -= k;
  }
  luaL_pushresult(&b);
}

/* The receive's results for outcome r (IO_DONE, with pos for a line). */
static int receive_result(lua_State *L, Socket *s, lua_Integer pat, int r,
                          size_t pos, int err) {
  const char *data = s->buf ? s->buf + s->first : "";
  size_t avail = s->last - s->first;
  if (r == IO_DONE) {
    size_t n = pat == PAT_LINE ? pos : (size_t)pat;
    push_data(L, data, n, pat == PAT_LINE);
    consume(s, pat == PAT_LINE ? pos + 1 : n);
    lua_pushnil(L);
    lua_pushnil(L);
    return 3;
  }
  if (pat == PAT_ALL && r == IO_CLOSED && avail > 0) {  /* the whole rest */
    push_data(L, data, avail, 0);
    consume(s, avail);
    lua_pushnil(L);
    lua_pushnil(L);
    return 3;
  }
  lua_pushnil(L);
  if (r == IO_TIMEOUT) lua_pushliteral(L, "timeout");
  else if (r == IO_CLOSED) lua_pushliteral(L, "closed");
  else push_error(L, err);
  push_data(L, data, avail, pat == PAT_LINE);  /* the partial result */
  consume(s, avail);
  return 3;
}

/* Stack: self, pattern (as above), prefix (a string), deadline. */
static int receive_k(lua_State *L, int status, lua_KContext ctx) {
  Socket *s = (Socket *)ctx;
  lua_Integer pat = lua_tointeger(L, 2);
  int timedout = status == LUA_YIELD && !lua_toboolean(L, -1);
  if (status == LUA_YIELD && !timedout) s->drained = 0;  /* ready */
  lua_settop(L, 4);
  for (;;) {
    size_t pos = 0;
    int err = 0, r;
    if (!socket_usable(L, s)) {           /* closed while it waited */
      lua_pushnil(L);
      lua_pushliteral(L, "closed");
      lua_pushvalue(L, 3);
      return 3;
    }
    if (timedout) r = IO_TIMEOUT;
    else {
      double deadline = lua_tonumber(L, 4);
      r = attempt_receive(s, pat, &pos, &err, !s->coro
                          && (deadline == HUGE_VAL || deadline > duet_now()));
    }
    if (r != IO_WAIT) return receive_result(L, s, pat, r, pos, err);
    timedout = !wait_fd(L, s, 1, 4, receive_k);
    s->drained = 0;                       /* ready (the same on a yield) */
  }
}

/* receive([pattern [, prefix]]) */
int io_receive(lua_State *L, Socket *s) {
  size_t plen;
  lua_Integer pat;
  luaL_optlstring(L, 3, "", &plen);
  if (lua_isnumber(L, 2)) {              /* "10" too, as LuaSocket */
    double n = lua_tonumber(L, 2);
    luaL_argcheck(L, n >= 0 && n < 9007199254740992.0, 2,
                  "invalid receive pattern");
    if (plen > 0 && (size_t)n <= plen) {  /* the prefix is enough */
      lua_settop(L, 3);
      lua_pushnil(L);
      lua_pushnil(L);
      return 3;
    }
    pat = (lua_Integer)((size_t)n - plen);
  }
  else {
    const char *p = luaL_optstring(L, 2, "*l");
    if (*p == '*') p++;
    if (*p == 'l') pat = PAT_LINE;
    else if (*p == 'a') pat = PAT_ALL;
    else return luaL_argerror(L, 2, "invalid receive pattern");
  }
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) {
    lua_pushliteral(L, "");
    lua_replace(L, 3);
  }
  if (!socket_usable(L, s)) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushvalue(L, 3);
    return 3;
  }
  socket_check_kind(L, s, CLIENT);
  lua_pushinteger(L, pat);
  lua_replace(L, 2);
  lua_pushnumber(L, op_deadline(s));
  return receive_k(L, LUA_OK, (lua_KContext)s);
}

/* --------------------------------------------------------------- send */

/* Stack: self, data, first index, last index, deadline, bytes sent. */
static int send_k(lua_State *L, int status, lua_KContext ctx) {
  Socket *s = (Socket *)ctx;
  size_t size;
  const char *data = lua_tolstring(L, 2, &size);
  lua_Integer start = lua_tointeger(L, 3), end = lua_tointeger(L, 4);
  lua_Integer sent = lua_tointeger(L, 6);
  int timedout = status == LUA_YIELD && !lua_toboolean(L, -1), err = 0;
  lua_settop(L, 6);
  while (start + sent <= end) {
    ssize_t n;
    if (!socket_usable(L, s)) {
      err = EPIPE;
      break;
    }
    if (timedout) {
      err = ETIMEDOUT;
      break;
    }
    n = send(FD(s), data + start - 1 + sent, (size_t)(end - start + 1 - sent),
             MSG_NOSIGNAL);
    if (n >= 0) {
      sent += n;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      err = errno;
      break;
    }
    lua_pushinteger(L, sent);             /* kept across a yield */
    lua_replace(L, 6);
    timedout = !wait_fd(L, s, 2, 5, send_k);
  }
  if (err) {
    lua_pushnil(L);
    push_error(L, err);
    lua_pushinteger(L, start - 1 + sent);
    return 3;
  }
  lua_pushinteger(L, start - 1 + sent);
  lua_pushnil(L);
  lua_pushnil(L);
  return 3;
}

/* An index argument, truncated and kept in a range a long holds. */
static long opt_index(lua_State *L, int arg, long def) {
  double d = luaL_optnumber(L, arg, (double)def);
  if (!(d > -1e15)) d = -1e15;            /* NaN too */
  if (d > 1e15) d = 1e15;
  return (long)d;
}

/* send(data [, i [, j]]) -> last index sent | nil, err, last index sent */
int io_send(lua_State *L, Socket *s) {

  size_t size;
  const char *data = luaL_checklstring(L, 2, &size);
  /* LuaSocket truncates the indices, and reads them the way string.sub
  ** does */
  long start = opt_index(L, 3, 1), end = opt_index(L, 4, -1);
  (void)data;
  if (start < 0) start = (long)size + start + 1;
  if (end < 0) end = (long)size + end + 1;
  if (start < 1) start = 1;
  if (end > (long)size) end = (long)size;
  lua_settop(L, 2);
  lua_pushinteger(L, start);
  lua_pushinteger(L, end);
  if (!socket_usable(L, s)) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushinteger(L, start - 1);
    return 3;
  }
  socket_check_kind(L, s, CLIENT);
  lua_pushnumber(L, op_deadline(s));
  lua_pushinteger(L, 0);
  return send_k(L, LUA_OK, (lua_KContext)s);
}

/* ------------------------------------------------------ accept, connect */

/* Stack: self, deadline, the new socket (closed until accepted). */
static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  Socket *s = (Socket *)ctx;
  int timedout = status == LUA_YIELD && !lua_toboolean(L, -1);
  lua_settop(L, 3);
  for (;;) {
    int fd;
    if (!socket_usable(L, s)) return fail_closed(L);
    if (timedout) return fail(L, ETIMEDOUT);
    fd = accept4(FD(s), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      Socket *c = (Socket *)duet_to_object(L, 3);
      atomic_store(&c->fd, fd);
      c->family = s->family;
      return 1;
    }
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail(L, errno);
    timedout = !wait_fd(L, s, 1, 2, accept_k);
  }
}

/* accept() -> a connected duet socket | nil, err */
int io_accept(lua_State *L, Socket *s) {
  Socket *c;
  lua_settop(L, 1);
  if (!socket_usable(L, s)) return fail_closed(L);
  socket_check_kind(L, s, SERVER);
  lua_pushnumber(L, op_deadline(s));
  /* made first, so that no accepted descriptor can leak on a memory error */
  c = (Socket *)duet_new_object(L, s->base.type, sizeof(Socket));
  socket_init(c, socket_state_id(L), -1, CLIENT, s->family, s->coro);
  return accept_k(L, LUA_OK, (lua_KContext)s);
}

/* The addresses for (host, port): 0, or an error pushed (nil, message). */
static int resolve(lua_State *L, Socket *s, const char *host,
                   const char *port, int passive, struct addrinfo **res) {
  struct addrinfo hints;
  int r;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = s->family;
  if (passive) {
    hints.ai_flags = AI_PASSIVE;
    if (strcmp(host, "*") == 0) host = NULL;
  }
  r = getaddrinfo(host, port, &hints, res);
  if (r == 0) return 0;
  lua_pushnil(L);
  if (r == EAI_SYSTEM) push_error(L, errno);
  else if (r == EAI_NONAME)
    lua_pushliteral(L, "host or service not provided, or not known");
  else lua_pushstring(L, gai_strerror(r));
  return 2;
}

/* A descriptor of ai's family for s (a new one if it has another). */
static int own_fd(Socket *s, const struct addrinfo *ai) {
  int fd = FD(s);
  if (fd >= 0 && s->family == ai->ai_family) return 0;
  if (fd >= 0) close(fd);
  fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  atomic_store(&s->fd, fd);
  if (fd < 0) return errno;
  s->family = ai->ai_family;
  return 0;
}

/* Stack: self, address, port, deadline; the connect is in progress. */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  Socket *s = (Socket *)ctx;
  int timedout = status == LUA_YIELD && !lua_toboolean(L, -1);
  lua_settop(L, 4);
  for (;;) {
    int err = 0;
    socklen_t len = sizeof err;
    if (!socket_usable(L, s)) return fail_closed(L);
    if (timedout) return fail(L, ETIMEDOUT);
    if (ready_now(FD(s), POLLOUT)) {      /* connected, or why not */
      if (getsockopt(FD(s), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
      if (err != 0) return fail(L, err);
      lua_pushinteger(L, 1);
      return 1;
    }
    timedout = !wait_fd(L, s, 2, 4, connect_k);
  }
}

/* connect(address, port) -> 1 | nil, err */
int io_connect(lua_State *L, Socket *s) {

  const char *host = luaL_checkstring(L, 2);
  const char *port = luaL_checkstring(L, 3);
  struct addrinfo *res, *ai;
  int err = 0, inprogress = 0;
  lua_settop(L, 3);
  if (!socket_usable(L, s)) return fail_closed(L);
  if (resolve(L, s, host, port, 0, &res)) return 2;
  atomic_store(&s->kind, CLIENT);        /* as LuaSocket: even if it fails */
  for (ai = res; ai; ai = ai->ai_next) {
    if ((err = own_fd(s, ai)) != 0) continue;
    do err = connect(FD(s), ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    while (err == EINTR);
    if (err == 0) break;
    if (err == EINPROGRESS || err == EAGAIN) {
      inprogress = 1;
      break;
    }
  }
  freeaddrinfo(res);
  if (!inprogress) {
    if (err) return fail(L, err);
    lua_pushinteger(L, 1);
    return 1;
  }
  lua_pushnumber(L, op_deadline(s));
  return connect_k(L, LUA_OK, (lua_KContext)s);
}

/* bind(address, port) -> 1 | nil, err */
int io_bind(lua_State *L, Socket *s) {

  const char *host = luaL_checkstring(L, 2);
  const char *port = luaL_checkstring(L, 3);
  struct addrinfo *res, *ai;
  int err = 0;
  if (!socket_usable(L, s)) return fail_closed(L);
  socket_check_kind(L, s, MASTER);
  if (resolve(L, s, host, port, 1, &res)) return 2;
  for (ai = res; ai; ai = ai->ai_next) {
    if ((err = own_fd(s, ai)) != 0) continue;
    err = bind(FD(s), ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    if (err == 0) break;
  }
  freeaddrinfo(res);
  if (err) return fail(L, err);
  lua_pushinteger(L, 1);
  return 1;
}

/* listen([backlog = 32]) -> 1 | nil, err */
int io_listen(lua_State *L, Socket *s) {

  int backlog = (int)luaL_optinteger(L, 2, 32);
  if (!socket_usable(L, s)) return fail_closed(L);
  socket_check_kind(L, s, MASTER);
  if (listen(FD(s), backlog) != 0) return fail(L, errno);
  atomic_store(&s->kind, SERVER);
  lua_pushinteger(L, 1);
  return 1;
}

/* For sockopt.c: LuaSocket's answer to errno value err. */
int socket_fail(lua_State *L, int err) {
  return fail(L, err);
}
