"""BP, concurrent.futures.ProcessPoolExecutor peer of bench/bp_process.lua.

tasks: 10,000 tasks (--quick: 2,000) of x * 2 on 2 worker processes, every
result collected in order, from creating the pool to its shutdown (us per
task). start: a new pool of 1, one empty task, shutdown (ms each).
riemann: the sin sum in 20,000,000 steps (--quick: 1,000,000) on 1, then
2 processes (seconds, speedup).
"""
import math
from concurrent.futures import ProcessPoolExecutor

import peerlib


def double(x):
    return x * 2


def nothing():
    return None


def partial(first, last, h):
    sin = math.sin
    s = 0.0
    for i in range(first, last):
        s += sin((i + 0.5) * h)
    return s


def tasks(quick, case_id):
    n = 2000 if quick else 10000
    t0 = peerlib.now()
    ex = ProcessPoolExecutor(max_workers=2)
    futures = [ex.submit(double, i) for i in range(1, n + 1)]
    s = 0
    for f in futures:
        s += f.result()
    ex.shutdown(wait=True)
    dt = peerlib.now() - t0
    peerlib.check("sum", s, n * (n + 1))
    peerlib.result(case_id, "per_task", dt / n * 1e6, "us")
    peerlib.result(case_id, "rate", n / dt, "tasks/s")


def start(quick, case_id):
    n = 5 if quick else 20
    t0 = peerlib.now()
    for _ in range(n):
        ex = ProcessPoolExecutor(max_workers=1)
        ex.submit(nothing).result()
        ex.shutdown(wait=True)
    peerlib.result(case_id, "per_start", (peerlib.now() - t0) / n * 1e3, "ms")


def on_processes(n, nproc):
    h = math.pi / n
    t0 = peerlib.now()
    ex = ProcessPoolExecutor(max_workers=nproc)
    futs = [ex.submit(partial, k * n // nproc, (k + 1) * n // nproc, h)
            for k in range(nproc)]
    s = sum(f.result() for f in futs)
    ex.shutdown(wait=True)
    dt = peerlib.now() - t0
    if abs(s * h - 2) > 1e-6:
        raise AssertionError("wrong result: %r" % (s * h))
    return dt


def riemann(quick, case_id):
    n = 1000000 if quick else 20000000
    t1 = on_processes(n, 1)
    peerlib.result(case_id, "t1", t1, "s")
    t2 = on_processes(n, 2)
    peerlib.result(case_id, "t2", t2, "s")
    peerlib.result(case_id, "speedup", t1 / t2, "x")


if __name__ == "__main__":
    peerlib.main("BP", {"tasks": tasks, "start": start, "riemann": riemann},
                 ["tasks", "start", "riemann"])
