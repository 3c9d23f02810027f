"""The shared validation the fuzzer found holes in (issue 10): money too large to
quantize, dates given as numbers, text PostgreSQL cannot store, a 405 naming one method,
HEAD; and what a lost database connection is."""

import asyncio
import logging

import httpx
import pytest
from asyncpg.exceptions import AdminShutdownError, CannotConnectNowError, UniqueViolationError
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.database_errors import is_database_unavailable
from shared.errors import install_error_handlers
from shared.methods import HeadAsGetMiddleware
from shared.schemas import DateTimeInput, MoneyInput, RequestModel
from shared.workers import PeriodicWorker


class Priced(BaseModel):
    price: MoneyInput


@pytest.mark.parametrize("raw", [1e26, "1e26", 1e308, "1E+400", "1e-400", 10_000_000_000])
def test_money_beyond_the_bounds_is_a_validation_error(raw):
    with pytest.raises(ValidationError):
        Priced(price=raw)


class Window(BaseModel):
    moment: DateTimeInput


@pytest.mark.parametrize(
    "raw", ["0.5", "1700000000", 1700000000, "2026-01-01T00:00:00", "2026-01-01", "tomorrow"]
)
def test_a_moment_is_iso_8601_with_its_timezone(raw):
    with pytest.raises(ValidationError):
        Window(moment=raw)


def test_a_moment_in_iso_8601():
    assert Window(moment="2026-01-31T10:00:00+03:00").moment.utcoffset().total_seconds() == 10800
    assert Window(moment="2026-01-31T07:00:00Z").moment.tzinfo is not None


class Address(RequestModel):
    street: str


class Body(RequestModel):
    notes: str | None = None
    address: Address | None = None
    tags: list[str] = []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"notes": "gate\x00"}, "notes"),
        ({"address": {"street": "\ud800"}}, "address.street"),
        ({"tags": ["fine", "\x00"]}, "tags"),
    ],
)
def test_text_that_cannot_be_stored_is_refused_naming_the_field(body, field):
    with pytest.raises(ValidationError) as refused:
        Body.model_validate(body)
    assert [".".join(map(str, e["loc"])) for e in refused.value.errors()] == [field]


def test_fields_a_body_ignores_are_not_judged():
    assert Body.model_validate({"other\x00": "\x00", "notes": "fine"}).notes == "fine"


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(HeadAsGetMiddleware)

    @app.get("/things")
    async def things():
        return {"things": [1, 2, 3]}

    @app.delete("/things")
    async def clear():
        return {}

    return app


async def test_a_405_names_every_method_and_head_is_get_without_a_body():
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.request("OPTIONS", "/things")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "DELETE, GET, HEAD"
        assert refused.json() == {"error": "Method not allowed"}
        got, head = await client.get("/things"), await client.head("/things")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"]


def _wrapped(error: Exception, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, error, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(AdminShutdownError("terminating connection due to administrator command")),
        _wrapped(CannotConnectNowError("the database system is starting up")),
        _wrapped(RuntimeError("closed"), invalidated=True),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_a_database_that_is_away(error):
    assert is_database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, UniqueViolationError("duplicate key")),
        ValueError("a bug"),
    ],
)
def test_a_refused_statement_or_a_bug_is_not_the_database_being_away(error):
    assert not is_database_unavailable(error)


async def test_a_worker_logs_one_line_for_a_whole_outage(caplog):
    runs = 0
    enough = asyncio.Event()

    async def job(app):
        nonlocal runs
        runs += 1
        if runs >= 8:
            enough.set()
        if runs <= 5:
            raise _wrapped(CannotConnectNowError("the database system is starting up"))

    worker = PeriodicWorker("outage", 0.01, job)
    with caplog.at_level(logging.INFO, logger="shared.workers"):
        worker.start(FastAPI())
        await asyncio.wait_for(enough.wait(), 5)
        await worker.stop()
    messages = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    assert messages == [
        ("WARNING", "worker waits for the database", None),
        ("INFO", "worker resumed: the database is back", None),
    ]
