"""B6 cutlery, the seed's ThreadBot code with the lock (peer of bench/b6_cutlery.lua).

From "Using Asyncio in Python", Examples 2-2 and 2-3, with the fix the book
gives (a threading.Lock in Cutlery.change) and a plain class instead of
attrs (stdlib only). 10 bots x 10,000 tables (--quick: 1,000); the kitchen
must end at 100 knives and 100 forks. Metric: seconds for the whole
service (filling the task queues, starting and joining the bots).
"""
import threading
from queue import Queue

import peerlib


class ThreadBot(threading.Thread):
    def __init__(self, kitchen):
        super().__init__(target=self.manage_table)
        self.kitchen = kitchen
        self.cutlery = Cutlery(knives=0, forks=0)
        self.tasks = Queue()

    def manage_table(self):
        while True:
            task = self.tasks.get()
            if task == 'prepare table':
                self.kitchen.give(to=self.cutlery, knives=4, forks=4)
            elif task == 'clear table':
                self.cutlery.give(to=self.kitchen, knives=4, forks=4)
            elif task == 'shutdown':
                return


class Cutlery:
    def __init__(self, knives=0, forks=0):
        self.knives = knives
        self.forks = forks
        self.lock = threading.Lock()

    def give(self, to, knives=0, forks=0):
        self.change(-knives, -forks)
        to.change(knives, forks)

    def change(self, knives, forks):
        with self.lock:
            self.knives += knives
            self.forks += forks


def cutlery(quick, case_id):
    tables = 1000 if quick else 10000
    t0 = peerlib.now()
    kitchen = Cutlery(knives=100, forks=100)
    bots = [ThreadBot(kitchen) for i in range(10)]
    for bot in bots:
        for i in range(tables):
            bot.tasks.put('prepare table')
            bot.tasks.put('clear table')
        bot.tasks.put('shutdown')
    for bot in bots:
        bot.start()
    for bot in bots:
        bot.join()
    dt = peerlib.now() - t0
    peerlib.check("kitchen knives", kitchen.knives, 100)
    peerlib.check("kitchen forks", kitchen.forks, 100)
    for bot in bots:
        peerlib.check("bot knives", bot.cutlery.knives, 0)
    peerlib.result(case_id, "total", dt, "s")


if __name__ == "__main__":
    peerlib.main("B6", {"cutlery": cutlery}, ["cutlery"])
