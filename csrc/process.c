/*
** process.c — child Lua interpreters for rt.ProcessExecutor: starting
** them, the framed messages on their socket, and how they ended.
**
** A child is started with posix_spawn, never fork: the parent may run
** threads, and the child of a fork in a threaded process may only call
** async-signal-safe functions until it execs. Every descriptor duet makes
** is close-on-exec, and the spawn closes every descriptor above 3 as well,
** so a child holds only stdin (/dev/null), stdout, stderr and its end of
** the channel (fd 3).
**
** The channel is a socketpair rather than two pipes: one descriptor per
** child each side, and send(MSG_NOSIGNAL) gets EPIPE from a dead peer
** instead of a SIGPIPE that would kill the parent. A message is a 4-byte
** length (native order: both ends are the same build on the same machine)
** and a body of two duet.encode sections (process_pack).
**
** No child may outlive the parent. A child waiting for work sees the
** channel's end of file; a child busy in a task gets SIGKILL through
** PR_SET_PDEATHSIG, which the worker asks for first thing (process_child).
** That signal comes when the *thread* that spawned the child ends, not the
** process, and duet's pooled OS threads come and go: so every spawn is
** done by one spawner thread, started once and never ended.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 36)
#include <sys/pidfd.h>
#define HAVE_PIDFD 1
#endif

#include "duet.h"

extern char **environ;

#define PROCESS "duet.Process"
#define CHILD_FD 3                        /* the channel, in the child */
#define HEADER 4                          /* bytes of a frame's length */

/* ------------------------------------------------------------ spawner */

typedef struct Spawn {
  const char *path;
  char **argv;
  int fd;                                 /* becomes the child's CHILD_FD */
  int search;                             /* look `path` up in PATH */
  pid_t pid;
  int err, done;
  struct Spawn *next;
} Spawn;

static pthread_mutex_t spawn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spawn_asked = PTHREAD_COND_INITIALIZER;
static pthread_cond_t spawn_done = PTHREAD_COND_INITIALIZER;
static Spawn *spawn_queue;
static int spawner_err;                   /* could not start the thread */
static pthread_once_t spawner_once = PTHREAD_ONCE_INIT;

static int spawn_now(Spawn *s) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, all;
  int e;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  sigemptyset(&none);
  sigfillset(&all);
  /* a clean start: no blocked signal, every handler back to default */
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK
                                | POSIX_SPAWN_SETSIGDEF);
  /* the parent's input is the parent's: a worker reading it would steal */
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, s->fd, CHILD_FD);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
  /* descriptors a library opened without O_CLOEXEC stay home too */
  posix_spawn_file_actions_addclosefrom_np(&fa, CHILD_FD + 1);
#endif
  e = (s->search ? posix_spawnp : posix_spawn)(&s->pid, s->path, &fa, &at,
                                               s->argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return e;
}

static void *spawner_main(void *arg) {
  (void)arg;
  for (;;) {
    Spawn *s;
    pthread_mutex_lock(&spawn_mu);
    while (spawn_queue == NULL) pthread_cond_wait(&spawn_asked, &spawn_mu);
    s = spawn_queue;
    spawn_queue = s->next;
    pthread_mutex_unlock(&spawn_mu);
    s->err = spawn_now(s);
    pthread_mutex_lock(&spawn_mu);
    s->done = 1;
    pthread_cond_broadcast(&spawn_done);
    pthread_mutex_unlock(&spawn_mu);
  }
  return NULL;
}

/* The spawner takes no signal: Ctrl-C and cancels are for other threads. */
static void spawner_start(void) {
  pthread_t t;
  pthread_attr_t at;
  sigset_t all, old;
  sigfillset(&all);
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 256 * 1024);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  spawner_err = pthread_create(&t, &at, spawner_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&at);
}

/* Spawn through the spawner thread: 0, or an errno. Takes a millisecond
** or so and is not cancellable; no Lua API call is made meanwhile. */
static int spawn(Spawn *s) {
  pthread_once(&spawner_once, spawner_start);
  if (spawner_err) return spawner_err;
  pthread_mutex_lock(&spawn_mu);
  s->next = spawn_queue;
  spawn_queue = s;
  pthread_cond_signal(&spawn_asked);
  while (!s->done) pthread_cond_wait(&spawn_done, &spawn_mu);
  pthread_mutex_unlock(&spawn_mu);
  return s->err;
}

/* --------------------------------------------------- futures, errors */

/* The Executor's own Future type, made and completed here for the threads
** runtime's ProcessExecutor (lua/duet/process.lua): its feeder threads
** settle what the workers reply. */
static duet_Future *check_future_arg(lua_State *L, int arg) {
  duet_Object *o = duet_to_object(L, arg);
  if (o == NULL || strcmp(o->type->name, "duet.Future") != 0)
    luaL_typeerror(L, arg, "duet.Future");
  return (duet_Future *)o;
}

/* process_future() -> a new pending duet.Future */
static int process_future(lua_State *L) {
  duet_future_new(L, 0, NULL);
  return 1;
}

/* process_start(fut) -> true: it was pending and is now running */
static int process_start(lua_State *L) {
  lua_pushboolean(L, duet_future_start(check_future_arg(L, 1)));
  return 1;
}

/* process_settle(fut, ok, traceback, ...): complete a running future with
** the results ... (ok) or the error value ... (not ok). */
static int process_settle(lua_State *L) {
  duet_Future *f = check_future_arg(L, 1);
  int ok = lua_toboolean(L, 2);
  const char *tb = luaL_optstring(L, 3, NULL);
  int n = lua_gettop(L) - 3;
  duet_Message **box;
  char *tbcopy = NULL;
  luaL_argcheck(L, duet_future_state(f) == DUET_FUT_RUNNING, 1,
                "future is not running");
  if (!ok && n < 1) {
    lua_pushnil(L);
    n = 1;
  }
  box = duet_new_box(L, 1);
  box[0] = ok ? duet_encode(L, 4, n, "results", DUET_LIST)
              : duet_encode(L, 4, 1, "error", 0);
  if (tb && (tbcopy = strdup(tb)) == NULL)
    return luaL_error(L, "not enough memory");
  duet_future_finish(L, f, ok, box[0], tbcopy);
  box[0] = NULL;                          /* the future's now */
  return 0;
}

/* A worker that ended while running a task: the error its future gets.
** It compares equal (==) to duet.broken_process and names how the worker
** ended; fields pid, exitcode, signal. */
typedef struct Broken {
  duet_Object base;
  lua_Integer pid;
  int how;                                /* 'e' exit, 's' signal, '?' */
  int code;                               /* exit status or signal */
} Broken;

static void broken_destroy(duet_Object *o) { free(o); }

static void get_pid(lua_State *L, duet_Object *o);
static void get_exitcode(lua_State *L, duet_Object *o);
static void get_signal(lua_State *L, duet_Object *o);

static const duet_Field broken_fields[] = {
  {"pid", get_pid},
  {"exitcode", get_exitcode},
  {"signal", get_signal},
  {NULL, NULL}
};

static const duet_Type broken_type = {"duet.BrokenProcess", broken_destroy,
                                      NULL, duet_process_open, NULL,
                                      broken_fields, NULL};

static int is_broken(lua_State *L, int idx) {
  duet_Object *o = duet_to_object(L, idx);
  return o != NULL && (o->type == &broken_type
                       || duet_error_index(o) == DUET_ERR_BROKEN_PROCESS);
}

static int broken_eq(lua_State *L) {
  lua_pushboolean(L, is_broken(L, 1) && is_broken(L, 2));
  return 1;
}

static int broken_tostring(lua_State *L) {
  Broken *b = (Broken *)duet_check_object(L, 1, &broken_type);
  if (b->how == 'e')
    lua_pushfstring(L, "duet.broken_process: worker process %I exited with "
                    "status %d", (LUAI_UACINT)b->pid, b->code);
  else if (b->how == 's') {
    const char *abbrev = sigabbrev_np(b->code);
    lua_pushfstring(L, "duet.broken_process: worker process %I was killed "
                    "by signal %d (SIG%s)", (LUAI_UACINT)b->pid, b->code,
                    abbrev ? abbrev : "?");
  }
  else
    lua_pushfstring(L, "duet.broken_process: worker process %I ended",
                    (LUAI_UACINT)b->pid);
  return 1;
}

static void get_pid(lua_State *L, duet_Object *o) {
  lua_pushinteger(L, ((Broken *)o)->pid);
}

static void get_exitcode(lua_State *L, duet_Object *o) {
  Broken *b = (Broken *)o;
  if (b->how == 'e') lua_pushinteger(L, b->code);
  else lua_pushnil(L);
}

static void get_signal(lua_State *L, duet_Object *o) {
  Broken *b = (Broken *)o;
  if (b->how == 's') lua_pushinteger(L, b->code);
  else lua_pushnil(L);
}

static const luaL_Reg broken_meta[] = {
  {"__eq", broken_eq},
  {"__tostring", broken_tostring},
  {NULL, NULL}
};

/* ------------------------------------------------------------ Process */

typedef struct Buf {
  char *p;
  size_t off, len, cap;                   /* live bytes: [off, len) */
} Buf;

typedef struct Process {
  pid_t pid;                              /* 0: a child's end of its channel */
  int fd;                                 /* the channel; -1 once closed */
  int exitfd;                             /* pidfd: readable once it ended */
  int reaped, wstatus;                    /* wstatus -1: reaped elsewhere */
  Buf in, out;
} Process;

static Process *check_process(lua_State *L) {
  return (Process *)luaL_checkudata(L, 1, PROCESS);
}

static Process *new_process(lua_State *L) {
  Process *p = (Process *)lua_newuserdatauv(L, sizeof(Process), 0);
  memset(p, 0, sizeof *p);
  p->fd = p->exitfd = -1;
  p->reaped = 1;                          /* nothing to wait for yet */
  luaL_setmetatable(L, PROCESS);
  return p;
}

static int reserve(Buf *b, size_t more) {
  size_t cap;
  char *np;
  if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
  if (b->cap - b->len >= more) return 1;
  if (b->off > 0) {                       /* slide the live bytes down */
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->cap - b->len >= more) return 1;
  }
  cap = b->cap ? b->cap : 4096;
  while (cap - b->len < more) cap *= 2;
  np = (char *)realloc(b->p, cap);
  if (np == NULL) return 0;
  b->p = np;
  b->cap = cap;
  return 1;
}

/* Reap the child if it ended (block: wait for it to). 1: reaped. */
static int reap(Process *p, int block) {
  int st, r;
  if (p->reaped) return 1;
  do r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return 0;
  p->reaped = 1;
  p->wstatus = r == p->pid ? st : -1;     /* ECHILD: SIGCHLD ignored */
  if (p->exitfd >= 0) {
    close(p->exitfd);
    p->exitfd = -1;
  }
  return 1;
}

/* Close the channel; a child still running is killed and reaped, so that
** none outlives its Process. Idempotent. */
static int process_gc(lua_State *L) {
  Process *p = (Process *)luaL_checkudata(L, 1, PROCESS);
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
  if (!p->reaped) {
    kill(p->pid, SIGKILL);
    reap(p, 1);
  }
  free(p->in.p);
  free(p->out.p);
  memset(&p->in, 0, sizeof p->in);
  memset(&p->out, 0, sizeof p->out);
  return 0;
}

/* process_spawn(argv [, search]) -> Process: start argv[1] with argv as
** its arguments (search: look it up in PATH). */
static int process_spawn(lua_State *L) {
  Spawn s;
  Process *p;
  int sv[2], e;
  lua_Integer i, n;
  char **argv;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 1 && n < 256, 1, "argv must hold 1 to 255 strings");
  luaL_checkstack(L, (int)n + 4, NULL);
  argv = (char **)lua_newuserdatauv(L, (size_t)(n + 1) * sizeof(char *), 0);
  for (i = 1; i <= n; i++) {              /* the strings stay on the stack */
    luaL_argcheck(L, lua_geti(L, 1, i) == LUA_TSTRING, 1,
                  "argv must hold 1 to 255 strings");
    argv[i - 1] = (char *)lua_tostring(L, -1);
  }
  argv[n] = NULL;
  p = new_process(L);                     /* safe, empty, before the risk */
  memset(&s, 0, sizeof s);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    e = errno;
    goto fail;
  }
  /* dup2(fd, fd) would keep close-on-exec set: never hand over fd 3 */
  if (sv[1] <= CHILD_FD) {
    int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, CHILD_FD + 1);
    e = errno;
    close(sv[1]);
    if (moved < 0) {
      close(sv[0]);
      goto fail;
    }
    sv[1] = moved;
  }
  s.path = argv[0];
  s.argv = argv;
  s.fd = sv[1];
  s.search = lua_toboolean(L, 2);
  e = spawn(&s);
  close(sv[1]);
  if (e != 0) {
    close(sv[0]);
    goto fail;
  }
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  p->pid = s.pid;
  p->fd = sv[0];
  p->reaped = 0;
#ifdef HAVE_PIDFD
  p->exitfd = pidfd_open(s.pid, 0);       /* close-on-exec by itself */
#endif
  return 1;
fail:
  return luaL_error(L, "cannot start process '%s': %s", argv[0],
                    strerror(e));
}

/* process_child(ppid, nonblocking) -> Process for the worker's channel,
** or nil when the parent is gone already. Also: die with the parent, and
** leave Ctrl-C to the parent (the terminal sends SIGINT to both). */
static int process_child(lua_State *L) {
  lua_Integer ppid = luaL_checkinteger(L, 1);
  int nonblocking = lua_toboolean(L, 2);
  Process *p;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if ((lua_Integer)getppid() != ppid) return 0;  /* ended before prctl */
  signal(SIGINT, SIG_IGN);
  /* processes the task starts must not hold the channel open */
  if (fcntl(CHILD_FD, F_SETFD, FD_CLOEXEC) != 0)
    return luaL_error(L, "no channel on descriptor %d", CHILD_FD);
  if (nonblocking)
    fcntl(CHILD_FD, F_SETFL, fcntl(CHILD_FD, F_GETFL) | O_NONBLOCK);
  p = new_process(L);
  p->fd = CHILD_FD;
  return 1;
}

/* A write failed (the peer gone, or ENOBUFS...): end our side of the
** stream, so that a peer still alive reads end of file instead of waiting
** for the rest of a frame, and ends; its replies stay readable. -1. */
static int write_failed(Process *p) {
  shutdown(p->fd, SHUT_WR);
  p->out.off = p->out.len = 0;
  return -1;
}

/* Write what `out` holds: 1 all written, 0 it would block, -1 closed. */
static int flush_out(Process *p) {
  Buf *b = &p->out;
  while (b->off < b->len) {
    ssize_t r = send(p->fd, b->p + b->off, b->len - b->off, MSG_NOSIGNAL);
    if (r >= 0) b->off += (size_t)r;
    else if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    else if (errno != EINTR) return write_failed(p);
  }
  b->off = b->len = 0;
  return 1;
}

static int push_flushed(lua_State *L, int r) {
  if (r >= 0) {
    lua_pushboolean(L, r);
    return 1;
  }
  luaL_pushfail(L);
  lua_pushliteral(L, "closed");
  return 2;
}

/* p:send(body) -> true (all written), false (the rest waits for p:flush
** once writable) or nil, "closed". The frame goes straight from the
** string when nothing is queued before it; only what the socket did not
** take is copied. */
static int process_send(lua_State *L) {
  Process *p = check_process(L);
  size_t len, done = 0;
  const char *body = luaL_checklstring(L, 2, &len);
  uint32_t n = (uint32_t)len;
  luaL_argcheck(L, len <= UINT32_MAX, 2, "message too large");
  if (p->fd < 0) return push_flushed(L, -1);
  if (p->out.off == p->out.len) {
    struct iovec iov[2];
    struct msghdr mh;
    ssize_t r;
    iov[0].iov_base = &n;
    iov[0].iov_len = HEADER;
    iov[1].iov_base = (void *)body;
    iov[1].iov_len = len;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = 2;
    do r = sendmsg(p->fd, &mh, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      return push_flushed(L, write_failed(p));
    done = r > 0 ? (size_t)r : 0;
    if (done == HEADER + len) return push_flushed(L, 1);
  }
  if (!reserve(&p->out, HEADER + len - done))
    return luaL_error(L, "not enough memory");
  if (done < HEADER) {
    memcpy(p->out.p + p->out.len, (char *)&n + done, HEADER - done);
    p->out.len += HEADER - done;
    done = HEADER;
  }
  memcpy(p->out.p + p->out.len, body + (done - HEADER),
         len - (done - HEADER));
  p->out.len += len - (done - HEADER);
  return push_flushed(L, flush_out(p));
}

/* p:flush() -> as p:send, for what is still queued. */
static int process_flush(lua_State *L) {
  Process *p = check_process(L);
  return push_flushed(L, p->fd < 0 ? -1 : flush_out(p));
}

/* The body of the next complete frame in `in`, if there is one. */
static const char *next_frame(Buf *b, size_t *len) {
  uint32_t n;
  if (b->len - b->off < HEADER) return NULL;
  memcpy(&n, b->p + b->off, HEADER);
  if (b->len - b->off - HEADER < n) return NULL;
  *len = n;
  b->off += HEADER + n;
  return b->p + b->off - n;
}

/* p:recv() -> the next message's body; false when none has come whole
** yet (wait until readable); nil, "closed" at end of file. A blocking
** channel (the worker's) waits here for it. */
static int process_recv(lua_State *L) {
  Process *p = check_process(L);
  Buf *b = &p->in;
  for (;;) {
    size_t len, want;
    const char *body = next_frame(b, &len);
    ssize_t r;
    if (body) {
      lua_pushlstring(L, body, len);
      return 1;
    }
    if (p->fd < 0) break;
    want = 65536;
    if (b->len - b->off >= HEADER) {      /* read the whole frame at once */
      uint32_t n;
      memcpy(&n, b->p + b->off, HEADER);
      if ((size_t)n + HEADER - (b->len - b->off) > want)
        want = (size_t)n + HEADER - (b->len - b->off);
    }
    if (!reserve(b, want)) return luaL_error(L, "not enough memory");
    r = read(p->fd, b->p + b->len, b->cap - b->len);
    if (r > 0) b->len += (size_t)r;
    else if (r == 0) break;
    else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      lua_pushboolean(L, 0);
      return 1;
    }
    else if (errno != EINTR) break;       /* ECONNRESET: as closed */
  }
  luaL_pushfail(L);
  lua_pushliteral(L, "closed");
  return 2;
}

/* p:dirty() -> a whole message is buffered (so rt.wait_readable returns). */
static int process_dirty(lua_State *L) {
  Process *p = check_process(L);
  uint32_t n;
  Buf *b = &p->in;
  int whole = 0;
  if (b->len - b->off >= HEADER) {
    memcpy(&n, b->p + b->off, HEADER);
    whole = b->len - b->off - HEADER >= n;
  }
  lua_pushboolean(L, whole);
  return 1;
}

static int process_getfd(lua_State *L) {
  lua_pushinteger(L, check_process(L)->fd);
  return 1;
}

/* p:exitfd() -> a descriptor readable once the child ended (a pidfd), or
** nil when the system has none (then p:wait() blocks). */
static int process_exitfd(lua_State *L) {
  Process *p = check_process(L);
  if (p->exitfd < 0) return 0;
  lua_pushinteger(L, p->exitfd);
  return 1;
}

static int process_pid(lua_State *L) {
  lua_pushinteger(L, check_process(L)->pid);
  return 1;
}

/* p:close(): close the channel; the child reads end of file. */
static int process_close(lua_State *L) {
  Process *p = check_process(L);
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
  return 0;
}

/* p:kill([signal]) -> true if sent (default SIGKILL); false once reaped,
** so that a recycled pid is never signalled. */
static int process_kill(lua_State *L) {
  Process *p = check_process(L);
  int sig = (int)luaL_optinteger(L, 2, SIGKILL);
  int sent = !p->reaped && p->pid > 0 && kill(p->pid, sig) == 0;
  lua_pushboolean(L, sent);
  return 1;
}

/* How the child ended: "exit", code | "signal", number, name (SIGKILL) |
** "unknown" (reaped by someone else); nothing while it runs. */
static int push_status(lua_State *L, Process *p) {
  int st = p->wstatus;
  if (!p->reaped || p->pid == 0) return 0;
  if (st != -1 && WIFEXITED(st)) {
    lua_pushliteral(L, "exit");
    lua_pushinteger(L, WEXITSTATUS(st));
    return 2;
  }
  if (st != -1 && WIFSIGNALED(st)) {
    const char *abbrev = sigabbrev_np(WTERMSIG(st));
    lua_pushliteral(L, "signal");
    lua_pushinteger(L, WTERMSIG(st));
    if (abbrev) lua_pushfstring(L, "SIG%s", abbrev);
    else lua_pushfstring(L, "signal %d", WTERMSIG(st));
    return 3;
  }
  lua_pushliteral(L, "unknown");
  return 1;
}

/* p:status() -> as push_status, without waiting. */
static int process_status(lua_State *L) {
  Process *p = check_process(L);
  if (p->pid > 0) reap(p, 0);
  return push_status(L, p);
}

/* p:wait() -> as push_status, once the child ended (blocks the OS thread:
** for a child known to be ending). */
static int process_wait(lua_State *L) {
  Process *p = check_process(L);
  if (p->pid > 0) reap(p, 1);
  return push_status(L, p);
}

/* p:broken() -> the duet.broken_process error for how the (reaped) child
** ended. */
static int process_broken(lua_State *L) {
  Process *p = check_process(L);
  Broken *b;
  luaL_argcheck(L, p->pid > 0 && p->reaped, 1, "process not reaped");
  b = (Broken *)duet_new_object(L, &broken_type, sizeof(Broken));
  b->pid = p->pid;
  b->how = p->wstatus == -1 ? '?' : WIFEXITED(p->wstatus) ? 'e'
           : WIFSIGNALED(p->wstatus) ? 's' : '?';
  b->code = b->how == 'e' ? WEXITSTATUS(p->wstatus)
            : b->how == 's' ? WTERMSIG(p->wstatus) : 0;
  return 1;
}

/* process_pack(where1, v1, where2, ...) -> a message body: v1 and then
** the rest, each encoded for another process, named where1 and where2[i]
** in errors ("cannot move coroutine at args[2]"). */
static int process_pack(lua_State *L) {
  const char *w1 = luaL_checkstring(L, 1);
  const char *w2 = luaL_checkstring(L, 3);
  int n = lua_gettop(L) - 3;
  duet_Message **box;
  luaL_Buffer b;
  uint32_t len1;
  luaL_checkany(L, 2);
  box = duet_new_box(L, 2);
  box[0] = duet_encode(L, 2, 1, w1, DUET_PORTABLE);
  box[1] = duet_encode(L, 4, n, w2, DUET_PORTABLE | DUET_LIST);
  luaL_argcheck(L, box[0]->len <= UINT32_MAX, 2, "value too large");
  len1 = (uint32_t)box[0]->len;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, (const char *)&len1, HEADER);
  luaL_addlstring(&b, box[0]->data, box[0]->len);
  luaL_addlstring(&b, box[1]->data, box[1]->len);
  luaL_pushresult(&b);
  return 1;                               /* the box's __gc frees both */
}

/* process_unpack(body [, functions]) -> v1, the rest. Code is refused
** unless `functions`: only the parent's channel may carry it. */
static int process_unpack(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int functions = lua_toboolean(L, 2);
  uint32_t len1;
  lua_settop(L, 1);
  if (len < HEADER) return luaL_error(L, "cannot decode: truncated input");
  memcpy(&len1, s, HEADER);
  if (len - HEADER < len1)
    return luaL_error(L, "cannot decode: truncated input");
  if (duet_decode_bytes(L, s + HEADER, len1, functions) != 1)
    return luaL_error(L, "cannot decode: expected one value");
  return duet_decode_bytes(L, s + HEADER + len1, len - HEADER - len1,
                           functions) + 1;
}

/* process_self() -> this process's id, the number of CPUs online, and
** the path of the running program (/proc/self/exe) or nil. */
static int process_self(lua_State *L) {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, (lua_Integer)getpid());
  lua_pushinteger(L, ncpu > 0 ? ncpu : 1);
  if (n <= 0) return 2;
  lua_pushlstring(L, buf, (size_t)n);
  return 3;
}

/* process_hold(delta): count `delta` more (or fewer) reasons for rt.run
** and the process exit to wait (a process pool's queued and running
** tasks, as an Executor's count). */
static int process_hold(lua_State *L) {
  duet_keep_alive((int)luaL_checkinteger(L, 1));
  return 0;
}

static const luaL_Reg process_methods[] = {
  {"send", process_send},
  {"flush", process_flush},
  {"recv", process_recv},
  {"dirty", process_dirty},
  {"getfd", process_getfd},
  {"exitfd", process_exitfd},
  {"pid", process_pid},
  {"close", process_close},
  {"kill", process_kill},
  {"status", process_status},
  {"wait", process_wait},
  {"broken", process_broken},
  {NULL, NULL}
};

static const luaL_Reg process_funcs[] = {
  {"process_spawn", process_spawn},
  {"process_child", process_child},
  {"process_pack", process_pack},
  {"process_unpack", process_unpack},
  {"process_self", process_self},
  {"process_hold", process_hold},
  {"process_future", process_future},
  {"process_start", process_start},
  {"process_settle", process_settle},
  {NULL, NULL}
};

int duet_process_open(lua_State *L) {
  if (luaL_newmetatable(L, PROCESS)) {
    luaL_newlib(L, process_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, process_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  duet_new_type(L, &broken_type, NULL, broken_meta);
  luaL_setfuncs(L, process_funcs, 0);
  return 0;
}
