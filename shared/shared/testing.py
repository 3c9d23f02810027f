"""Helpers for the services' test suites (real PostgreSQL, never a mock of it)."""

import asyncio
import logging
import re
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.http_client import INTERNAL_TOKEN_HEADER
from shared.internal_access import IDENTITIES, INTERNAL_ROUTES
from shared.provisioning import create_database, drop_database, quote_identifier
from shared.server import LISTEN_FD
from shared.settings import ServiceSettings, database_url_for_asyncpg
from shared.tokens import issue_internal_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def listening_socket() -> socket.socket:
    """A socket listening on a port the kernel chose, for a process to serve on: hand it
    over (`LISTEN_FD`, shared.server) instead of a port number, which anything could
    take between being chosen and being bound."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def handed_over(sock: socket.socket, env: dict[str, str]) -> dict[str, Any]:
    """`subprocess.Popen` arguments that start a service on `sock` (shared.server):
    `Popen(argv, **handed_over(sock, env))`."""
    return {"env": {**env, LISTEN_FD: str(sock.fileno())}, "pass_fds": (sock.fileno(),)}


class ReservedPort:
    """A port kept for a service a test stops and starts again. Held here bound but not
    listening (connections are refused while the service is down, nothing else can take
    the port); each start is handed a listening socket of its own on it (`listening()`,
    both sockets SO_REUSEPORT), which closes when that process exits."""

    def __init__(self) -> None:
        self._placeholder = _reusable_socket(0)
        self.port: int = self._placeholder.getsockname()[1]

    def listening(self) -> socket.socket:
        sock = _reusable_socket(self.port)
        sock.listen(128)
        return sock

    def close(self) -> None:
        self._placeholder.close()


def _reusable_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextmanager
def refused_port() -> Iterator[int]:
    """A port nothing can listen on while the block runs: bound here but not listening,
    so a connection to it is refused (an unreachable service, database or Redis)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


class FakeClock:
    """A clock a test moves (`advance`) instead of sleeping: give it where code takes a
    `clock` (monotonic seconds), e.g. `UserStatusCache(source, ttl, clock=clock)`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def random_secret() -> str:
    return secrets.token_urlsafe(48)


def _upgrade(service_dir: Path, url: str) -> None:
    config = Config(str(service_dir / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def _check(service_dir: Path, url: str) -> None:
    config = Config(str(service_dir / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logging"] = False
    command.check(config)  # raises when autogenerate would find a difference


async def assert_migrations_match_models(service_dir: Path, url: str) -> None:
    """The schema is only made by migrations: a model change without its migration fails."""
    await asyncio.to_thread(_check, service_dir, url)


async def migrate(service_dir: Path, url: str) -> None:
    """Alembic `upgrade head`, in a thread: env.py runs its own event loop."""
    await asyncio.to_thread(_upgrade, service_dir, url)


@asynccontextmanager
async def migrated_database(server_url: str, name: str, service_dir: Path) -> AsyncIterator[str]:
    """A throwaway database with the service's migrations applied, dropped afterwards.
    `server_url` is any URL of the test server (its database part is replaced)."""
    database = f"test_{name}_{uuid.uuid4().hex[:10]}"
    url = database_url_for_asyncpg(
        make_url(server_url).set(database=database).render_as_string(hide_password=False)
    )
    await create_database(url)
    try:
        await migrate(service_dir, url)
        yield url
    finally:
        await drop_database(url)


async def truncate_all(engine: AsyncEngine, metadata: MetaData) -> None:
    tables = ", ".join(quote_identifier(table.name) for table in metadata.sorted_tables)
    if tables:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


async def delete_all(engine: AsyncEngine, metadata: MetaData) -> None:
    """DELETE, not TRUNCATE: when tests leave a few rows, emptying small tables row by row
    is much cheaper than TRUNCATE's new files for every table and index."""
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(table.delete())


def internal_headers(settings: ServiceSettings, caller: str) -> dict[str, str]:
    """The header of an internal call made by the service `caller`."""
    secret = settings.internal_service_secret.get_secret_value()
    return {INTERNAL_TOKEN_HEADER: issue_internal_token(service=caller, secret=secret)}


def internal_routes_of(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every internal route the app has."""
    return {
        (method, path)
        for route in iter_route_contexts(app.router.routes)
        if isinstance(route.original_route, APIRoute)
        and (path := route.path_format or "").startswith("/api/internal/")
        for method in route.methods or ()
    }


def internal_access_cases(service: str) -> list[tuple[str, str, str, bool]]:
    """(method, path, caller, allowed) for every internal route of `service` in
    shared.internal_access and every identity of the system."""
    return [
        (method, path, caller, caller in callers)
        for (callee, method, path), callers in INTERNAL_ROUTES.items()
        if callee == service
        for caller in IDENTITIES
    ]


REFUSED_CALLER = {"error": "Access denied. This service may not call this route."}


async def assert_internal_access(
    client: httpx.AsyncClient,
    settings: ServiceSettings,
    case: tuple[str, str, str, bool],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One case of `internal_access_cases`: an allowed caller gets the route's own answer to
    a request it cannot fulfil (400 for an empty body, 404 for an unknown id, 200 for a
    list); any other caller gets 403 in the error format and one warning line naming it."""
    method, path, caller, allowed = case
    url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
    headers = internal_headers(settings, caller)
    with caplog.at_level(logging.WARNING, logger="shared.internal_access"):
        if method == "POST":
            response, admitted = await client.post(url, json={}, headers=headers), 400
        else:
            response = await client.request(method, url, headers=headers)
            admitted = 404 if url != path else 200
    refusals = [r.getMessage() for r in caplog.records if r.name == "shared.internal_access"]
    if allowed:
        assert response.status_code == admitted, response.text
        assert refusals == []
    else:
        assert response.status_code == 403, response.text
        assert response.json() == REFUSED_CALLER
        assert len(refusals) == 1
        assert f"caller={caller} " in refusals[0]
        assert refusals[0].endswith(f"{method} {path}")
