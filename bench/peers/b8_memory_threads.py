"""B8 memory and idle waiting, Python threading peer of bench/b8_memory.lua.

idle1k / idle10k: 1,000 / 10,000 threads (--quick: 100 / 1,000) each
blocked in get() on one queue.Queue; VmRSS read before starting them and
once all have signalled they are about to block (plus 50 ms); KB of RSS per
idle thread. sleep10k: 10,000 threads (--quick: 1,000) each sleeping 0.1 s;
seconds until all are joined.
"""
import gc
import threading
import time
from queue import Queue

import peerlib


def idle_case(full, quick_n):
    def case(quick, case_id):
        n = quick_n if quick else full
        q, ready = Queue(), Queue()
        results = [0] * n

        def waiter(slot):
            ready.put(True)
            results[slot] = q.get()

        gc.collect()
        before = peerlib.rss_kb()
        threads = []
        for i in range(n):
            t = threading.Thread(target=waiter, args=(i,))
            t.start()
            threads.append(t)
        for _ in range(n):
            ready.get()
        time.sleep(0.05)
        after = peerlib.rss_kb()
        for i in range(1, n + 1):
            q.put(i)
        for t in threads:
            t.join()
        peerlib.check("sum", sum(results), n * (n + 1) // 2)
        peerlib.result(case_id, "rss_per_thread", (after - before) / n, "KB")
    return case


def sleep10k(quick, case_id):
    n = 1000 if quick else 10000
    t0 = peerlib.now()
    threads = []
    for _ in range(n):
        t = threading.Thread(target=time.sleep, args=(0.1,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    dt = peerlib.now() - t0
    peerlib.result(case_id, "total", dt, "s")


if __name__ == "__main__":
    peerlib.main("B8", {
        "idle1k": idle_case(1000, 100),
        "idle10k": idle_case(10000, 1000),
        "sleep10k": sleep10k,
    }, ["idle1k", "idle10k", "sleep10k"])
