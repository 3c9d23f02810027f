"""Async SQLAlchemy: the declarative base, the engine, and one session per
request whose transaction commits when the route returns and rolls back when it
raises, so a refused request leaves nothing half-written; `after_commit`, what runs
once a transaction has committed (a metric counted).

A read (GET, HEAD) gets a session without a transaction instead: each statement runs on
its own (PostgreSQL's autocommit), so a one-query read is one round trip to the database,
not three (BEGIN, the query, COMMIT). Each statement still sees one consistent snapshot;
two statements of the same read may see different ones, as two requests would. Such a
session refuses to write (`ReadOnlySession`).

The busiest statements skip the session altogether (`HotPath`: asyncpg itself, prepared
statements, no ORM): for a route that reads one row, the session, the ORM and the
dependency that opens and closes them were half of the process's time; for an order's
placement, two thirds.

Imported by the services with a database only: the gateway and the admin console never
load SQLAlchemy (shared.database_errors)."""

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast

import asyncpg
from asyncpg.exceptions import ConnectionDoesNotExistError
from fastapi import Depends, Request
from sqlalchemy import (
    CursorResult,
    DateTime,
    MetaData,
    Result,
    Table,
    event,
    func,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from shared import tracing
from shared.database_errors import is_database_unavailable
from shared.settings import database_url_for_asyncpg
from shared.state import database_state

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def table_of(model: type[Any]) -> Table:
    """A mapped class's table, for Core statements (`insert(table_of(Order))`)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


_COLUMN_NAMES: dict[type[Any], tuple[tuple[str, str], ...]] = {}


def column_names(model: type[Any]) -> tuple[tuple[str, str], ...]:
    """(attribute, column) of each column of a mapped class (an attribute may be named
    otherwise than its column: the payments' `details` is `metadata`); read once."""
    if model not in _COLUMN_NAMES:
        _COLUMN_NAMES[model] = tuple(
            (column.key, column.columns[0].name) for column in inspect(model).column_attrs
        )
    return _COLUMN_NAMES[model]


def object_of(model: type[ModelT], row: asyncpg.Record, *, prefix: str = "") -> ModelT:
    """An object of no session made from a row of the model's table read with asyncpg
    (its columns named `<prefix><column>`): to read and answer with, never to change."""
    return model(**{key: row[prefix + name] for key, name in column_names(model)})


def new_metadata() -> MetaData:
    """Each service declares its own base with its own MetaData (its own database):
    `class Base(DeclarativeBase): metadata = new_metadata()`."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 0,
    pool_timeout: float = 10,
    pre_ping: bool = False,
) -> AsyncEngine:
    """Requests beyond the pool wait for a connection (up to `pool_timeout` s, then 503)
    rather than open new ones: connecting costs far more than waiting for a transaction of
    a millisecond, and overflow connections are closed when given back, so they churn."""
    return create_async_engine(
        database_url_for_asyncpg(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # Connections die with a PostgreSQL restart, idle in the pool. They are not checked
        # when taken (a round trip per request, docs/operations.md): a read that meets a
        # dead one is run again on a fresh one (shared.read_retry). DB_POOL_PRE_PING=true
        # checks them instead.
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after commit (for the response).
    return async_sessionmaker(engine, expire_on_commit=False)


class ReadOnlySession(Session):
    """The sync half of a read's session: an ORM write in a read is a bug, refused loudly
    rather than committed statement by statement."""


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_writes(session: Session, *_: Any) -> None:
    raise RuntimeError("a read's session may not write: writes need a transaction")


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads: no BEGIN/COMMIT around their statements (the module's doc)."""
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        sync_session_class=ReadOnlySession,
    )


class HotPath:
    """The busiest statements, with asyncpg itself: a small pool of its own connections
    (opened when first needed, none at start), statements prepared once a connection, no
    ORM. A statement runs on its own, without BEGIN and COMMIT (`fetchrow`, `fetch`,
    `execute`, or several on one `connection()`); statements that must commit together
    run in `transaction()`. A connection that broke under a statement (PostgreSQL
    restarted) is thrown away, the pool replaces all of its others, and the statement
    fails as a lost connection: a read is run once more on a fresh one
    (shared.read_retry), anything else is a 503 (shared.errors), never a 500."""

    def __init__(self, url: str, *, max_size: int, acquire_timeout: float = 10) -> None:
        self._dsn = database_url_for_asyncpg(url).replace("postgresql+asyncpg://", "postgresql://")
        self._max_size = max_size
        self._acquire_timeout = acquire_timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        """One statement on its own (no transaction around it): its row or None."""
        async with self.connection() as connection:
            with tracing.query_span(query):
                return await connection.fetchrow(query, *args)

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """One statement on its own: its rows."""
        async with self.connection() as connection:
            with tracing.query_span(query):
                return await connection.fetch(query, *args)

    async def execute(self, query: str, *args: object) -> None:
        """One statement on its own (committed when it returns)."""
        async with self.connection() as connection:
            with tracing.query_span(query):
                await connection.execute(query, *args)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a transaction: committed when the block ends, rolled back when
        it raises."""
        async with self.connection() as connection, connection.transaction():
            yield connection

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for several statements, each on its own (no transaction)."""
        pool = self._pool or await self._open()
        async with pool.acquire(timeout=self._acquire_timeout) as connection:
            try:
                # The pool's proxy of a connection: a Connection to its user.
                yield cast(asyncpg.Connection, connection)
                return
            except asyncpg.PostgresError as exc:
                if not is_database_unavailable(exc):
                    raise  # the statement's own error (a bad value): the connection is fine
                failure: Exception = exc
            except (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError) as exc:
                # The connection broke under the statement (its server process ended).
                failure = exc
            # Never back into the pool (unless asyncpg, seeing it closed, already took it).
            with contextlib.suppress(asyncpg.InterfaceError):
                connection.terminate()
        await pool.expire_connections()  # its siblings died with it
        raise ConnectionDoesNotExistError(f"connection lost: {failure!r}") from failure

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,
                    max_size=self._max_size,
                    init=_json_codecs,
                    reset=_nothing_to_reset,
                )
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """JSON and JSONB columns as Python values (asyncpg's default is text)."""
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """Instead of asyncpg's reset (a round trip at every release): a statement of the hot
    path changes nothing of its connection's state, and a transaction has ended (committed
    or rolled back) before its connection goes back."""


@dataclass(frozen=True)
class DirectStatement:
    """A SQLAlchemy Core statement compiled once into asyncpg's own SQL (`$1`
    parameters), for `HotPath`: `statement.args(name=value, ...)` gives its parameters
    in their order. Values go to asyncpg as they are (no SQLAlchemy type processing)."""

    sql: str
    names: tuple[str, ...]

    @classmethod
    def of(cls, statement: Any, *, column_keys: list[str] | None = None) -> "DirectStatement":
        """`column_keys`: for an INSERT without values, the columns it sets (each its
        parameter, named as the column)."""
        dialect = postgresql_asyncpg.dialect()  # type: ignore[no-untyped-call]
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        return cls(str(compiled), tuple(compiled.positiontup or ()))

    def args(self, **values: object) -> list[object]:
        return [values[name] for name in self.names]


READ_METHODS = frozenset({"GET", "HEAD"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    state = database_state(request)
    if request.method in READ_METHODS:
        async with state.read_sessionmaker() as session:
            yield session
        return
    async with state.sessionmaker() as session, session.begin():
        yield session


# scope="function": the transaction ends (commit or rollback) before the
# response is sent, so a client never sees success for a write that failed to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def affected_rows(result: Result[*tuple[Any, ...]]) -> int:
    """How many rows an UPDATE or DELETE changed. `session.execute` is typed to return a
    `Result`; for those statements it is a `CursorResult`, which has the count."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an UPDATE or DELETE: {type(result).__name__}")
    return result.rowcount or 0


async def database_is_reachable(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


# Counting what a transaction did (shared.metrics), once it has committed.
_AFTER_COMMIT = "shared.db.after_commit"


def after_commit(session: AsyncSession | Session, action: Callable[[], object]) -> None:
    """Runs `action` (say `ORDERS_CREATED.inc`, shared.metrics) when the session's
    transaction commits;
    drops it when the transaction rolls back, so a change that did not happen is never
    counted. Bind label values now: `COUNTER.labels(reason=reason).inc`."""
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    sync_session.info.setdefault(_AFTER_COMMIT, []).append(action)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, ()):
        try:
            action()
        except Exception:  # a metric must never fail what already committed
            logger.exception("after-commit metric failed")


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # Runs after after_commit: what is left here belonged to a transaction that rolled back.
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)
