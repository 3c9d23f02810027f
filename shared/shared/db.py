"""Async SQLAlchemy: the declarative base, the engine, and one session per
request whose transaction commits when the route returns and rolls back when it
raises, so a refused request leaves nothing half-written.

A read (GET, HEAD) gets a session without a transaction instead: each statement runs on
its own (PostgreSQL's autocommit), so a one-query read is one round trip to the database,
not three (BEGIN, the query, COMMIT). Each statement still sees one consistent snapshot;
two statements of the same read may see different ones, as two requests would. Such a
session refuses to write (`ReadOnlySession`)."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import CursorResult, DateTime, MetaData, Result, event, func, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.settings import database_url_for_asyncpg
from shared.state import database_state

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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


# SQLSTATEs of a database that is gone, going or not yet back: connection exceptions
# (class 08), shutdown by an operator or a crash, "starting up", too many connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database could not be reached or lost the connection
    (a 503 to retry), rather than a refused statement."""
    for current in _causes(exc):
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, PoolTimeout | OSError | asyncpg.exceptions.InterfaceError):
            return True
        if isinstance(current, asyncpg.exceptions.ConnectionDoesNotExistError):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
        ):
            return True
    return False


def _causes(exc: BaseException) -> list[BaseException]:
    """The error and its causes: SQLAlchemy wraps asyncpg's errors, which wrap the socket's."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return chain


def connection_was_lost(exc: BaseException) -> bool:
    """Whether the statement failed because its connection had died (SQLAlchemy saw a
    disconnect and discarded the pool's older connections): a read may be run again on a
    fresh one (shared.read_retry)."""
    return any(
        (isinstance(cause, DBAPIError) and cause.connection_invalidated)
        or isinstance(cause, asyncpg.exceptions.ConnectionDoesNotExistError)
        for cause in _causes(exc)
    )


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
