"""B4 executor, concurrent.futures.ThreadPoolExecutor peer of bench/b4_executor.lua.

100,000 tasks (--quick: 10,000) of the same function x * 2 on 4 workers,
every result collected in order, from creating the pool to its shutdown.
Metric: us per task.
"""
from concurrent.futures import ThreadPoolExecutor

import peerlib


def double(x):
    return x * 2


def tasks(quick, case_id):
    n = 10000 if quick else 100000
    t0 = peerlib.now()
    ex = ThreadPoolExecutor(max_workers=4)
    futures = [ex.submit(double, i) for i in range(1, n + 1)]
    s = 0
    for f in futures:
        s += f.result()
    ex.shutdown(wait=True)
    dt = peerlib.now() - t0
    peerlib.check("sum", s, n * (n + 1))
    peerlib.result(case_id, "per_task", dt / n * 1e6, "us")


if __name__ == "__main__":
    peerlib.main("B4", {"tasks": tasks}, ["tasks"])
