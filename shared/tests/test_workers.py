import asyncio

from fastapi import FastAPI

from shared.workers import PeriodicWorker


async def test_a_worker_runs_repeatedly_survives_failures_and_stops_cleanly():
    runs = 0

    async def job(app):
        nonlocal runs
        runs += 1
        if runs == 2:
            raise RuntimeError("one bad run")

    worker = PeriodicWorker("test", 0.01, job)
    worker.start(FastAPI())
    await asyncio.sleep(0.2)
    await worker.stop()
    seen = runs
    assert seen >= 3
    await asyncio.sleep(0.05)
    assert runs == seen


async def test_stop_waits_for_the_run_in_progress():
    finished = []

    async def job(app):
        await asyncio.sleep(0.1)
        finished.append(True)

    worker = PeriodicWorker("slow", 0.0, job)
    worker.start(FastAPI())
    await asyncio.sleep(0.05)
    await worker.stop()
    assert finished == [True]
