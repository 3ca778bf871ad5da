"""B9 token bucket, the seed's refill-thread TokenBucket (peer of bench/b9_tokenbucket.lua).

The TokenBucket is the seed's code ("Multithreading", Token Bucket section):
a queue.Queue(maxsize=max_tokens) of tokens filled by a refill thread,
request() = get(block=False); logging is left at its default level so the
refill messages are not printed. Here 1,000 tokens every 1 ms (the same
1,000,000 tokens/s as the duet bucket), and 4 threads at once each call
request() 50,000 times (--quick: 10,000). Metrics: request() calls/s over
all threads, and tokens granted/s (checked against what the refills allow).
"""
import logging
import queue
import threading
import time

import peerlib

_token = object()


class TokenBucket:
    def __init__(
        self,
        refill_period: float,
        refill_tokens: int,
        max_tokens: int,
    ):
        self._refill_period = refill_period
        self._refill_tokens = refill_tokens
        self._bucket = queue.Queue(maxsize=max_tokens)
        self._refill_thread = threading.Thread(
            target=self._refill_target, name='RefillThread'
        )
        self._stop_event = threading.Event()

    def start(self):
        logging.info('Starting refill thread.')
        self._refill_thread.start()

    def stop(self):
        logging.info('Setting stop event to true.')
        self._stop_event.set()

    def request(self):
        try:
            self._bucket.get(block=False)
        except queue.Empty:
            return 'denied'
        else:
            return 'success'

    def _refill_target(self):
        while True:
            if self._stop_event.is_set():
                logging.info('Stopping refill thread.')
                break
            logging.info(f'Refilling bucket with {self._refill_tokens} tokens.')
            for _ in range(self._refill_tokens):
                try:
                    self._bucket.put(_token)
                except queue.Full:
                    break
            time.sleep(self._refill_period)
        logging.info('Refill thread completed.')


PERIOD, TOKENS, THREADS = 0.001, 1000, 4


def take4(quick, case_id):
    n = 10000 if quick else 50000
    created = peerlib.now()
    tb = TokenBucket(refill_period=PERIOD, refill_tokens=TOKENS, max_tokens=TOKENS)
    tb.start()
    granted = [0] * THREADS

    def taker(slot):
        g = 0
        for _ in range(n):
            if tb.request() == 'success':
                g += 1
        granted[slot] = g

    t0 = peerlib.now()
    threads = [threading.Thread(target=taker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = peerlib.now() - t0
    allowed = TOKENS * (1 + (peerlib.now() - created) / PERIOD)
    tb.stop()
    total = sum(granted)
    if total > allowed:
        raise AssertionError("wrong result: %d tokens granted, at most %d allowed" % (total, allowed))
    peerlib.result(case_id, "calls", THREADS * n / dt, "calls/s")
    peerlib.result(case_id, "granted", total / dt, "tokens/s")


if __name__ == "__main__":
    peerlib.main("B9", {"take4": take4}, ["take4"])
