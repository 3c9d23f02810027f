"""One more try for a read that met a database connection which died while idle in the pool.

A PostgreSQL restart kills every pooled connection, and the pool only learns it when one is
used. Checking each connection as it is taken (`pool_pre_ping`) costs a round trip on every
request: 0.24 ms of CPU on top of 1.5 ms for a product read by id (docs/operations.md). So
connections are not checked: the first statement on a dead one fails, SQLAlchemy then
discards every connection of the pool opened before it, and a GET or HEAD that failed so is
run once more, on a fresh connection; its client sees only the answer. A write is never run
twice (it may have been half done when the connection went): its client gets the 503 with
Retry-After and decides.
"""

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.database_errors import connection_was_lost

logger = logging.getLogger(__name__)

# Set in the request's state by the error handler that answered a lost connection.
CONNECTION_LOST = "database_connection_lost"
READS = frozenset({"GET", "HEAD"})


class RetryReadOnLostConnection:
    """Pure ASGI, inside the logging and the error handling's own middleware: a read that
    is retried is one request in the log, answered once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in READS:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        received: list[Message] = []
        started = False

        async def recording() -> Message:
            message = await receive()
            received.append(message)
            return message

        async def held_if_lost(message: Message) -> None:
            nonlocal started
            if state.get(CONNECTION_LOST):
                return  # the answer to a lost connection: the retry answers instead
            started = True
            await send(message)

        try:
            await self.app(scope, recording, held_if_lost)
        except Exception as exc:
            if started or not connection_was_lost(exc):
                raise
            state[CONNECTION_LOST] = True
        if not state.pop(CONNECTION_LOST, False) or started:
            return
        logger.info("read retried on a fresh database connection")
        replay = iter(list(received))

        async def replaying() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replaying, send)
