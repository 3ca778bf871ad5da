"""B5 locks, Python threading peer of bench/b5_lock.lua.

uncontended: 1,000,000 lock.acquire() + lock.release() pairs in one thread
(--quick: 100,000); ns per pair. incr: 2 threads x 200,000 increments of a
shared dict value, each under the lock (--quick: 2 x 20,000); total seconds.
"""
import threading

import peerlib


def uncontended(quick, case_id):
    n = 100000 if quick else 1000000
    lock = threading.Lock()
    t0 = peerlib.now()
    for _ in range(n):
        lock.acquire()
        lock.release()
    dt = peerlib.now() - t0
    peerlib.result(case_id, "per_pair", dt / n * 1e9, "ns")


def incr(quick, case_id):
    n = 20000 if quick else 200000
    lock = threading.Lock()
    counter = {"n": 0}

    def work():
        for _ in range(n):
            lock.acquire()
            counter["n"] = counter["n"] + 1
            lock.release()

    t0 = peerlib.now()
    a = threading.Thread(target=work)
    b = threading.Thread(target=work)
    a.start()
    b.start()
    a.join()
    b.join()
    dt = peerlib.now() - t0
    peerlib.check("counter", counter["n"], 2 * n)
    peerlib.result(case_id, "total", dt, "s")


if __name__ == "__main__":
    peerlib.main("B5", {"uncontended": uncontended, "incr": incr}, ["uncontended", "incr"])
