"""B6 cutlery, asyncio peer of bench/b6_cutlery.lua.

The seed's ThreadBots as asyncio tasks: each bot reads its own
asyncio.Queue, each Cutlery has an asyncio.Lock taken in change(). 10 bots
x 10,000 tables (--quick: 1,000); the kitchen must end at 100/100.
Metric: seconds for the whole service.
"""
import asyncio

import peerlib


class TaskBot:
    def __init__(self, kitchen):
        self.kitchen = kitchen
        self.cutlery = Cutlery(knives=0, forks=0)
        self.tasks = asyncio.Queue()

    async def manage_table(self):
        while True:
            task = await self.tasks.get()
            if task == 'prepare table':
                await self.kitchen.give(to=self.cutlery, knives=4, forks=4)
            elif task == 'clear table':
                await self.cutlery.give(to=self.kitchen, knives=4, forks=4)
            elif task == 'shutdown':
                return


class Cutlery:
    def __init__(self, knives=0, forks=0):
        self.knives = knives
        self.forks = forks
        self.lock = asyncio.Lock()

    async def give(self, to, knives=0, forks=0):
        await self.change(-knives, -forks)
        await to.change(knives, forks)

    async def change(self, knives, forks):
        async with self.lock:
            self.knives += knives
            self.forks += forks


async def cutlery(quick, case_id):
    tables = 1000 if quick else 10000
    t0 = peerlib.now()
    kitchen = Cutlery(knives=100, forks=100)
    bots = [TaskBot(kitchen) for i in range(10)]
    for bot in bots:
        for i in range(tables):
            bot.tasks.put_nowait('prepare table')
            bot.tasks.put_nowait('clear table')
        bot.tasks.put_nowait('shutdown')
    running = [asyncio.create_task(bot.manage_table()) for bot in bots]
    for task in running:
        await task
    dt = peerlib.now() - t0
    peerlib.check("kitchen knives", kitchen.knives, 100)
    peerlib.check("kitchen forks", kitchen.forks, 100)
    for bot in bots:
        peerlib.check("bot knives", bot.cutlery.knives, 0)
    peerlib.result(case_id, "total", dt, "s")


if __name__ == "__main__":
    peerlib.main("B6", {"cutlery": cutlery}, ["cutlery"])
