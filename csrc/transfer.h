/*
** transfer.h — what transfer.c, encode.c and decode.c share: the tags of
** an encoded value and the per-state maps by which loaded modules and C
** functions travel by name.
*/
#ifndef DUET_TRANSFER_H
#define DUET_TRANSFER_H

#include "duet.h"

#pragma GCC visibility push(hidden)

/* The byte before each encoded value: what follows it. */
enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_STR, T_TABLE, T_END, T_REF,
  T_FUNC, T_CFUNC, T_MODULE, T_OBJECT, T_UPJOIN, T_GLOBALS, T_ERROR
};

#define MAX_DEPTH 200                     /* nesting, either way */

/* transfer.c: the maps of a state, rebuilt when package.loaded gains a
** key. An encode keeps what it found of them in a duet_Maps (zeroed, with
** two stack slots of nil at `slot`), so it builds and fetches them once,
** and once more for a C function they do not know. */
enum { DUET_MAP_MODULES, DUET_MAP_CFUNCS };
typedef struct duet_Maps {
  struct StateInfo *si;                   /* NULL until first needed */
  int ready;                              /* current for this encode */
  int slot;                               /* the two maps, once fetched */
  int rebuilt;                            /* by this encode */
} duet_Maps;
/* The name by which the value at idx travels pushed: a loaded module's
** (DUET_MAP_MODULES), or {module name, key} of a C function
** (DUET_MAP_CFUNCS, "@duet.Type" for duet's methods); 0 (nothing pushed)
** if it has none. */
int duet_map_lookup(lua_State *L, duet_Maps *mp, int idx, int which);

#pragma GCC visibility pop

#endif
