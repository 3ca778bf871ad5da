"""B7 CPU scaling, asyncio peer of bench/b7_cpu.lua.

The same Riemann sum as b7_cpu_threads.py, on 1 task, then split across 2
tasks: seconds for each and the speedup t1 / t2 (one core: near 1).
"""
import asyncio
import math

import peerlib
from b7_cpu_threads import check_sum, partial, steps


async def apartial(first, last, h):
    return partial(first, last, h)


async def on_tasks(n, ntasks):
    h = math.pi / n
    t0 = peerlib.now()
    tasks = [asyncio.create_task(apartial(k * n // ntasks, (k + 1) * n // ntasks, h))
             for k in range(ntasks)]
    s = 0.0
    for t in tasks:
        s += await t
    dt = peerlib.now() - t0
    check_sum(s, h)
    return dt


async def scaling(quick, case_id):
    n = steps(quick)
    t1 = await on_tasks(n, 1)
    peerlib.result(case_id, "t1", t1, "s")
    t2 = await on_tasks(n, 2)
    peerlib.result(case_id, "t2", t2, "s")
    peerlib.result(case_id, "speedup", t1 / t2, "x")


if __name__ == "__main__":
    peerlib.main("B7", {"scaling": scaling}, ["scaling"])
