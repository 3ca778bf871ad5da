/*
** modcache.c — compiled Lua modules shared by the thread states.
**
** Every new thread state that requires a Lua module (duet itself, or the
** user's json) would parse its source again: 60-140 us a file, more than
** the rest of a spawn. Thread states search with a package searcher placed
** before Lua's own, which loads a file's bytecode from a process-wide cache
** (filled by the first state that needs it) when the file's size and
** modification time are unchanged. The chunk keeps its debug information,
** so tracebacks are the same as from the source.
*/
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "duet.h"

typedef struct Entry {
  char *path;
  off_t size;
  struct timespec mtime;
  char *code;                             /* lua_dump output */
  size_t len;
  struct Entry *next;
} Entry;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static Entry *cache;

static int same_file(const Entry *e, const struct stat *st) {
  return e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec
         && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* A private copy of the cached bytecode for `path`, or NULL. */
static char *lookup(const char *path, const struct stat *st, size_t *len) {
  Entry *e;
  char *copy = NULL;
  pthread_mutex_lock(&cache_mu);
  for (e = cache; e; e = e->next)
    if (strcmp(e->path, path) == 0 && same_file(e, st)) {
      if ((copy = (char *)malloc(e->len)) != NULL) {
        memcpy(copy, e->code, e->len);
        *len = e->len;
      }
      break;
    }
  pthread_mutex_unlock(&cache_mu);
  return copy;
}

/* Keep `code` (malloc'd; the cache owns it from now on) for `path`. */
static void store(const char *path, const struct stat *st, char *code,
                  size_t len) {
  Entry *e = (Entry *)calloc(1, sizeof *e), **p;
  if (e == NULL || (e->path = strdup(path)) == NULL) {
    free(e);
    free(code);
    return;
  }
  e->code = code;
  e->len = len;
  e->size = st->st_size;
  e->mtime = st->st_mtim;
  pthread_mutex_lock(&cache_mu);
  for (p = &cache; *p && strcmp((*p)->path, path) != 0; p = &(*p)->next) {}
  if (*p) {                               /* the file changed: replace it */
    Entry *old = *p;
    e->next = old->next;
    *p = e;
    free(old->path);
    free(old->code);
    free(old);
  }
  else {
    e->next = cache;
    cache = e;
  }
  pthread_mutex_unlock(&cache_mu);
}

/* package.searchers entry: (name) -> loader, path; or a message. */
static int searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1), *path;
  struct stat st;
  char *code;
  size_t len = 0;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushstring(L, name);
  lua_getfield(L, -3, "path");
  lua_call(L, 2, 1);
  path = lua_tostring(L, -1);
  if (path == NULL || stat(path, &st) != 0) {
    lua_pushliteral(L, "");               /* Lua's own searcher explains */
    return 1;
  }
  if ((code = lookup(path, &st, &len)) != NULL) {
    int status = luaL_loadbufferx(L, code, len, path, "b");
    free(code);
    if (status != LUA_OK) return lua_error(L);
  }
  else {
    if (luaL_loadfilex(L, path, "t") != LUA_OK) return lua_error(L);
    if ((code = duet_dump(L, &len)) != NULL) store(path, &st, code, len);
  }
  lua_pushstring(L, path);
  return 2;
}

void duet_modcache_install(lua_State *L, int pkg) {
  lua_Integer i;
  lua_getfield(L, pkg, "searchers");
  for (i = (lua_Integer)lua_rawlen(L, -1); i >= 2; i--) {
    lua_rawgeti(L, -1, i);                /* make room after preload */
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 1);
}
