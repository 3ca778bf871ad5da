/*
** clock.c — the monotonic clock and timeouts shared by both runtimes.
*/
#include <math.h>

#include "duet.h"

double duet_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void duet_timespec(double t, struct timespec *ts) {
  double s;
  if (!(t > 0)) t = 0;                    /* a deadline just passed, or NaN */
  s = floor(t);
  if (s > 1e15) s = 1e15;                 /* far enough: avoids overflow */
  ts->tv_sec = (time_t)s;
  ts->tv_nsec = (long)((t - s) * 1e9);
  if (ts->tv_nsec >= 1000000000L) ts->tv_nsec = 999999999L;
  if (ts->tv_nsec < 0) ts->tv_nsec = 0;
}

double duet_opt_timeout(lua_State *L, int arg) {
  double t;
  if (lua_isnoneornil(L, arg)) return -1;
  t = luaL_checknumber(L, arg);
  luaL_argcheck(L, t >= 0, arg, "timeout must be a non-negative number");
  return t;                               /* NaN fails the check above */
}

double duet_deadline(double timeout) {
  return timeout < 0 ? HUGE_VAL : duet_now() + timeout;
}

void duet_cond_init(pthread_cond_t *c) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(c, &a);
  pthread_condattr_destroy(&a);
}

static int clock_now(lua_State *L) {
  lua_pushnumber(L, duet_now());
  return 1;
}

static const luaL_Reg clock_funcs[] = {
  {"now", clock_now},
  {NULL, NULL}
};

int duet_clock_open(lua_State *L) {
  luaL_setfuncs(L, clock_funcs, 0);
  return 0;
}
