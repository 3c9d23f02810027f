"""The payment service's queries."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import String, Uuid, any_, bindparam, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import CollectionAggregate

from payment_service.lifecycle import IN_FLIGHT, SETTLED_PAID, PaymentStatus, RefundStatus
from payment_service.models import (
    IN_FLIGHT_PREDICATE,
    OutboxMessage,
    Payment,
    ProviderEvent,
    Refund,
)
from shared.db import DirectStatement, HotPath, column_names, object_of, table_of
from shared.pagination import created_within, equals, paginated

# An initiation's statements (every payment runs them), with asyncpg itself
# (shared.db.HotPath). Their rows become Payment objects of no session (shared.db.object_of).
_PAYMENTS = table_of(Payment)
_NEW_PAYMENT_COLUMNS = [
    "id",
    "order_id",
    "user_id",
    "provider",
    "amount",
    "currency",
    "status",
    "phone_number",
    "metadata",
    "refunded_amount",
]
_INSERT_PAYMENT_UNLESS_IN_FLIGHT = DirectStatement.of(
    insert(_PAYMENTS)
    .on_conflict_do_nothing(
        index_elements=[_PAYMENTS.c.order_id], index_where=text(IN_FLIGHT_PREDICATE)
    )
    .returning(*_PAYMENTS.c),
    column_keys=_NEW_PAYMENT_COLUMNS,
)
_ORDER_HAS_PAID_PAYMENT = DirectStatement.of(
    select(
        exists().where(
            _PAYMENTS.c.order_id == bindparam("paid_order_id"),
            _PAYMENTS.c.status == any_(bindparam("paid_statuses", type_=ARRAY(String()))),
        )
    )
)
_LOCK_PAYMENT_ROW = DirectStatement.of(
    select(_PAYMENTS).where(_PAYMENTS.c.id == bindparam("locked_id")).with_for_update()
)
_RECORD_ACCEPTANCE = DirectStatement.of(
    update(_PAYMENTS)
    .where(_PAYMENTS.c.id == bindparam("accepted_id"))
    .values(
        status=bindparam("new_status"),
        external_reference=bindparam("reference"),
        metadata=bindparam("new_details"),
    )
    .returning(*_PAYMENTS.c)
)


_PAYMENT_BY_REFERENCE_ROW = DirectStatement.of(
    select(_PAYMENTS).where(
        _PAYMENTS.c.provider == bindparam("by_provider"),
        _PAYMENTS.c.external_reference == bindparam("by_reference"),
    )
)
_EVENTS = table_of(ProviderEvent)
_INSERT_EVENT = DirectStatement.of(
    insert(_EVENTS),
    column_keys=[
        "id",
        "provider",
        "event_id",
        "event_type",
        "reference",
        "payment_id",
        "payload",
        "outcome",
        "source_ip",
    ],
)


async def insert_payment_unless_in_flight(hot_path: HotPath, **values: Any) -> Payment | None:
    """Inserts a pending payment unless the order already has one in flight (the partial
    unique index decides, so two concurrent requests cannot both get through). One
    statement, committed on its own."""
    statement = _INSERT_PAYMENT_UNLESS_IN_FLIGHT
    columns = dict(column_names(Payment))  # attribute -> column ("details" is "metadata")
    values = {"phone_number": None, **values}  # a card payment has none
    row = await hot_path.fetchrow(
        statement.sql, *statement.args(**{columns[key]: value for key, value in values.items()})
    )
    return None if row is None else object_of(Payment, row)


async def order_has_paid_payment(hot_path: HotPath, order_id: uuid.UUID) -> bool:
    """Whether a payment of the order has settled paid (completed, or being refunded)."""
    statement = _ORDER_HAS_PAID_PAYMENT
    row = await hot_path.fetchrow(
        statement.sql,
        *statement.args(paid_order_id=order_id, paid_statuses=[str(s) for s in SETTLED_PAID]),
    )
    return row is not None and bool(row[0])


async def read_payment_by_reference(
    hot_path: HotPath, provider: str, reference: str
) -> Payment | None:
    """The payment as it is now (no lock): for a judgement that changes nothing yet."""
    statement = _PAYMENT_BY_REFERENCE_ROW
    row = await hot_path.fetchrow(
        statement.sql, *statement.args(by_provider=provider, by_reference=reference)
    )
    return None if row is None else object_of(Payment, row)


async def insert_event(hot_path: HotPath, event: ProviderEvent) -> None:
    """A provider's event, kept for audit: one statement, committed on its own."""
    statement = _INSERT_EVENT
    await hot_path.execute(
        statement.sql, *statement.args(**{name: getattr(event, name) for name in statement.names})
    )


async def lock_payment_row(connection: asyncpg.Connection, payment_id: uuid.UUID) -> Payment | None:
    """The payment, locked until the caller's transaction ends."""
    statement = _LOCK_PAYMENT_ROW
    row = await connection.fetchrow(statement.sql, *statement.args(locked_id=payment_id))
    return None if row is None else object_of(Payment, row)


async def record_acceptance(
    connection: asyncpg.Connection,
    payment_id: uuid.UUID,
    *,
    status: str,
    reference: str,
    details: dict[str, Any],
) -> Payment:
    """The provider accepted the request: its reference, and the payment's status."""
    statement = _RECORD_ACCEPTANCE
    row = await connection.fetchrow(
        statement.sql,
        *statement.args(
            accepted_id=payment_id, new_status=status, reference=reference, new_details=details
        ),
    )
    assert row is not None  # the caller holds the row's lock
    return object_of(Payment, row)


# The statements of every payment, built once: an ORM statement costs more to build and
# key for the cache than to run.
_PAYMENT_BY_ID = select(Payment).where(Payment.id == bindparam("payment_id"))
_LOCK_PAYMENT = (
    select(Payment)
    .where(Payment.id == bindparam("payment_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_OTHER_PAID_PAYMENT_FOR_ORDER = (
    select(Payment)
    .where(
        Payment.order_id == bindparam("order_id"),
        Payment.status.in_(bindparam("statuses", expanding=True)),
        Payment.id != bindparam("other_than"),
    )
    .limit(1)
)
_PAYMENT_BY_REFERENCE = select(Payment).where(
    Payment.provider == bindparam("provider"),
    Payment.external_reference == bindparam("reference"),
)
_LOCK_PAYMENT_BY_REFERENCE = _PAYMENT_BY_REFERENCE.with_for_update().execution_options(
    populate_existing=True
)
_TRANSACTION_ID_TAKEN = select(Payment.id).where(
    Payment.transaction_id == bindparam("transaction_id"),
    Payment.id != bindparam("payment_id"),
)


async def get_payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment | None:
    return await session.scalar(_PAYMENT_BY_ID, {"payment_id": payment_id})


async def in_flight_payment(session: AsyncSession, order_id: uuid.UUID) -> Payment | None:
    return await session.scalar(
        select(Payment).where(Payment.order_id == order_id, Payment.status.in_(IN_FLIGHT))
    )


async def paid_payment_for_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    other_than: uuid.UUID,
    statuses: frozenset[PaymentStatus] = SETTLED_PAID,
) -> Payment | None:
    """Another payment of the order in one of `statuses` (paid, by default), if any."""
    return await session.scalar(
        _OTHER_PAID_PAYMENT_FOR_ORDER,
        {"order_id": order_id, "statuses": list(statuses), "other_than": other_than},
    )


async def lock_payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment | None:
    return await session.scalar(_LOCK_PAYMENT, {"payment_id": payment_id})


async def payment_by_reference(
    session: AsyncSession, provider: str, reference: str, *, lock: bool = False
) -> Payment | None:
    statement = _LOCK_PAYMENT_BY_REFERENCE if lock else _PAYMENT_BY_REFERENCE
    return await session.scalar(statement, {"provider": provider, "reference": reference})


async def transaction_id_taken(
    session: AsyncSession, transaction_id: str, payment_id: uuid.UUID
) -> bool:
    found = await session.scalar(
        _TRANSACTION_ID_TAKEN, {"transaction_id": transaction_id, "payment_id": payment_id}
    )
    return found is not None


async def list_payments(
    session: AsyncSession,
    *,
    status: str | None,
    provider: str | None,
    order_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    created_from: datetime | None,
    created_to: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[Payment], int]:
    """The admin's list, newest first; each filter only when given, times [from, to)."""
    conditions = [
        equals(Payment.status, status),
        equals(Payment.provider, provider),
        equals(Payment.order_id, order_id),
        equals(Payment.user_id, user_id),
        *created_within(Payment.created_at, created_from, created_to),
    ]
    return await paginated(session, Payment, conditions, offset=offset, limit=limit)


async def refunds_of_payment(session: AsyncSession, payment_id: uuid.UUID) -> list[Refund]:
    result = await session.scalars(
        select(Refund)
        .where(Refund.payment_id == payment_id)
        .order_by(Refund.created_at.desc(), Refund.id)
    )
    return list(result)


async def payment_figures(
    session: AsyncSession, *, created_from: datetime | None, created_to: datetime | None
) -> list[tuple[str, str, str, int, Decimal, Decimal]]:
    """(provider, status, currency, count, amount, refunded amount) of the payments created
    in [created_from, created_to)."""
    conditions = []
    if created_from is not None:
        conditions.append(Payment.created_at >= created_from)
    if created_to is not None:
        conditions.append(Payment.created_at < created_to)
    keys = (Payment.provider, Payment.status, Payment.currency)
    rows = await session.execute(
        select(*keys, func.count(), func.sum(Payment.amount), func.sum(Payment.refunded_amount))
        .where(*conditions)
        .group_by(*keys)
        .order_by(*keys)
    )
    return [
        (provider, status, currency, count, amount, refunded)
        for provider, status, currency, count, amount, refunded in rows
    ]


async def payments_of_order(
    session: AsyncSession, order_id: uuid.UUID, user_id: uuid.UUID
) -> list[Payment]:
    result = await session.scalars(
        select(Payment)
        .where(Payment.order_id == order_id, Payment.user_id == user_id)
        .order_by(Payment.created_at.desc(), Payment.id)
    )
    return list(result)


async def claim_due_payments(
    session: AsyncSession,
    *,
    provider: str,
    status: str,
    created_before: datetime,
    now: datetime,
    lease_until: datetime,
    limit: int = 20,
) -> list[tuple[uuid.UUID, str | None, datetime]]:
    """Payments due for a look, claimed with a lease (several replicas may run this)."""
    due = (
        select(Payment.id)
        .where(
            Payment.provider == provider,
            Payment.status == status,
            Payment.created_at <= created_before,
            (Payment.next_check_at.is_(None)) | (Payment.next_check_at <= now),
        )
        .order_by(Payment.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await session.execute(
        update(Payment)
        .where(Payment.id.in_(due.scalar_subquery()))
        .values(next_check_at=lease_until)
        .returning(Payment.id, Payment.external_reference, Payment.created_at)
        .execution_options(synchronize_session=False)
    )
    return [(payment_id, reference, created_at) for payment_id, reference, created_at in rows]


async def lock_abandoned_initiations(
    session: AsyncSession, *, created_before: datetime, limit: int = 100
) -> list[Payment]:
    """Pending payments whose provider call never finished (the process died mid-way),
    locked; rows another replica holds are skipped."""
    result = await session.scalars(
        select(Payment)
        .where(
            Payment.status == PaymentStatus.PENDING,
            Payment.external_reference.is_(None),
            Payment.created_at <= created_before,
        )
        .with_for_update(skip_locked=True)
        .limit(limit)
    )
    return list(result)


async def reserved_refund_total(session: AsyncSession, payment_id: uuid.UUID) -> Decimal:
    """Refunds made or under way: what may no longer be refunded."""
    result = await session.execute(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.payment_id == payment_id,
            Refund.status.in_((RefundStatus.PENDING, RefundStatus.SUCCEEDED)),
        )
    )
    return Decimal(result.scalar_one())


async def succeeded_refund_total(session: AsyncSession, payment_id: uuid.UUID) -> Decimal:
    result = await session.execute(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.payment_id == payment_id, Refund.status == RefundStatus.SUCCEEDED
        )
    )
    return Decimal(result.scalar_one())


async def refund_by_provider_id(session: AsyncSession, provider_refund_id: str) -> Refund | None:
    return await session.scalar(
        select(Refund).where(Refund.provider_refund_id == provider_refund_id).with_for_update()
    )


async def lock_refund(session: AsyncSession, refund_id: uuid.UUID) -> Refund:
    """A refund this flow made (refunds are never deleted), locked."""
    refund = await session.get(Refund, refund_id, with_for_update=True)
    assert refund is not None
    return refund


async def lock_refund_by_id(session: AsyncSession, refund_id: object) -> Refund | None:
    """The refund whose id a provider echoed back (its metadata), locked; None for an
    unknown id or one that is no id at all."""
    if not refund_id:
        return None
    try:
        key = uuid.UUID(str(refund_id))
    except ValueError:
        return None
    return await session.get(Refund, key, with_for_update=True)


async def pending_refunds(session: AsyncSession, payment_id: uuid.UUID) -> list[Refund]:
    result = await session.scalars(
        select(Refund)
        .where(Refund.payment_id == payment_id, Refund.status == RefundStatus.PENDING)
        .with_for_update()
    )
    return list(result)


_SET_EVENT_OUTCOME = (
    update(ProviderEvent)
    .where(ProviderEvent.id == bindparam("event_row_id"))
    .values(outcome=bindparam("new_outcome"))
)
_SET_EVENT_OUTCOME_AND_PAYMENT = _SET_EVENT_OUTCOME.values(payment_id=bindparam("event_payment_id"))


async def set_event_outcome(
    session: AsyncSession,
    event_id: uuid.UUID,
    outcome: str,
    *,
    payment_id: uuid.UUID | None = None,
) -> None:
    """What was done with a provider's event (kept with it, for audit)."""
    if payment_id is None:
        await session.execute(
            _SET_EVENT_OUTCOME, {"event_row_id": event_id, "new_outcome": outcome[:255]}
        )
    else:
        await session.execute(
            _SET_EVENT_OUTCOME_AND_PAYMENT,
            {
                "event_row_id": event_id,
                "new_outcome": outcome[:255],
                "event_payment_id": payment_id,
            },
        )


async def record_event_once(session: AsyncSession, **values: Any) -> uuid.UUID | None:
    """Inserts a provider event unless its (provider, event_id) is already recorded."""
    statement = (
        insert(ProviderEvent)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(
            index_elements=[ProviderEvent.provider, ProviderEvent.event_id],
            index_where=text("event_id IS NOT NULL"),
        )
        .returning(ProviderEvent.id)
    )
    return await session.scalar(statement)


# --- Reconciliation -----------------------------------------------------------------------


def _any_of(ids: list[uuid.UUID]) -> CollectionAggregate[bool]:
    # One array parameter, whatever the number of ids (an IN list has a parameter each).
    return any_(bindparam(None, value=list(ids), type_=ARRAY(Uuid)))


async def payments_for_reconciliation(
    session: AsyncSession,
    *,
    created_from: datetime,
    created_to: datetime,
    order_ids: list[uuid.UUID],
) -> list[Payment]:
    """Payments created in the window, and every payment of the given orders (an order of
    the window may have been paid by a payment made after it)."""
    in_window = (Payment.created_at >= created_from) & (Payment.created_at < created_to)
    result = await session.scalars(
        select(Payment)
        .where(in_window | (Payment.order_id == _any_of(order_ids)))
        .order_by(Payment.created_at, Payment.id)
    )
    return list(result)


async def payments_by_order_or_id(
    session: AsyncSession, *, order_ids: list[uuid.UUID], payment_ids: list[uuid.UUID]
) -> list[Payment]:
    result = await session.scalars(
        select(Payment)
        .where((Payment.order_id == _any_of(order_ids)) | (Payment.id == _any_of(payment_ids)))
        .order_by(Payment.created_at, Payment.id)
        .execution_options(populate_existing=True)
    )
    return list(result)


async def succeeded_refunds(
    session: AsyncSession, payment_ids: list[uuid.UUID]
) -> list[tuple[uuid.UUID, Decimal]]:
    """(payment id, amount) of every refund that went through, for the given payments."""
    rows = await session.execute(
        select(Refund.payment_id, Refund.amount).where(
            Refund.status == RefundStatus.SUCCEEDED, Refund.payment_id == _any_of(payment_ids)
        )
    )
    return [(payment_id, amount) for payment_id, amount in rows.all()]


async def undelivered_order_updates(
    session: AsyncSession, topic: str
) -> dict[str, tuple[int, str | None]]:
    """Payment id -> (attempts, last error) of the order updates still in the outbox."""
    rows = await session.execute(
        select(
            OutboxMessage.payload["paymentId"].astext,
            OutboxMessage.attempts,
            OutboxMessage.last_error,
        ).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.topic == topic)
    )
    return {payment_id: (attempts, error) for payment_id, attempts, error in rows.all()}
