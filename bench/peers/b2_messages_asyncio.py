"""B2 table messages, asyncio + asyncio.Queue peer of bench/b2_messages.lua.

Same work as b2_messages_threads.py, with tasks instead of threads.
"""
import asyncio

import peerlib


async def tables(quick, case_id):
    n = 20000 if quick else 200000
    q = asyncio.Queue()

    async def producer():
        for i in range(1, n + 1):
            await q.put({"id": i, "name": "item" + str(i), "values": [1, 2, 3]})

    async def consumer():
        ids = values = 0
        for _ in range(n):
            m = await q.get()
            ids += m["id"]
            values += m["values"][2]
            assert m["name"] == "item" + str(m["id"]), "message garbled"
        return ids + values

    t0 = peerlib.now()
    prod = asyncio.create_task(producer())
    cons = asyncio.create_task(consumer())
    await prod
    s = await cons
    dt = peerlib.now() - t0
    peerlib.check("sum", s, n * (n + 1) // 2 + 3 * n)
    peerlib.result(case_id, "rate", n / dt, "msgs/s")


if __name__ == "__main__":
    peerlib.main("B2", {"tables": tables}, ["tables"])
