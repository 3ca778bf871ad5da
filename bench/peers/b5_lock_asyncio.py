"""B5 locks, asyncio peer of bench/b5_lock.lua.

uncontended: 1,000,000 ``await lock.acquire()`` + ``lock.release()`` pairs
in one task (--quick: 100,000); ns per pair. incr: 2 tasks x 200,000
increments of a shared dict value, each under the lock (--quick: 2 x
20,000); total seconds.
"""
import asyncio

import peerlib


async def uncontended(quick, case_id):
    n = 100000 if quick else 1000000
    lock = asyncio.Lock()
    t0 = peerlib.now()
    for _ in range(n):
        await lock.acquire()
        lock.release()
    dt = peerlib.now() - t0
    peerlib.result(case_id, "per_pair", dt / n * 1e9, "ns")


async def incr(quick, case_id):
    n = 20000 if quick else 200000
    lock = asyncio.Lock()
    counter = {"n": 0}

    async def work():
        for _ in range(n):
            await lock.acquire()
            counter["n"] = counter["n"] + 1
            lock.release()

    t0 = peerlib.now()
    a = asyncio.create_task(work())
    b = asyncio.create_task(work())
    await a
    await b
    dt = peerlib.now() - t0
    peerlib.check("counter", counter["n"], 2 * n)
    peerlib.result(case_id, "total", dt, "s")


if __name__ == "__main__":
    peerlib.main("B5", {"uncontended": uncontended, "incr": incr}, ["uncontended", "incr"])
