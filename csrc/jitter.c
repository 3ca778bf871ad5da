/*
** jitter.c — seeded jitter for the threads runtime
** (duet.runtime("threads", {jitter = {seed = s}})).
**
** Before a lock, queue or condition operation a thread may pause for a
** moment (0 to 50 microseconds) or give up the CPU, drawn from duet's
** generator, so that a race needing an unlucky interleaving shows far more
** often than on an idle machine. The OS still decides who runs when: the
** seed makes the pauses repeatable, never the run.
**
** Each OS thread draws from its own generator, seeded from the seed and
** the order in which threads first paused; a new seed reseeds them all.
** Off, duet_jitter() is one relaxed load and a branch.
*/
#include <sched.h>
#include <time.h>

#include "duet.h"

#define MAX_PAUSE_NS 50000

atomic_int duet_jitter_enabled;
static atomic_ullong seed;
static atomic_uint generation;            /* bumped by every new seed */
static atomic_uint next_stream;           /* threads seeded so far */

static _Thread_local duet_Rng rng;
static _Thread_local unsigned seen;       /* generation rng was seeded for */

void duet_jitter_pause(void) {
  unsigned g = atomic_load_explicit(&generation, memory_order_acquire);
  uint64_t r;
  if (seen != g) {
    uint64_t stream = atomic_fetch_add(&next_stream, 1);
    duet_rng_seed(&rng, atomic_load(&seed) ^ (stream * 0x9e3779b97f4a7c15ULL));
    seen = g;
  }
  r = duet_rng_below(&rng, 4);
  if (r == 0) return;                     /* a quarter of the time: nothing */
  if (r == 1) {
    sched_yield();
  } else {
    struct timespec ts = {0, (long)duet_rng_below(&rng, MAX_PAUSE_NS + 1)};
    nanosleep(&ts, NULL);
  }
}

/* core.jitter(seed | nil): jitter from this seed on, or off. */
static int jitter_set(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    atomic_store(&duet_jitter_enabled, 0);
    return 0;
  }
  atomic_store(&seed, (unsigned long long)luaL_checkinteger(L, 1));
  atomic_store(&next_stream, 0);
  atomic_fetch_add_explicit(&generation, 1, memory_order_release);
  atomic_store(&duet_jitter_enabled, 1);
  return 0;
}

static const luaL_Reg jitter_funcs[] = {
  {"jitter", jitter_set},
  {NULL, NULL}
};

int duet_jitter_open(lua_State *L) {
  luaL_setfuncs(L, jitter_funcs, 0);
  return 0;
}
