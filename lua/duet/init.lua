-- duet: one concurrency API, two runtimes (OS threads and coroutines).
-- The module's table is built in C (csrc/duetmod.c), so that a thread's
-- state gets it without package or a search of the path; this file hands
-- the same table to require.
return require("duet.core").duet_module()
