"""B1 queue ping, asyncio + asyncio.Queue peer of bench/b1_queue.lua.

Same cases as b1_queue_threads.py, with tasks instead of threads.
"""
import asyncio

import peerlib


async def producer(q, first, n):
    for i in range(first, first + n):
        await q.put(i)


async def consumer(q, n):
    s = 0
    for _ in range(n):
        s += await q.get()
    return s


def pairs_case(npairs, maxsize):
    async def case(quick, case_id):
        n = 100000 if quick else 1000000
        per = n // npairs
        queues = [asyncio.Queue(maxsize) for _ in range(npairs)]
        t0 = peerlib.now()
        tasks = []
        for p in range(npairs):
            prod = asyncio.create_task(producer(queues[p], p * per + 1, per))
            cons = asyncio.create_task(consumer(queues[p], per))
            tasks.append((prod, cons))
        total_sum = 0
        for prod, cons in tasks:
            await prod
            total_sum += await cons
        dt = peerlib.now() - t0
        total = per * npairs
        peerlib.check("sum", total_sum, total * (total + 1) // 2)
        peerlib.result(case_id, "rate", total / dt, "items/s")
    return case


async def batch_producer(q, n, batch):
    for first in range(1, n + 1, batch):
        await q.put([first + i for i in range(batch)])


async def batch_consumer(q, n):
    s = got = 0
    while got < n:
        items = await q.get()
        for x in items:
            s += x
        got += len(items)
    return s


async def batch(quick, case_id):
    n = 100000 if quick else 1000000
    q = asyncio.Queue()
    t0 = peerlib.now()
    prod = asyncio.create_task(batch_producer(q, n, 100))
    cons = asyncio.create_task(batch_consumer(q, n))
    await prod
    s = await cons
    dt = peerlib.now() - t0
    peerlib.check("sum", s, n * (n + 1) // 2)
    peerlib.result(case_id, "rate", n / dt, "items/s")


CASES = {
    "unbounded": pairs_case(1, 0),
    "bounded": pairs_case(1, 1000),
    "pairs2": pairs_case(2, 1000),
    "pairs4": pairs_case(4, 1000),
    "batch": batch,
}

if __name__ == "__main__":
    peerlib.main("B1", CASES, ["unbounded", "bounded", "pairs2", "pairs4", "batch"])
