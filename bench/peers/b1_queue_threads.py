"""B1 queue ping, Python threading + queue.Queue peer of bench/b1_queue.lua.

Cases (N = 1,000,000 integers; --quick: 100,000): unbounded, bounded
(maxsize 1000), pairs2/pairs4 (2 or 4 producer/consumer pairs, each on its
own Queue(1000), N in total), batch (lists of 100 integers: queue.Queue has
no put_many, a list per put is the Python way). Metric: items/s.
"""
import threading
from queue import Queue

import peerlib


class Worker(threading.Thread):
    """A thread that keeps its target's return value for join()."""

    def __init__(self, target, *args):
        super().__init__(target=self._run, args=(target, args))
        self.value = None

    def _run(self, target, args):
        self.value = target(*args)


def producer(q, first, n):
    for i in range(first, first + n):
        q.put(i)


def consumer(q, n):
    s = 0
    for _ in range(n):
        s += q.get()
    return s


def pairs_case(npairs, maxsize):
    def case(quick, case_id):
        n = 100000 if quick else 1000000
        per = n // npairs
        queues = [Queue(maxsize) for _ in range(npairs)]
        t0 = peerlib.now()
        threads = []
        for p in range(npairs):
            prod = Worker(producer, queues[p], p * per + 1, per)
            cons = Worker(consumer, queues[p], per)
            prod.start()
            cons.start()
            threads.append((prod, cons))
        total_sum = 0
        for prod, cons in threads:
            prod.join()
            cons.join()
            total_sum += cons.value
        dt = peerlib.now() - t0
        total = per * npairs
        peerlib.check("sum", total_sum, total * (total + 1) // 2)
        peerlib.result(case_id, "rate", total / dt, "items/s")
    return case


def batch_producer(q, n, batch):
    for first in range(1, n + 1, batch):
        q.put([first + i for i in range(batch)])


def batch_consumer(q, n):
    s = got = 0
    while got < n:
        items = q.get()
        for x in items:
            s += x
        got += len(items)
    return s


def batch(quick, case_id):
    n = 100000 if quick else 1000000
    q = Queue()
    t0 = peerlib.now()
    prod = Worker(batch_producer, q, n, 100)
    cons = Worker(batch_consumer, q, n)
    prod.start()
    cons.start()
    prod.join()
    cons.join()
    dt = peerlib.now() - t0
    peerlib.check("sum", cons.value, n * (n + 1) // 2)
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
