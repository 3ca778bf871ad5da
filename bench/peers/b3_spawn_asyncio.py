"""B3 spawn + join, asyncio peer of bench/b3_spawn.lua.

Create N tasks running an empty coroutine, then await them all: spawn1k,
spawn10k, tasks100k (100,000; --quick: 10,000). Metric: us per task.
"""
import asyncio

import peerlib


async def empty():
    pass


def spawn_case(full, quick_n):
    async def case(quick, case_id):
        n = quick_n if quick else full
        t0 = peerlib.now()
        tasks = [asyncio.create_task(empty()) for _ in range(n)]
        for t in tasks:
            await t
        dt = peerlib.now() - t0
        peerlib.result(case_id, "per_spawn", dt / n * 1e6, "us")
    return case


if __name__ == "__main__":
    peerlib.main("B3", {
        "spawn1k": spawn_case(1000, 100),
        "spawn10k": spawn_case(10000, 1000),
        "tasks100k": spawn_case(100000, 10000),
    }, ["spawn1k", "spawn10k", "tasks100k"])
