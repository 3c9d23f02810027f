"""`GET /health` (liveness, the original's body) and `GET /ready` (readiness:
the database answers)."""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.state import DatabaseState, service_state


def health_router(service_title: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {
            "status": "OK",
            "service": service_title,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }

    @router.get("/ready")
    async def ready(request: Request) -> JSONResponse:
        state = service_state(request)
        if isinstance(state, DatabaseState) and not await _database_is_reachable(state):
            return JSONResponse(
                {
                    "status": "unavailable",
                    "service": service_title,
                    "error": "Database unavailable",
                },
                status_code=503,
            )
        return JSONResponse({"status": "ready", "service": service_title})

    return router


async def _database_is_reachable(state: DatabaseState[Any]) -> bool:
    # Here: SQLAlchemy is loaded by the services with a database only (the state has one).
    from shared.db import database_is_reachable

    return await database_is_reachable(state.engine)
