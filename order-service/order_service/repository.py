"""The order service's queries."""

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Cast,
    ColumnExpressionArgument,
    Date,
    Select,
    bindparam,
    cast,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from order_service.lifecycle import RESERVING, Status
from order_service.models import (
    Order,
    ProcessedEvent,
    order_number_sequence,
)
from shared.db import affected_rows
from shared.pagination import created_within, equals, paginated

# Only placed orders exist for anyone outside this service: a row still reserving its
# stock is not an order yet.
PLACED = Order.status != RESERVING


def _with_details(statement: Select[Order]) -> Select[Order]:
    return statement.options(selectinload(Order.items), selectinload(Order.history))


async def get_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    for_update: bool = False,
) -> Order | None:
    """A placed order with its items and history; only `user_id`'s when given. With
    `for_update` the row is locked until the transaction ends."""
    statement = select(Order).where(Order.id == order_id, PLACED)
    if user_id is not None:
        statement = statement.where(Order.user_id == user_id)
    if for_update:
        statement = statement.with_for_update(of=Order)
    statement = _with_details(statement).execution_options(populate_existing=True)
    return await session.scalar(statement)


# Placement's statements, built once (every order runs them): an ORM statement costs
# more to build and key for the cache than to run.
_LOCK_ORDER_ROW = (
    select(Order)
    .where(Order.id == bindparam("order_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_ORDER_WITH_DETAILS = _with_details(
    select(Order).where(Order.id == bindparam("order_id"))
).execution_options(populate_existing=True)
_NEXT_ORDER_NUMBER_VALUE = select(order_number_sequence.next_value())


async def lock_order_row(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    """The order row, whatever its status (one being placed too), locked."""
    return await session.scalar(_LOCK_ORDER_ROW, {"order_id": order_id})


async def reload_order(session: AsyncSession, order_id: uuid.UUID) -> Order:
    """The order as the database now holds it (after changes in this transaction)."""
    await session.flush()
    order = await session.scalar(_ORDER_WITH_DETAILS, {"order_id": order_id})
    assert order is not None
    return order


async def list_orders(
    session: AsyncSession,
    *,
    offset: int,
    limit: int,
    user_id: uuid.UUID | None = None,
    status: str | None = None,
    payment_status: str | None = None,
    order_number: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    with_items: bool = True,
) -> tuple[list[Order], int]:
    conditions = [
        PLACED,
        equals(Order.user_id, user_id),
        equals(Order.status, status),
        equals(Order.payment_status, payment_status),
        equals(Order.order_number, order_number),
        *created_within(Order.created_at, created_from, created_to),
    ]
    options = [selectinload(Order.items)] if with_items else []
    return await paginated(session, Order, conditions, offset=offset, limit=limit, options=options)


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """How many placed orders are in each status now."""
    rows = await session.execute(
        select(Order.status, func.count()).where(PLACED).group_by(Order.status)
    )
    return {status: count for status, count in rows.all()}


def _local_day(column: ColumnExpressionArgument[datetime | None], timezone: str) -> Cast[date]:
    # The calendar day of a timestamptz in the shop's time zone, not the server's.
    return cast(func.timezone(timezone, column), Date)


async def orders_per_day(
    session: AsyncSession, *, start: datetime, end: datetime, timezone: str
) -> dict[date, int]:
    """Orders placed in [start, end), by day in `timezone`."""
    day = _local_day(Order.created_at, timezone)
    rows = await session.execute(
        select(day, func.count())
        .where(PLACED, Order.created_at >= start, Order.created_at < end)
        .group_by(day)
    )
    return {day_: count for day_, count in rows.all()}


async def paid_per_day(
    session: AsyncSession, *, start: datetime, end: datetime, timezone: str, currency: str
) -> dict[date, tuple[int, Decimal]]:
    """Orders in `currency` paid in [start, end) and not cancelled since: how many, and
    their total, by day of payment in `timezone`."""
    day = _local_day(Order.paid_at, timezone)
    rows = await session.execute(
        select(day, func.count(), func.sum(Order.total_amount))
        .where(
            Order.paid_at >= start,
            Order.paid_at < end,
            Order.currency == currency,
            Order.status != Status.CANCELLED,
        )
        .group_by(day)
    )
    return {day_: (count, Decimal(total)) for day_, count, total in rows.all()}


async def next_order_number_value(session: AsyncSession) -> int:
    value: int | None = await session.scalar(_NEXT_ORDER_NUMBER_VALUE)
    assert value is not None  # a sequence always gives a next value
    return value


async def record_event(session: AsyncSession, event_id: str, order_id: uuid.UUID) -> bool:
    """True the first time an event id is seen (it is then kept), False afterwards."""
    statement = (
        insert(ProcessedEvent)
        .values(event_id=event_id, order_id=order_id)
        .on_conflict_do_nothing(index_elements=[ProcessedEvent.event_id])
        .returning(ProcessedEvent.event_id)
    )
    return await session.scalar(statement) is not None


async def lock_due_orders(
    session: AsyncSession, *, status: str, created_before: datetime, limit: int
) -> list[Order]:
    """Orders in `status` created before the cutoff, locked; rows another replica holds
    are skipped, so replicas never work on the same order."""
    statement = (
        select(Order)
        .where(Order.status == status, Order.created_at < created_before)
        .order_by(Order.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(await session.scalars(statement))


async def lock_unpaid_orders(
    session: AsyncSession, *, created_before: datetime, limit: int
) -> list[Order]:
    """Pending orders placed before the cutoff, locked (rows another replica holds are
    skipped). Cash on delivery is paid at the door, by design not before: never due."""
    statement = (
        select(Order)
        .where(
            Order.status == Status.PENDING,
            Order.created_at < created_before,
            Order.payment_method.is_distinct_from("cash_on_delivery"),
        )
        .order_by(Order.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(await session.scalars(statement))


async def delete_order_row(session: AsyncSession, order_id: uuid.UUID) -> bool:
    result = await session.execute(delete(Order).where(Order.id == order_id))
    return bool(affected_rows(result))
