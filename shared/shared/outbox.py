"""The transactional outbox: a change another service must learn of is written in
the same transaction as the change itself, as a row here, and delivered by a
worker with retries until the receiver acknowledges it.

A service declares its table with the mixin (and a migration):

    class OutboxMessage(OutboxMessageMixin, Base):
        __tablename__ = "outbox_messages"

writes with `enqueue(session, OutboxMessage, topic=..., payload=...)` inside the
transaction of the change, and runs `deliver_due` in a `PeriodicWorker`, with a
sender per topic that returns normally when the receiver acknowledged and raises
otherwise. A request that wants the call made at once (a stock release after a
cancellation) enqueues with `sent_by_writer=True` and calls `send_now` after its commit;
the worker is then only the fallback. Delivery is at least once: receivers apply
messages idempotently (every payload carries the message id as `eventId` unless it has
its own).

Several replicas may deliver at once: a batch is claimed with
`FOR UPDATE SKIP LOCKED` and a lease (`available_at` moved forward) in a short
transaction, then sent outside any transaction; a replica that dies mid-way
leaves its lease to expire and another replica sends again.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import DateTime, Index, Integer, String, Text, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=5)

Sender = Callable[[dict[str, Any]], Awaitable[None]]


class OutboxMessageMixin:
    if TYPE_CHECKING:
        # What the mapped class that uses the mixin (with a declarative Base) has.
        __tablename__: str

        def __init__(self, **values: Any) -> None: ...

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    topic: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Not sent before this moment (retry backoff, or another replica's lease).
    available_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index]:
        # The worker's query: undelivered rows, by when they are due.
        return (
            Index(
                f"ix_{cls.__tablename__}_due",
                "available_at",
                postgresql_where="delivered_at IS NULL",
            ),
        )


OutboxMessageT = TypeVar("OutboxMessageT", bound=OutboxMessageMixin)


def enqueue(
    session: AsyncSession,
    model: type[OutboxMessageT],
    *,
    topic: str,
    payload: dict[str, Any],
    sent_by_writer: bool = False,
) -> OutboxMessageT:
    """Adds a message to the current transaction; it exists only if the transaction commits.

    With `sent_by_writer`, the request that writes the message sends it itself once its
    transaction has committed (`send_now`): the message is due for the worker only after a
    lease, so the worker steps in only if that attempt fails or the process dies first."""
    message = new_message(model, topic=topic, payload=payload, sent_by_writer=sent_by_writer)
    session.add(message)
    return message


def new_message(
    model: type[OutboxMessageT],
    *,
    topic: str,
    payload: dict[str, Any],
    sent_by_writer: bool = False,
) -> OutboxMessageT:
    """The message `enqueue` adds, for a transaction that writes it itself (asyncpg's)."""
    message_id = uuid.uuid4()
    now = datetime.now(UTC)
    return model(
        id=message_id,
        topic=topic,
        payload={"eventId": str(message_id), **payload},
        available_at=now + LEASE if sent_by_writer else now,
    )


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s, ... up to 5 minutes between attempts."""
    return min(timedelta(seconds=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


async def _send_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: type[OutboxMessageMixin],
    senders: Mapping[str, Sender],
    message_id: uuid.UUID,
    topic: str,
    payload: dict[str, Any],
    attempts: int,
) -> bool:
    """One attempt at one message, outside any transaction; its outcome recorded after
    (delivered, or due again after a backoff). True when the receiver acknowledged."""
    sender = senders.get(topic)
    try:
        if sender is None:
            raise LookupError(f"no sender for topic {topic!r}")
        await sender(payload)
    except Exception as exc:  # any failure: count it, back off, try again later
        error = f"{type(exc).__name__}: {exc}"[:1000]
        logger.warning(
            "outbox delivery failed",
            extra={
                "topic": topic,
                "messageId": str(message_id),
                "attempt": attempts + 1,
                "reason": error,
            },
        )
        values: dict[str, Any] = {
            "available_at": datetime.now(UTC) + backoff(attempts + 1),
            "last_error": error,
        }
        delivered = False
    else:
        values = {"delivered_at": datetime.now(UTC), "last_error": None}
        delivered = True
    # One statement: run on its own (no BEGIN and COMMIT around it, two round trips less).
    async with sessionmaker() as session:
        connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        await connection.execute(
            _attempt_statement(model, delivered),
            {"message_id": message_id, **{f"new_{name}": value for name, value in values.items()}},
        )
    return delivered


_ATTEMPT_STATEMENTS: dict[tuple[str, bool], Any] = {}


def _attempt_statement(model: type[OutboxMessageMixin], delivered: bool) -> Any:
    """An attempt's record, built once per table: delivered, or due again later."""
    key = (model.__tablename__, delivered)
    if key not in _ATTEMPT_STATEMENTS:
        names = ("delivered_at", "last_error") if delivered else ("available_at", "last_error")
        _ATTEMPT_STATEMENTS[key] = (
            update(model)
            .where(model.id == bindparam("message_id"), model.delivered_at.is_(None))
            .values(
                attempts=model.attempts + 1, **{name: bindparam(f"new_{name}") for name in names}
            )
        )
    return _ATTEMPT_STATEMENTS[key]


async def send_now(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: type[OutboxMessageMixin],
    senders: Mapping[str, Sender],
    messages: Iterable[OutboxMessageMixin],
) -> int:
    """One immediate attempt per message written with `sent_by_writer`, once its
    transaction has committed; a failure is left to the worker, never raised. Returns how
    many were acknowledged."""
    delivered = 0
    for message in messages:
        delivered += await _send_one(
            sessionmaker, model, senders, message.id, message.topic, message.payload, 0
        )
    return delivered


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: type[OutboxMessageMixin],
    senders: Mapping[str, Sender],
    *,
    batch_size: int = 20,
) -> int:
    """Sends the messages that are due; returns how many were acknowledged."""
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        due = (
            select(model.id)
            .where(model.delivered_at.is_(None), model.available_at <= now)
            .order_by(model.available_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        claimed = (
            await session.execute(
                update(model)
                .where(model.id.in_(due.scalar_subquery()))
                .values(available_at=now + LEASE)
                .returning(model.id, model.topic, model.payload, model.attempts, model.created_at)
                .execution_options(synchronize_session=False)
            )
        ).all()
    # UPDATE ... RETURNING comes back in no particular order: send oldest first.
    ordered = sorted(claimed, key=lambda row: row.created_at)

    delivered = 0
    for message_id, topic, payload, attempts, _ in ordered:
        delivered += await _send_one(
            sessionmaker, model, senders, message_id, topic, payload, attempts
        )
    return delivered


async def backlog(session: AsyncSession, model: type[OutboxMessageMixin]) -> tuple[int, float]:
    """(undelivered messages, age in seconds of the oldest), for metrics and health."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(model.created_at)).where(model.delivered_at.is_(None))
        )
    ).one()
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
    return count, age
