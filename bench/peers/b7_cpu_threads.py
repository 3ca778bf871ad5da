"""B7 CPU scaling, Python threading peer of bench/b7_cpu.lua.

Midpoint Riemann sum of sin over [0, pi] in 20,000,000 steps (--quick:
1,000,000). scaling: the loop on 1 thread, then split across 2 threads:
seconds for each and the speedup t1 / t2 (the GIL keeps it near 1 or
below). plain (the loop in the main thread, no threading) is not in the
table, to keep `make bench` under 5 minutes; run it with --case plain.
"""
import math
import threading

import peerlib


def partial(first, last, h, out=None, slot=0):
    sin = math.sin
    s = 0.0
    for i in range(first, last):
        s += sin((i + 0.5) * h)
    if out is not None:
        out[slot] = s
    return s


def steps(quick):
    return 1000000 if quick else 20000000


def check_sum(s, h):
    if abs(s * h - 2) > 1e-6:
        raise AssertionError("wrong result: integral = %.12g, expected 2" % (s * h))


def on_threads(n, nthreads):
    h = math.pi / n
    out = [0.0] * nthreads
    t0 = peerlib.now()
    threads = [threading.Thread(target=partial,
                                args=(k * n // nthreads, (k + 1) * n // nthreads, h, out, k))
               for k in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = peerlib.now() - t0
    check_sum(sum(out), h)
    return dt


def plain(quick, case_id):
    n = steps(quick)
    h = math.pi / n
    t0 = peerlib.now()
    s = partial(0, n, h)
    dt = peerlib.now() - t0
    check_sum(s, h)
    peerlib.result(case_id, "t1", dt, "s")


def scaling(quick, case_id):
    n = steps(quick)
    t1 = on_threads(n, 1)
    peerlib.result(case_id, "t1", t1, "s")
    t2 = on_threads(n, 2)
    peerlib.result(case_id, "t2", t2, "s")
    peerlib.result(case_id, "speedup", t1 / t2, "x")


if __name__ == "__main__":
    peerlib.main("B7", {"plain": plain, "scaling": scaling}, ["plain", "scaling"])
