"""Helpers for the services' test suites (real PostgreSQL, never a mock of it)."""

import asyncio
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.provisioning import create_database, drop_database, quote_identifier
from shared.settings import database_url_for_asyncpg


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    """A TCP port nothing listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
