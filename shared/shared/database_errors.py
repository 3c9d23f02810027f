"""Whether an error means the database is away: for the code every process runs (the
error handlers, the read retry, the periodic workers), without loading the database
libraries in the processes that have no database (the gateway, the admin console:
SQLAlchemy and asyncpg are ~20 MiB of each one's memory). The error types of a library
are looked up only if it is loaded: a process that never loaded it holds none of its
errors."""

import sys

# SQLSTATEs of a database that is gone, going or not yet back: connection exceptions
# (class 08), shutdown by an operator or a crash, "starting up", too many connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def _loaded_types(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """These exception classes of `module`, or none when nothing has imported it."""
    loaded = sys.modules.get(module)
    return tuple(getattr(loaded, name) for name in names) if loaded is not None else ()


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database could not be reached or lost the connection
    (a 503 to retry), rather than a refused statement."""
    dbapi_errors = _loaded_types("sqlalchemy.exc", "DBAPIError")
    away: tuple[type[BaseException], ...] = (
        OSError,
        *_loaded_types("sqlalchemy.exc", "TimeoutError"),  # no connection free in the pool
        *_loaded_types("asyncpg.exceptions", "InterfaceError", "ConnectionDoesNotExistError"),
    )
    for current in _causes(exc):
        if isinstance(current, dbapi_errors) and getattr(current, "connection_invalidated", False):
            return True
        if isinstance(current, away):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
        ):
            return True
    return False


def connection_was_lost(exc: BaseException) -> bool:
    """Whether the statement failed because its connection had died (SQLAlchemy saw a
    disconnect and discarded the pool's older connections): a read may be run again on a
    fresh one (shared.read_retry)."""
    dbapi_errors = _loaded_types("sqlalchemy.exc", "DBAPIError")
    gone = _loaded_types("asyncpg.exceptions", "ConnectionDoesNotExistError")
    return any(
        (isinstance(cause, dbapi_errors) and getattr(cause, "connection_invalidated", False))
        or isinstance(cause, gone)
        for cause in _causes(exc)
    )


def _causes(exc: BaseException) -> list[BaseException]:
    """The error and its causes: SQLAlchemy wraps asyncpg's errors, which wrap the socket's."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return chain
