"""Background work inside a service: a task run every few seconds (deliver the
outbox, expire unpaid orders, ask M-Pesa about open payments).

With WEB_CONCURRENCY=N worker processes (shared.server), only the first one runs them
(`runs_periodic_workers`): N processes of one service would otherwise run each task N
times as often. Each run must still be safe with several replicas of the service
running the same task at once: take rows with `SELECT ... FOR UPDATE SKIP LOCKED`, or
otherwise make sure two runners never act on the same row. A failing run is logged and
the next one tries again; shutdown waits for the run in progress to finish.
"""

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.database_errors import is_database_unavailable
from shared.server import WORKER_INDEX

logger = logging.getLogger(__name__)

StateT = TypeVar("StateT", contravariant=True)
# A run of the work: given the service's state (shared.state), returns anything (a count).
Job = Callable[[StateT], Awaitable[object]]


def runs_periodic_workers() -> bool:
    """Whether this process runs its service's periodic workers: the only process of the
    service, or worker 0 of several (WEB_CONCURRENCY)."""
    return os.environ.get(WORKER_INDEX, "0") == "0"


@dataclass
class PeriodicWorker(Generic[StateT]):
    name: str
    interval: float  # seconds between runs
    job: Job[StateT]
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, state: StateT) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(state), name=f"worker:{self.name}")

    async def stop(self, timeout: float = 10.0) -> None:
        if self._task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(self._task, timeout)
        except TimeoutError:
            self._task.cancel()
            logger.warning("worker did not stop in time; cancelled", extra={"worker": self.name})
        self._task = None

    async def _loop(self, state: StateT) -> None:
        # Replicas started together should not run in lock-step.
        await self._sleep(random.uniform(0, self.interval))  # noqa: S311 (not security)
        database_away = False
        while not self._stopping.is_set():
            try:
                await self.job(state)
            except Exception as exc:
                if not is_database_unavailable(exc):
                    logger.exception("worker run failed", extra={"worker": self.name})
                elif not database_away:
                    # One line for the whole outage, not a traceback per tick.
                    database_away = True
                    logger.warning(
                        "worker waits for the database",
                        extra={"worker": self.name, "reason": type(exc).__name__},
                    )
            else:
                if database_away:
                    database_away = False
                    logger.info("worker resumed: the database is back", extra={"worker": self.name})
            await self._sleep(self.interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
