"""B8 memory and idle waiting, asyncio peer of bench/b8_memory.lua.

idle1k / idle10k: 1,000 / 10,000 tasks (--quick: 100 / 1,000) each blocked
in get() on one asyncio.Queue; KB of RSS per idle task, read as in
b8_memory_threads.py. sleep10k: 10,000 tasks (--quick: 1,000) each in
asyncio.sleep(0.1); seconds until all are awaited.
"""
import asyncio
import gc

import peerlib


def idle_case(full, quick_n):
    async def case(quick, case_id):
        n = quick_n if quick else full
        q, ready = asyncio.Queue(), asyncio.Queue()

        async def waiter():
            ready.put_nowait(True)
            return await q.get()

        gc.collect()
        before = peerlib.rss_kb()
        tasks = [asyncio.create_task(waiter()) for _ in range(n)]
        for _ in range(n):
            await ready.get()
        await asyncio.sleep(0.05)
        after = peerlib.rss_kb()
        for i in range(1, n + 1):
            q.put_nowait(i)
        s = 0
        for t in tasks:
            s += await t
        peerlib.check("sum", s, n * (n + 1) // 2)
        peerlib.result(case_id, "rss_per_thread", (after - before) / n, "KB")
    return case


async def sleep10k(quick, case_id):
    n = 1000 if quick else 10000
    t0 = peerlib.now()
    tasks = [asyncio.create_task(asyncio.sleep(0.1)) for _ in range(n)]
    for t in tasks:
        await t
    dt = peerlib.now() - t0
    peerlib.result(case_id, "total", dt, "s")


if __name__ == "__main__":
    peerlib.main("B8", {
        "idle1k": idle_case(1000, 100),
        "idle10k": idle_case(10000, 1000),
        "sleep10k": sleep10k,
    }, ["idle1k", "idle10k", "sleep10k"])
