"""B4 executor, asyncio peer of bench/b4_executor.lua.

asyncio has no executor for coroutines, so this is the smallest one: 4
worker tasks take (function, argument, future) from an asyncio.Queue and
set each future's result; submit = a new future + put_nowait. 100,000 tasks
(--quick: 10,000) of x * 2, every result awaited in order, from starting the
workers to stopping them. Metric: us per task.
"""
import asyncio

import peerlib


def double(x):
    return x * 2


class Executor:
    def __init__(self, max_workers):
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._workers = [asyncio.create_task(self._work()) for _ in range(max_workers)]

    async def _work(self):
        while True:
            item = await self._queue.get()
            if item is None:
                return
            fn, arg, fut = item
            try:
                fut.set_result(fn(arg))
            except Exception as e:  # a task's error goes to its future
                fut.set_exception(e)

    def submit(self, fn, arg):
        fut = self._loop.create_future()
        self._queue.put_nowait((fn, arg, fut))
        return fut

    async def shutdown(self):
        for _ in self._workers:
            self._queue.put_nowait(None)
        await asyncio.gather(*self._workers)


async def tasks(quick, case_id):
    n = 10000 if quick else 100000
    t0 = peerlib.now()
    ex = Executor(max_workers=4)
    futures = [ex.submit(double, i) for i in range(1, n + 1)]
    s = 0
    for f in futures:
        s += await f
    await ex.shutdown()
    dt = peerlib.now() - t0
    peerlib.check("sum", s, n * (n + 1))
    peerlib.result(case_id, "per_task", dt / n * 1e6, "us")


if __name__ == "__main__":
    peerlib.main("B4", {"tasks": tasks}, ["tasks"])
