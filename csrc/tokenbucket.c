/*
** tokenbucket.c — TokenBucket: one count of tokens shared by every thread.
**
** The count is brought up to date from the clock on every call, so no
** thread refills it. The arithmetic is both runtimes' (the coroutines
** bucket writes it out again, and spec/tokenbucket_count_spec.lua holds
** the two to the same results through duet.core.bucket_refill and
** bucket_due):
**   continuous {capacity, rate}:    tokens += (now - t) * rate, t = now
**   discrete {max_tokens, refill_tokens, refill_period}:
**     k = the most periods with t + k * period <= now;
**     tokens += k * refill; t += k * period
** both capped at the capacity. A refill and a take happen as one step
** under a spinlock held for a few dozen instructions and no call, so no
** interleaving of threads ever grants a token the arithmetic does not
** allow; a test-and-test-and-set lock keeps 4 threads hammering take()
** cheaper than a mutex would (no futex, no sleeping holder).
**
** wait() sleeps until the time its tokens are due (nobody signals a
** bucket: tokens only come with time), then tries again; it is a
** cancellable wait like every other.
*/
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "duet.h"

typedef struct Count {
  double tokens, t;                       /* the count, as of time t */
  double cap;
  double rate;                            /* > 0: continuous form */
  double refill, period;                  /* the discrete form */
} Count;

typedef struct TokenBucket {
  duet_Object base;
  atomic_int lock;                        /* guards m.tokens and m.t */
  Count m;
  pthread_mutex_t wait_mu;                /* for wait()'s sleeps */
  pthread_cond_t wait_cv;
} TokenBucket;


static void tb_lock(TokenBucket *b) {
  int spins = 0;
  while (atomic_exchange_explicit(&b->lock, 1, memory_order_acquire)) {
    while (atomic_load_explicit(&b->lock, memory_order_relaxed)) {
      if (++spins < 100) duet_cpu_relax();
      else {                              /* the holder lost its CPU */
        sched_yield();
        spins = 0;
      }
    }
  }
}

static void tb_unlock(TokenBucket *b) {
  atomic_store_explicit(&b->lock, 0, memory_order_release);
}

/* Bring the count up to time `now`. A `now` read before another thread's
** later one is simply not newer: nothing to add. */
static void refill(Count *c, double now) {
  if (now <= c->t) return;
  if (c->rate > 0) {
    double tokens = c->tokens + (now - c->t) * c->rate;
    c->tokens = tokens < c->cap ? tokens : c->cap;
    c->t = now;
  }
  else {
    /* k as due() counts: (now - t) / period may round across a whole
    ** number, and a waiter woken at its due time must find its refill */
    double k = floor((now - c->t) / c->period);
    if (c->t + (k + 1) * c->period <= now) k += 1;
    else if (k > 0 && c->t + k * c->period > now) k -= 1;
    if (k > 0) {
      double tokens = c->tokens + k * c->refill;
      c->tokens = tokens < c->cap ? tokens : c->cap;
      c->t = c->t + k * c->period;
    }
  }
}

/* When `n` tokens will be there (the count brought up to `now`). Always
** later than `now` while they are missing: a waiter woken then by a
** virtual clock, which stops at exactly that time, gets another refill
** rather than the same due time again (now + a rounded-off missing / rate
** can be `now` itself); refill() counts periods exactly as this does. */
static double due(const Count *c, double n, double now) {
  double missing = n - c->tokens, at;
  if (c->rate > 0) at = now + missing / c->rate;
  else at = c->t + ceil(missing / c->refill) * c->period;
  return at > now ? at : now + fabs(now) * 0x1p-52 + 0x1p-1074;
}

/* Take n if there are that many at `now`; else *at = when they are due. */
static int try_take(TokenBucket *b, double n, double now, double *at) {
  int ok;
  tb_lock(b);
  refill(&b->m, now);
  ok = b->m.tokens >= n;
  if (ok) b->m.tokens -= n;
  else if (at) *at = due(&b->m, n, now);
  tb_unlock(b);
  return ok;
}

static double tokens_now(TokenBucket *b) {
  double n, now = duet_now();
  tb_lock(b);
  refill(&b->m, now);
  n = b->m.tokens;
  tb_unlock(b);
  return n;
}

static void tb_destroy(duet_Object *o) {
  TokenBucket *b = (TokenBucket *)o;
  pthread_mutex_destroy(&b->wait_mu);
  pthread_cond_destroy(&b->wait_cv);
  free(b);
}

static void tb_describe(duet_Object *o, char *buf, size_t size) {
  TokenBucket *b = (TokenBucket *)o;
  snprintf(buf, size, "%g/%g tokens", tokens_now(b), b->m.cap);
}

static const duet_Type tb_type = {"duet.TokenBucket", tb_destroy,
                                  tb_describe,
                                  duet_tokenbucket_open, NULL, NULL, NULL};

#define check_tb(L) ((TokenBucket *)duet_check_self(L, &tb_type))

/* A whole count reads as an integer, as the coroutines bucket's does. */
static void push_count(lua_State *L, double n) {
  lua_Integer i;
  if (lua_numbertointeger(n, &i) && (double)i == n) lua_pushinteger(L, i);
  else lua_pushnumber(L, n);
}

/* Field `k` of the options (arg 1): a positive number. */
static double field(lua_State *L, const char *k) {
  double v;
  if (lua_getfield(L, 1, k) != LUA_TNUMBER)
    duet_field_error(L, 1, k, "number");
  v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(v > 0))
    luaL_argerror(L, 1, lua_pushfstring(L, "field '%s' must be positive", k));
  return v;
}

static int given(lua_State *L, const char *k) {
  int t = lua_getfield(L, 1, k);
  lua_pop(L, 1);
  return t != LUA_TNIL;
}

/* TokenBucket{capacity=, rate=} or {max_tokens=, refill_tokens=,
** refill_period=}; option tokens= (default: full) */
static int tb_new(lua_State *L) {
  TokenBucket *b;
  double cap, rate = 0, refill_ = 0, period = 0, tokens;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  if (given(L, "capacity") || given(L, "rate")) {
    if (given(L, "max_tokens") || given(L, "refill_tokens")
        || given(L, "refill_period"))
      luaL_argerror(L, 1, "give either capacity and rate, or max_tokens, "
                    "refill_tokens and refill_period");
    cap = field(L, "capacity");
    rate = field(L, "rate");
  }
  else {
    cap = field(L, "max_tokens");
    refill_ = field(L, "refill_tokens");
    period = field(L, "refill_period");
  }
  switch (lua_getfield(L, 1, "tokens")) {
    case LUA_TNIL: tokens = cap; break;
    case LUA_TNUMBER:
      tokens = lua_tonumber(L, -1);
      if (!(tokens >= 0 && tokens <= cap))
        luaL_argerror(L, 1, "field 'tokens' must be between 0 and the "
                      "capacity");
      break;
    default:
      return duet_field_error(L, 1, "tokens", "number");
  }
  b = (TokenBucket *)duet_new_object(L, &tb_type, sizeof(TokenBucket));
  atomic_init(&b->lock, 0);
  pthread_mutex_init(&b->wait_mu, NULL);
  duet_cond_init(&b->wait_cv);
  b->m.cap = cap;
  b->m.rate = rate;
  b->m.refill = refill_;
  b->m.period = period;
  b->m.tokens = tokens;
  b->m.t = duet_now();
  return 1;
}

/* The token count argument (arg 2, default 1). */
static double check_n(lua_State *L, TokenBucket *b) {
  double n = luaL_optnumber(L, 2, 1);
  luaL_argcheck(L, n > 0, 2, "n must be positive");
  luaL_argcheck(L, n <= b->m.cap, 2, "n exceeds the bucket's capacity");
  return n;
}

/* tb:take([n=1]) -> true (taken) | false (too few: none taken) */
static int tb_take(lua_State *L) {
  TokenBucket *b = check_tb(L);
  double n = lua_gettop(L) == 1 ? 1 : check_n(L, b);
  lua_pushboolean(L, try_take(b, n, duet_now(), NULL));
  return 1;
}

/* tb:wait([n=1], [timeout]) -> true (taken) | false (timed out) */
static int tb_wait(lua_State *L) {
  TokenBucket *b = check_tb(L);
  double n = check_n(L, b);
  double timeout = duet_opt_timeout(L, 3), deadline = HUGE_VAL, at;
  double now = duet_now();
  int r = 0, ok;
  if (timeout >= 0) deadline = now + timeout;
  if ((ok = try_take(b, n, now, &at)) || now >= deadline) {
    lua_pushboolean(L, ok);
    return 1;
  }
  /* one wait for the whole loop: its start is what Ctrl-C is told by */
  duet_wait_begin(L, &b->wait_cv, &b->wait_mu);
  pthread_mutex_lock(&b->wait_mu);
  do {
    r = duet_wait(L, &b->wait_cv, &b->wait_mu, at < deadline ? at : deadline);
    now = duet_now();
  } while ((r == 0 || r == DUET_TIMEDOUT)
           && !(ok = try_take(b, n, now, &at)) && now < deadline);
  pthread_mutex_unlock(&b->wait_mu);
  duet_wait_end(L);
  if (r != 0 && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  lua_pushboolean(L, ok);
  return 1;
}

static int tb_tokens(lua_State *L) {
  push_count(L, tokens_now(check_tb(L)));
  return 1;
}

static const luaL_Reg tb_methods[] = {
  {"take", tb_take},
  {"wait", tb_wait},
  {"tokens", tb_tokens},
  {NULL, NULL}
};

/* The arithmetic on a Count given as numbers, for the spec that checks
** the coroutines bucket's against it. Both functions take the count as
** (tokens, t, cap, rate, refill, period) at 1..6, then now at 7; rate 0
** is the discrete form, refill and period 0 the continuous one. */
static double check_count(lua_State *L, Count *c) {
  c->tokens = luaL_checknumber(L, 1);
  c->t = luaL_checknumber(L, 2);
  c->cap = luaL_checknumber(L, 3);
  c->rate = luaL_checknumber(L, 4);
  c->refill = luaL_checknumber(L, 5);
  c->period = luaL_checknumber(L, 6);
  return luaL_checknumber(L, 7);
}

/* bucket_refill(count..., now) -> tokens, t */
static int tb_refill(lua_State *L) {
  Count c;
  refill(&c, check_count(L, &c));
  push_count(L, c.tokens);
  lua_pushnumber(L, c.t);
  return 2;
}

/* bucket_due(count..., now, n) -> when n tokens are there (the count
** brought up to now) */
static int tb_due(lua_State *L) {
  Count c;
  double now = check_count(L, &c);
  lua_pushnumber(L, due(&c, luaL_checknumber(L, 8), now));
  return 1;
}

static const luaL_Reg tb_funcs[] = {
  {"TokenBucket", tb_new},
  {"bucket_refill", tb_refill},
  {"bucket_due", tb_due},
  {NULL, NULL}
};

int duet_tokenbucket_open(lua_State *L) {
  duet_new_type(L, &tb_type, tb_methods, NULL);
  luaL_setfuncs(L, tb_funcs, 0);
  return 0;
}
