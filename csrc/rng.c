/*
** rng.c — duet's own seeded generator (xoshiro256**, seeded through
** splitmix64, as Lua 5.4's math.random is built). Seeded preemption and
** jitter draw from it, so a run depends on its seed alone and never
** disturbs or depends on the user's math.random.
*/
#include "duet.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void duet_rng_seed(duet_Rng *r, uint64_t seed) {
  int i;
  for (i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t duet_rng_next(duet_Rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Uniform in [0, n) for n > 0: rejection keeps every value equally likely. */
uint64_t duet_rng_below(duet_Rng *r, uint64_t n) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
  do x = duet_rng_next(r); while (x >= limit);
  return x % n;
}
