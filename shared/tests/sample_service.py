"""A small service built with `create_app` and started with `shared.server.serve`,
exactly as the real services are, for the tests that need a real process
(graceful shutdown, tracing across processes): `python sample_service.py`.

Settings (environment): SAMPLE_NAME, SAMPLE_PORT (or a handed-over LISTEN_FD),
WEB_CONCURRENCY, SAMPLE_DATABASE_URL (optional), SAMPLE_NEXT_URL (optional: the
service `GET /api/products/{id}` calls), plus the usual INTERNAL_PRIVATE_KEY and
INTERNAL_PUBLIC_KEYS.
"""

import asyncio
import logging
import os
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from pydantic import Field
from sqlalchemy import text

from shared.app import create_app as create_service_app
from shared.db import SessionDep
from shared.server import serve
from shared.settings import ServiceSettings
from shared.state import ServiceState, service_state
from shared.workers import PeriodicWorker

logger = logging.getLogger("sample")


class SampleSettings(ServiceSettings):
    name: str = Field(default="sample", validation_alias="SAMPLE_NAME")
    port: int = Field(default=0, validation_alias="SAMPLE_PORT")
    database_url: str | None = Field(default=None, validation_alias="SAMPLE_DATABASE_URL")
    next_url: str | None = Field(default=None, validation_alias="SAMPLE_NEXT_URL")

    def service_audiences(self) -> dict[str, str]:
        next_service = {self.next_url: "next"} if self.next_url else {}
        return {**super().service_audiences(), **next_service}


router = APIRouter()


@router.get("/slow")
async def slow(seconds: float = 1.0) -> dict:
    logger.info("slow request started")
    await asyncio.sleep(seconds)
    logger.info("slow request finished")
    return {"slept": seconds}


State = Annotated[ServiceState[SampleSettings], Depends(service_state)]


@router.get("/api/products/{product_id}")
async def product(product_id: str, state: State) -> dict:
    """What the gateway forwards `GET /api/products/{id}` to; asks the next service."""
    answer = await state.services.request("GET", f"{state.settings.next_url}/leaf")
    return {"product": product_id, "next": answer.json()}


@router.get("/leaf")
async def leaf(session: SessionDep) -> dict:
    return {"db": (await session.execute(text("SELECT 1"))).scalar_one()}


ticks = 0


@router.get("/ticks")
async def ticks_here() -> dict:
    """Which worker process answered, and how often its periodic worker has run."""
    return {"pid": os.getpid(), "ticks": ticks}


async def _tick(state: ServiceState[SampleSettings]) -> None:
    global ticks
    ticks += 1


def create_app() -> FastAPI:
    settings = SampleSettings()
    worker = PeriodicWorker("tick", 0.1, _tick)

    async def report_stopped(state: ServiceState[SampleSettings]) -> None:
        # on_shutdown hooks run once the workers have stopped.
        logger.info("shutdown complete", extra={"workerStopped": not worker.running})

    return create_service_app(
        name=settings.name,
        title="Sample Service",
        settings=settings,
        routers=[router],
        database_url=settings.database_url,
        workers=[worker],
        on_shutdown=[report_stopped],
    )


if __name__ == "__main__":
    settings = SampleSettings()
    serve(
        "sample_service:create_app",
        name=settings.name,
        host="127.0.0.1",
        port=settings.port,
        workers=settings.web_concurrency,
    )
