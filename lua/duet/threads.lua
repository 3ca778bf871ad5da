-- duet.threads: the OS-threads runtime. Its table is built in C
-- (csrc/threadsrt.c), so that a thread's state gets it without package or
-- a search of the path; this file hands the same table to require.
return require("duet.core").threads_runtime()
