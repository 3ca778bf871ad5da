"""B2 table messages, Python threading + queue.Queue peer of bench/b2_messages.lua.

200,000 dicts {'id': i, 'name': 'item' + str(i), 'values': [1, 2, 3]}
(--quick: 20,000) from one producer thread to one consumer thread through
an unbounded queue.Queue (Python passes references, nothing is copied).
Metric: msgs/s.
"""
import threading
from queue import Queue

import peerlib


def tables(quick, case_id):
    n = 20000 if quick else 200000
    q = Queue()
    out = {}

    def producer():
        for i in range(1, n + 1):
            q.put({"id": i, "name": "item" + str(i), "values": [1, 2, 3]})

    def consumer():
        ids = values = 0
        for _ in range(n):
            m = q.get()
            ids += m["id"]
            values += m["values"][2]
            assert m["name"] == "item" + str(m["id"]), "message garbled"
        out["sum"] = ids + values

    t0 = peerlib.now()
    prod = threading.Thread(target=producer)
    cons = threading.Thread(target=consumer)
    prod.start()
    cons.start()
    prod.join()
    cons.join()
    dt = peerlib.now() - t0
    peerlib.check("sum", out["sum"], n * (n + 1) // 2 + 3 * n)
    peerlib.result(case_id, "rate", n / dt, "msgs/s")


if __name__ == "__main__":
    peerlib.main("B2", {"tables": tables}, ["tables"])
