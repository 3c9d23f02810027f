import asyncio

from shared.workers import PeriodicWorker


async def test_a_worker_runs_repeatedly_survives_failures_and_stops_cleanly():
    runs = 0
    third_run = asyncio.Event()

    async def job(state):
        nonlocal runs
        runs += 1
        if runs == 3:
            third_run.set()
        if runs == 2:
            raise RuntimeError("one bad run")

    worker = PeriodicWorker("test", 0.01, job)
    worker.start(object())
    # A failed run (the second) does not stop the loop: a third one comes.
    await asyncio.wait_for(third_run.wait(), timeout=10)
    task = worker._task
    await worker.stop()
    assert not worker.running
    # Stopped means its loop has ended: nothing can run any more.
    assert task is not None and task.done() and not task.cancelled()


async def test_stop_waits_for_the_run_in_progress():
    started = asyncio.Event()
    release = asyncio.Event()
    finished = []

    async def job(state):
        started.set()
        await release.wait()  # the work itself, in progress until the test lets it end
        finished.append(True)

    worker = PeriodicWorker("slow", 0.0, job)
    worker.start(object())
    await asyncio.wait_for(started.wait(), timeout=10)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)  # stop() has begun (a stop that cancelled would cancel now)
    release.set()
    await stopping
    assert finished == [True]
