"""Creating and dropping a service's database: the one place that does it, for
`make run` (scripts/stack.py), the benchmarks and the tests alike.

It connects to the server's `postgres` database with the URL's credentials; the
database name is quoted as an identifier, never pasted into SQL as it is.
"""

from typing import TypedDict
from urllib.parse import SplitResult, unquote, urlsplit

import asyncpg

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432
DEFAULT_USER = "postgres"
CONNECT_TIMEOUT = 10.0


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _ConnectParams(TypedDict):
    host: str
    port: int
    user: str
    password: str | None
    timeout: float


def _parse(url: str) -> SplitResult:
    """`postgresql+asyncpg://user:password@host:port/database`, its parts percent-decoded
    below as SQLAlchemy's `make_url` decodes them: parsed here without SQLAlchemy, which
    `make run`'s supervisor (it creates the databases, then runs for as long as the stack)
    would otherwise keep in memory (~14 MiB) for this alone."""
    return urlsplit(url)


def _connect_params(url: str) -> _ConnectParams:
    parsed = _parse(url)
    return {
        "host": parsed.hostname or DEFAULT_HOST,
        "port": parsed.port or DEFAULT_PORT,
        "user": unquote(parsed.username) if parsed.username else DEFAULT_USER,
        "password": unquote(parsed.password) if parsed.password is not None else None,
        "timeout": CONNECT_TIMEOUT,
    }


def _database_name(url: str) -> str:
    name = unquote(_parse(url).path.lstrip("/"))
    if not name:
        raise ValueError("the database URL names no database")
    return name


async def database_exists(url: str) -> bool:
    """Whether the database of `url` can be connected to (a user without CREATEDB may still
    own an existing one)."""
    try:
        connection = await asyncpg.connect(database=_database_name(url), **_connect_params(url))
    except asyncpg.InvalidCatalogNameError:
        return False
    await connection.close()
    return True


async def create_database(url: str, *, if_missing: bool = False) -> bool:
    """Creates the database of `url`; True when it was created. With `if_missing`, an
    existing database is left as it is (False) instead of being an error."""
    name = _database_name(url)
    if if_missing and await database_exists(url):
        return False
    connection = await asyncpg.connect(database="postgres", **_connect_params(url))
    try:
        await connection.execute(f"CREATE DATABASE {quote_identifier(name)}")
    except asyncpg.DuplicateDatabaseError:
        if not if_missing:
            raise
        return False
    finally:
        await connection.close()
    return True


async def drop_database(url: str) -> None:
    """Drops the database of `url` if it exists, closing its connections first."""
    name = _database_name(url)
    connection = await asyncpg.connect(database="postgres", **_connect_params(url))
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await connection.close()
