/*
** held.c — the lockcheck build's count of pthread mutexes each OS thread
** holds (see wrap.sh). The module's pthread_mutex_lock and _unlock calls
** are routed here by -Wl,--wrap; pthread_cond_wait gives the mutex back
** before it returns, so it does not change the count.
*/
#include <execinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* initial-exec: the trampolines read it with one %fs-relative load */
__attribute__((visibility("hidden"), tls_model("initial-exec")))
__thread int duet_lockcheck_held;

int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __real_pthread_mutex_unlock(pthread_mutex_t *m);
int __wrap_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_unlock(pthread_mutex_t *m);
void duet_lockcheck_fail(const char *fn);

int __wrap_pthread_mutex_lock(pthread_mutex_t *m) {
  int r = __real_pthread_mutex_lock(m);
  if (r == 0) duet_lockcheck_held++;
  return r;
}

int __wrap_pthread_mutex_unlock(pthread_mutex_t *m) {
  int r = __real_pthread_mutex_unlock(m);
  if (r == 0) duet_lockcheck_held--;
  return r;
}

/* Reached from a trampoline, in place of the Lua API function `fn`. */
__attribute__((visibility("hidden"), noreturn))
void duet_lockcheck_fail(const char *fn) {
  void *frames[32];
  int n = backtrace(frames, 32);
  fprintf(stderr, "lockcheck: %s called while this thread holds %d duet "
          "mutex(es)\n", fn, duet_lockcheck_held);
  backtrace_symbols_fd(frames, n, 2);
  abort();
}
