"""B9 token bucket, asyncio peer of bench/b9_tokenbucket.lua.

The seed's refill-thread TokenBucket made asyncio: an asyncio.Queue of
tokens filled by a refill task (1,000 tokens every 1 ms), request() =
get_nowait(). 4 tasks each call request() 50,000 times (--quick: 10,000);
they never await in between, so (as in any cooperative runtime) the refill
task only runs between them. Metrics: request() calls/s, tokens granted/s.
"""
import asyncio

import peerlib

_token = object()


class TokenBucket:
    def __init__(self, refill_period, refill_tokens, max_tokens):
        self._refill_period = refill_period
        self._refill_tokens = refill_tokens
        self._bucket = asyncio.Queue(maxsize=max_tokens)
        self._refill_task = None
        self._stop_event = asyncio.Event()

    def start(self):
        self._refill_task = asyncio.create_task(self._refill_target())

    async def stop(self):
        self._stop_event.set()
        await self._refill_task

    def request(self):
        try:
            self._bucket.get_nowait()
        except asyncio.QueueEmpty:
            return 'denied'
        else:
            return 'success'

    async def _refill_target(self):
        while not self._stop_event.is_set():
            for _ in range(self._refill_tokens):
                try:
                    self._bucket.put_nowait(_token)
                except asyncio.QueueFull:
                    break
            await asyncio.sleep(self._refill_period)


PERIOD, TOKENS, TASKS = 0.001, 1000, 4


async def take4(quick, case_id):
    n = 10000 if quick else 50000
    created = peerlib.now()
    tb = TokenBucket(refill_period=PERIOD, refill_tokens=TOKENS, max_tokens=TOKENS)
    tb.start()
    await asyncio.sleep(0)  # let the first refill run, as the thread version does

    async def taker():
        g = 0
        for _ in range(n):
            if tb.request() == 'success':
                g += 1
        return g

    t0 = peerlib.now()
    tasks = [asyncio.create_task(taker()) for _ in range(TASKS)]
    total = 0
    for t in tasks:
        total += await t
    dt = peerlib.now() - t0
    allowed = TOKENS * (1 + (peerlib.now() - created) / PERIOD)
    await tb.stop()
    if total > allowed:
        raise AssertionError("wrong result: %d tokens granted, at most %d allowed" % (total, allowed))
    peerlib.result(case_id, "calls", TASKS * n / dt, "calls/s")
    peerlib.result(case_id, "granted", total / dt, "tokens/s")


if __name__ == "__main__":
    peerlib.main("B9", {"take4": take4}, ["take4"])
