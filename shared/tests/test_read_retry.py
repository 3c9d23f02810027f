"""A read that met a dead database connection is run once more; a write never is."""

from typing import Any

import httpx
import pytest
from asyncpg.exceptions import CannotConnectNowError
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from shared.errors import install_error_handlers
from shared.methods import HeadAsGetMiddleware
from shared.read_retry import RetryReadOnLostConnection


def _lost() -> DBAPIError:
    # What SQLAlchemy raises when a pooled connection died (a PostgreSQL restart).
    return DBAPIError(
        "SELECT", {}, ConnectionResetError("connection was closed"), connection_invalidated=True
    )


def _starting_up() -> DBAPIError:
    return DBAPIError("SELECT", {}, CannotConnectNowError("the database system is starting up"))


def _app(failures: list[Exception]) -> tuple[FastAPI, list[str]]:
    """Each call raises the next of `failures`, then answers."""
    calls: list[str] = []
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RetryReadOnLostConnection)
    app.add_middleware(HeadAsGetMiddleware)

    @app.api_route("/things", methods=["GET", "POST"])
    async def things(body: dict[str, int] | None = None) -> dict[str, int]:
        calls.append("call")
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return {"things": 3, **(body or {})}

    return app, calls


async def _request(app: FastAPI, method: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, "/things", **kwargs)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_read_that_met_a_dead_connection_is_answered_by_its_second_run(method):
    app, calls = _app([_lost()])
    response = await _request(app, method)
    assert response.status_code == 200
    if method == "GET":
        assert response.json() == {"things": 3}
    assert len(calls) == 2


async def test_an_error_that_wraps_a_lost_connection_is_retried_too():
    """A rollback on the dead socket may raise something else, caused by the loss."""
    wrapped = RuntimeError("greenlet_spawn has not been called")
    wrapped.__cause__ = _lost()
    app, calls = _app([wrapped])
    response = await _request(app, "GET")
    assert response.status_code == 200
    assert len(calls) == 2


async def test_a_write_that_met_a_dead_connection_is_not_run_twice():
    app, calls = _app([_lost()])
    response = await _request(app, "POST", json={"extra": 1})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "Service temporarily unavailable"
    assert len(calls) == 1


async def test_a_read_is_run_twice_at_most():
    app, calls = _app([_lost(), _lost(), _lost()])
    response = await _request(app, "GET")
    assert response.status_code == 503
    assert len(calls) == 2


async def test_a_database_still_away_is_a_503_without_a_second_run():
    app, calls = _app([_starting_up()])
    response = await _request(app, "GET")
    assert response.status_code == 503
    assert len(calls) == 1
