"""B3 spawn + join, Python threading peer of bench/b3_spawn.lua.

Start N threads running an empty function, then join them all: spawn1k
(1,000; --quick: 100), spawn10k (10,000; --quick: 1,000). Metric: us per
thread. (tasks100k is for tasks only: see b3_spawn_asyncio.py.)
"""
import threading

import peerlib


def empty():
    pass


def spawn_case(full, quick_n):
    def case(quick, case_id):
        n = quick_n if quick else full
        t0 = peerlib.now()
        threads = []
        for _ in range(n):
            t = threading.Thread(target=empty)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        dt = peerlib.now() - t0
        peerlib.result(case_id, "per_spawn", dt / n * 1e6, "us")
    return case


if __name__ == "__main__":
    peerlib.main("B3", {
        "spawn1k": spawn_case(1000, 100),
        "spawn10k": spawn_case(10000, 1000),
    }, ["spawn1k", "spawn10k"])
