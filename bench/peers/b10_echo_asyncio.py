"""B10 echo over loopback, asyncio streams peer of bench/b10_echo.lua.

asyncio.start_server echoes lines (a task per connection); C client tasks
connect with asyncio.open_connection and each sends 100 small lines,
waiting for every echo; the run ends when every client and every server
task has finished. Cases c10, c100, c1000 (--quick: 10, 100, 200).
Metrics: messages/s and peak RSS growth per connection (KB).
"""
import asyncio
import gc
import socket

import peerlib

MESSAGES = 100


async def handler(reader, writer, handlers):
    handlers.append(asyncio.current_task())
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def client(port, ident, messages):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(1, messages + 1):
        msg = b"hello %d %d\n" % (ident, i)
        writer.write(msg)
        await writer.drain()
        echo = await reader.readline()
        if echo != msg:
            raise AssertionError("bad echo %r" % echo)
    writer.close()
    await writer.wait_closed()
    return messages


def echo_case(full, quick_n):
    async def case(quick, case_id):
        n = quick_n if quick else full
        handlers = []
        server = await asyncio.start_server(lambda r, w: handler(r, w, handlers),
                                            "127.0.0.1", 0, backlog=min(n, 4096))
        port = server.sockets[0].getsockname()[1]
        gc.collect()
        before = peerlib.rss_kb()
        t0 = peerlib.now()
        clients = [asyncio.create_task(client(port, i + 1, MESSAGES)) for i in range(n)]
        total = 0
        for t in clients:
            total += await t
        await asyncio.gather(*handlers)
        dt = peerlib.now() - t0
        server.close()
        await server.wait_closed()
        peerlib.check("messages", total, n * MESSAGES)
        peerlib.result(case_id, "rate", total / dt, "msgs/s")
        peerlib.result(case_id, "rss_per_conn", (peerlib.rss_kb("VmHWM") - before) / n, "KB")
    return case


if __name__ == "__main__":
    peerlib.main("B10", {
        "c10": echo_case(10, 10),
        "c100": echo_case(100, 100),
        "c1000": echo_case(1000, 200),
    }, ["c10", "c100", "c1000"])
