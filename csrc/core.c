/*
** core.c — luaopen_duet_core: builds the module table from every concept.
*/
#include "duet.h"

typedef int (*duet_Opener)(lua_State *L);

/* Each opener adds its functions to the module table on the stack top. */
static const duet_Opener openers[] = {
  duet_clock_open,
  duet_object_open,
  duet_transfer_open,
  duet_thread_open,
  duet_queue_open,
  duet_sharedtable_open,
  duet_lock_open,
  duet_semaphore_open,
  duet_condition_open,
  duet_event_open,
  duet_barrier_open,
  duet_future_open,
  duet_executor_open,
  duet_tokenbucket_open,
  duet_poll_open,
  duet_socket_open,
  NULL
};

int luaopen_duet_core(lua_State *L) {
  const duet_Opener *o;
  lua_newtable(L);
  for (o = openers; *o; o++) (*o)(L);
  return 1;
}
