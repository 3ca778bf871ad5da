"""B10 echo over loopback, Python threading peer of bench/b10_echo.lua.

A server with one thread per connection echoes lines; C client threads in
the same process connect at once and each sends 100 small lines, waiting
for every echo. Cases c10, c100, c1000 (--quick: 10, 100, 200). Metrics:
messages/s and peak RSS growth per connection (KB), as in the Lua script.
"""
import gc
import socket
import threading

import peerlib

MESSAGES = 100


def handler(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = conn.makefile("rb")
    while True:
        line = f.readline()
        if not line:
            break
        conn.sendall(line)
    f.close()
    conn.close()


def server(srv, n):
    handlers = []
    for _ in range(n):
        conn, _ = srv.accept()
        t = threading.Thread(target=handler, args=(conn,))
        t.start()
        handlers.append(t)
    srv.close()
    for t in handlers:
        t.join()


def client(port, ident, messages, done, slot):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb")
    for i in range(1, messages + 1):
        msg = b"hello %d %d\n" % (ident, i)
        sock.sendall(msg)
        echo = f.readline()
        if echo != msg:
            raise AssertionError("bad echo %r" % echo)
    f.close()
    sock.close()
    done[slot] = messages


def echo_case(full, quick_n):
    def case(quick, case_id):
        n = quick_n if quick else full
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.bind(("127.0.0.1", 0))
        srv.listen(min(n, 4096))
        port = srv.getsockname()[1]
        gc.collect()
        before = peerlib.rss_kb()
        done = [0] * n
        t0 = peerlib.now()
        srv_thread = threading.Thread(target=server, args=(srv, n))
        srv_thread.start()
        clients = [threading.Thread(target=client, args=(port, i + 1, MESSAGES, done, i))
                   for i in range(n)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        srv_thread.join()
        dt = peerlib.now() - t0
        total = sum(done)
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
