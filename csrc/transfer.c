/*
** transfer.c — moving values between Lua states (API.md, "Moving values"):
** the per-state maps by which loaded modules and C functions travel by
** name, and messages (freeing, copying, boxing). duet.encode/duet.decode,
** built on these, are portable.c.
**
** A value list is encoded into a flat byte message plus the duet objects it
** references (encode.c); the receiving state decodes it (decode.c).
** Encoding never runs Lua code and retains objects only once it has
** succeeded, so an error half-way leaves nothing behind. Decoding checks
** every byte it reads: a malformed or truncated message raises an error,
** never a crash.
*/
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

/* ------------------------------------------------------------ per state */

/* What a state caches for transfers: its module and C-function name maps
** (rebuilt when package.loaded gains a key, and when a C function is not
** in them: see duet_map_lookup). */
typedef struct StateInfo {
  lua_Integer loaded_version;             /* bumped by package.loaded */
  lua_Integer maps_version;               /* version the maps were built at */
  const void *hook;                       /* our metatable on package.loaded */
} StateInfo;

static const char info_key = 'i';         /* registry: StateInfo userdata */
static const char hook_key = 'h';         /* registry: that metatable */
static const char modules_key = 'm';      /* registry: table -> name */
static const char cfuncs_key = 'c';       /* registry: cfunction -> {mod,k} */

static StateInfo *state_info(lua_State *L) {
  StateInfo *si;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &info_key) == LUA_TNIL) {
    lua_pop(L, 1);                        /* duet.core not opened here yet */
    duet_push_module(L);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &info_key);
  }
  si = (StateInfo *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return si;
}

/* __newindex of package.loaded: store, and note that maps are stale. */
static int loaded_newindex(lua_State *L) {
  StateInfo *si = (StateInfo *)lua_touserdata(L, lua_upvalueindex(1));
  lua_rawset(L, 1);
  si->loaded_version++;
  return 0;
}

/* Is loaded_version reliable: does package.loaded still have our hook?
** (The user may have set its metatable to nil or to another one since;
** the registry keeps ours alive, so the address cannot be reused.) */
static int still_hooked(lua_State *L, StateInfo *si) {
  int hooked = 0;
  if (si->hook == NULL) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getmetatable(L, -1)) {
    hooked = lua_topointer(L, -1) == si->hook;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return hooked;
}

/* Note module `mod` (at stack index mod, named by the string at name) in
** the maps: modules[mod] = name, cfuncs[f] = {name, key} for its C
** functions. The first name found wins. */
static void map_module(lua_State *L, int modules, int cfuncs, int name,
                       int mod) {
  lua_pushvalue(L, mod);
  if (modules && lua_rawget(L, modules) == LUA_TNIL) {
    lua_pushvalue(L, mod);
    lua_pushvalue(L, name);
    lua_rawset(L, modules);
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, mod)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) {
      lua_pushvalue(L, -1);
      if (lua_rawget(L, cfuncs) == LUA_TNIL) {
        lua_pushvalue(L, -2);
        lua_createtable(L, 2, 0);
        lua_pushvalue(L, name);
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, -5);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, cfuncs);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

/* Rebuild the table->module-name and C-function->name maps from
** package.loaded. */
static void build_maps(lua_State *L, StateInfo *si) {
  /* Lua's own names first: other modules often re-export its functions;
  ** then duet.core's, which a thread's state opens without package (rt
  ** re-exports rt.sleep, and more) */
  static const char *const std_modules[] = {
    "_G", "string", "table", "math", "io", "os", "coroutine", "utf8",
    "debug", "package", "duet.core", NULL
  };
  const char *const *std;
  int top = lua_gettop(L);
  int modules = top + 1, cfuncs = top + 2, loaded = top + 3;
  luaL_checkstack(L, 12, NULL);
  lua_newtable(L);
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  for (std = std_modules; *std; std++) {
    lua_pushstring(L, *std);
    if (lua_rawget(L, loaded) == LUA_TTABLE) {
      lua_pushstring(L, *std);
      map_module(L, modules, cfuncs, lua_gettop(L), lua_gettop(L) - 1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1))
      map_module(L, modules, cfuncs, lua_gettop(L) - 1, lua_gettop(L));
    lua_pop(L, 1);
  }
  /* duet's methods, named "@duet.Type" */
  duet_push_types(L);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      lua_pushfstring(L, "@%s", lua_tostring(L, -1));
      if (luaL_getmetatable(L, lua_tostring(L, -2)) == LUA_TTABLE
          && lua_getfield(L, -1, "__methods") == LUA_TTABLE)
        map_module(L, 0, cfuncs, lua_gettop(L) - 2, lua_gettop(L));
      lua_settop(L, loaded + 2);          /* types, key */
    }
  }
  lua_pop(L, 1);
  lua_pushvalue(L, cfuncs);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cfuncs_key);
  lua_pushvalue(L, modules);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &modules_key);
  lua_settop(L, top);
  si->maps_version = si->loaded_version;
}

int duet_map_lookup(lua_State *L, duet_Maps *mp, int idx, int which) {
  const void *key = which == DUET_MAP_MODULES ? &modules_key : &cfuncs_key;
  int slot = mp->slot + which;
  if (mp->si == NULL) mp->si = state_info(L);
  /* without our hook on package.loaded, rebuild once per encode */
  if (!mp->ready && (!still_hooked(L, mp->si)
                     || mp->si->maps_version != mp->si->loaded_version)) {
    build_maps(L, mp->si);
    mp->rebuilt = 1;
  }
  mp->ready = 1;
  if (lua_type(L, slot) == LUA_TNIL) {    /* once per encode */
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    lua_replace(L, slot);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, slot) != LUA_TNIL)
    return 1;                             /* name (or {mod, key}) on top */
  lua_pop(L, 1);
  /* A state gains C functions without package.loaded changing: a concept
  ** opened since adds its functions and its types' methods, rt keeps its
  ** fields. So an unknown C function rebuilds the maps once before it is
  ** refused. */
  if (which == DUET_MAP_CFUNCS && !mp->rebuilt) {
    build_maps(L, mp->si);
    mp->rebuilt = 1;
    lua_pushnil(L);
    lua_replace(L, mp->slot + DUET_MAP_MODULES);
    lua_pushnil(L);
    lua_replace(L, slot);
    return duet_map_lookup(L, mp, idx, which);
  }
  return 0;
}

/* ------------------------------------------------------------- messages */

void duet_message_free(duet_Message *m) {
  size_t k;
  if (m == NULL) return;
  for (k = 0; k < m->nrefs; k++) {
    if (m->refs[k] == NULL) continue;     /* a holder's weak self-reference */
    if (m->refs[k]->type->moves)          /* never decoded: back home */
      m->refs[k]->type->moves->unsent(m->refs[k]);
    duet_release(m->refs[k]);
  }
  free(m);
}

duet_Message *duet_message_copy(const duet_Message *m) {
  size_t size = sizeof *m + m->nrefs * sizeof(duet_Object *) + m->len, k;
  duet_Message *c = (duet_Message *)malloc(size);
  if (c == NULL) return NULL;
  memcpy(c, m, size);
  c->refs = (duet_Object **)(c + 1);
  c->data = (char *)(c->refs + c->nrefs);
  for (k = 0; k < c->nrefs; k++) duet_retain(c->refs[k]);
  return c;
}

static int box_gc(lua_State *L) {
  duet_Message **box = (duet_Message **)lua_touserdata(L, 1);
  size_t i, n = lua_rawlen(L, 1) / sizeof *box;
  for (i = 0; i < n; i++) {
    duet_message_free(box[i]);
    box[i] = NULL;
  }
  return 0;
}

duet_Message **duet_new_box(lua_State *L, int n) {
  duet_Message **box = (duet_Message **)lua_newuserdatauv(
      L, (size_t)n * sizeof *box, 0);
  memset(box, 0, (size_t)n * sizeof *box);
  if (luaL_newmetatable(L, "duet.box")) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return box;
}

int duet_transfer_open(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &info_key) != LUA_TNIL) {
    lua_pop(L, 1);                        /* loaded twice: keep the first */
    return 0;
  }
  lua_pop(L, 1);
  StateInfo *si = (StateInfo *)lua_newuserdatauv(L, sizeof(StateInfo), 0);
  memset(si, 0, sizeof *si);
  si->maps_version = -1;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (!lua_getmetatable(L, -1)) {          /* watch for new modules */
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, loaded_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    si->hook = lua_topointer(L, -1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &hook_key);
    lua_setmetatable(L, -2);
  }
  else lua_pop(L, 1);
  lua_pop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &info_key);
  return 0;
}
