"""The order service's queries."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import (
    ARRAY,
    Cast,
    ColumnExpressionArgument,
    Date,
    Select,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy import (
    insert as core_insert,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from order_service.lifecycle import RESERVING, Status
from order_service.models import (
    Order,
    OrderItem,
    OrderStatusChange,
    OutboxMessage,
    ProcessedEvent,
    order_number_sequence,
)
from shared.db import DirectStatement, HotPath, affected_rows, table_of
from shared.pagination import created_within, equals, paginated

# Only placed orders exist for anyone outside this service: a row still reserving its
# stock is not an order yet.
PLACED = Order.status != RESERVING


def _with_details(statement: Select[Order]) -> Select[Order]:
    return statement.options(selectinload(Order.items), selectinload(Order.history))


async def lock_order_with_details(
    session: AsyncSession, order_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> Order | None:
    """A placed order with its items and history, locked until the transaction ends; only
    `user_id`'s when given. (Reads without a change: `find_order`.)"""
    statement = select(Order).where(Order.id == order_id, PLACED)
    if user_id is not None:
        statement = statement.where(Order.user_id == user_id)
    statement = _with_details(statement.with_for_update(of=Order))
    return await session.scalar(statement.execution_options(populate_existing=True))


_LOCK_PLACED_ORDER = (
    select(Order)
    .where(Order.id == bindparam("locked_id"), PLACED)
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    """A placed order's row alone (no items, no history), locked until the transaction
    ends: for a change that needs neither (a payment's news, every paid order)."""
    return await session.scalar(_LOCK_PLACED_ORDER, {"locked_id": order_id})


# Placement's statements (every order runs them), with asyncpg itself (shared.db.HotPath):
# through the ORM they were two thirds of the service's time per order.
_ORDERS = table_of(Order)
_INSERT_ORDER = DirectStatement.of(core_insert(_ORDERS), column_keys=_ORDERS.c.keys())
_ITEMS = table_of(OrderItem)
_HISTORY = table_of(OrderStatusChange)
_OUTBOX = table_of(OutboxMessage)
_ITEM_COLUMNS = ("id", "position", "product_id", "product_name", "quantity", "price", "subtotal")
_CHANGE_COLUMNS = ("id", "from_status", "to_status", "payment_status", "actor", "reason")


def _completion(with_outbox_message: bool) -> DirectStatement:
    """Step 3 of a placement as one statement (one round trip, no BEGIN and COMMIT: a
    statement is atomic): the `reserving` row becomes `pending` with its total; only if
    it did, its items (from arrays, one element per line), its first history row and,
    for an order from the cart, the outbox message that empties the cart."""
    placed_at = bindparam("placed_at", type_=_ORDERS.c.updated_at.type)
    placed = (
        update(_ORDERS)
        .where(_ORDERS.c.id == bindparam("order_id"), _ORDERS.c.status == bindparam("reserving"))
        .values(status=bindparam("placed_status"), total_amount=bindparam("total"))
        .values(updated_at=placed_at)
        .returning(_ORDERS.c.id)
        .cte("placed")
    )
    lines = (
        func.unnest(
            *(bindparam(f"item_{name}", type_=ARRAY(_ITEMS.c[name].type)) for name in _ITEM_COLUMNS)
        )
        .table_valued(*_ITEM_COLUMNS)
        .render_derived(name="line")
    )
    items = (
        core_insert(_ITEMS)
        .from_select(
            [*_ITEM_COLUMNS, "order_id", "created_at", "updated_at"],
            select(*(lines.c[name] for name in _ITEM_COLUMNS), placed.c.id, placed_at, placed_at)
            .select_from(placed)
            .join(lines, true()),
        )
        .cte("items")
    )
    change = (
        core_insert(_HISTORY)
        .from_select(
            [*_CHANGE_COLUMNS, "order_id", "created_at"],
            select(
                *(
                    bindparam(f"change_{name}", type_=_HISTORY.c[name].type)
                    for name in _CHANGE_COLUMNS
                ),
                placed.c.id,
                placed_at,
            ).select_from(placed),
        )
        .cte("change")
    )
    written = [items, change]
    if with_outbox_message:
        message_columns = ("id", "topic", "payload", "attempts", "available_at")
        written.append(
            core_insert(_OUTBOX)
            .from_select(
                message_columns,
                select(
                    *(
                        bindparam(f"message_{name}", type_=_OUTBOX.c[name].type)
                        for name in message_columns
                    )
                ).where(exists(select(placed.c.id))),
            )
            .cte("message")
        )
    return DirectStatement.of(select(placed.c.id).add_cte(*written))


_COMPLETE_PLACEMENT = _completion(with_outbox_message=False)
_COMPLETE_PLACEMENT_FROM_CART = _completion(with_outbox_message=True)
_NEXT_ORDER_NUMBER_VALUES = DirectStatement.of(
    select(order_number_sequence.next_value()).select_from(
        func.generate_series(literal_column("1"), bindparam("count"))
    )
)


_PLACED_ORDER = DirectStatement.of(
    select(_ORDERS).where(
        _ORDERS.c.id == bindparam("wanted_id"), _ORDERS.c.status != bindparam("reserving")
    )
)
_ORDER_ITEMS = DirectStatement.of(
    select(_ITEMS).where(_ITEMS.c.order_id == bindparam("wanted_id")).order_by(_ITEMS.c.position)
)
_ORDER_HISTORY = DirectStatement.of(
    select(_HISTORY)
    .where(_HISTORY.c.order_id == bindparam("wanted_id"))
    .order_by(_HISTORY.c.created_at)
)


async def find_order(
    hot: HotPath, order_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> dict[str, Any] | None:
    """A placed order with its items and history, as rows (for OrderDetailOut); only
    `user_id`'s when given. Three statements on one connection, each on its own, as the
    ORM's read would run them (items never change; history only grows)."""
    async with hot.connection() as connection:
        row = await connection.fetchrow(
            _PLACED_ORDER.sql, *_PLACED_ORDER.args(wanted_id=order_id, reserving=RESERVING)
        )
        if row is None or (user_id is not None and row["user_id"] != user_id):
            return None
        items = await connection.fetch(_ORDER_ITEMS.sql, *_ORDER_ITEMS.args(wanted_id=order_id))
        history = await connection.fetch(
            _ORDER_HISTORY.sql, *_ORDER_HISTORY.args(wanted_id=order_id)
        )
    return {**row, "items": [dict(item) for item in items], "history": [dict(h) for h in history]}


async def next_order_number_values(hot: HotPath, count: int) -> list[int]:
    """`count` values of the order number sequence at once (one round trip for many
    orders; a value taken and never used is a gap, as a rolled back nextval is)."""
    rows = await hot.fetch(
        _NEXT_ORDER_NUMBER_VALUES.sql, *_NEXT_ORDER_NUMBER_VALUES.args(count=count)
    )
    return [row[0] for row in rows]


async def insert_reserving_order(hot: HotPath, row: dict[str, Any]) -> None:
    """The placement's first row: one statement, committed on its own."""
    await hot.execute(_INSERT_ORDER.sql, *_INSERT_ORDER.args(**row))


async def complete_placement(
    connection: asyncpg.Connection,
    order_id: uuid.UUID,
    *,
    total: Decimal,
    placed_at: datetime,
    items: list[dict[str, Any]],
    status_change: dict[str, Any],
    outbox_message: OutboxMessage | None,
) -> bool:
    """Step 3 of a placement (`_completion`), in one statement: False, nothing written,
    when the row is no longer `reserving` (the sweeper took it)."""
    statement = _COMPLETE_PLACEMENT if outbox_message is None else _COMPLETE_PLACEMENT_FROM_CART
    values: dict[str, Any] = {
        "order_id": order_id,
        "reserving": RESERVING,
        "placed_status": Status.PENDING,
        "total": total,
        "placed_at": placed_at,
        **{f"item_{name}": [item[name] for item in items] for name in _ITEM_COLUMNS},
        **{f"change_{name}": status_change[name] for name in _CHANGE_COLUMNS},
    }
    if outbox_message is not None:
        values.update(
            message_id=outbox_message.id,
            message_topic=outbox_message.topic,
            message_payload=outbox_message.payload,
            message_attempts=0,
            message_available_at=outbox_message.available_at,
        )
    placed = await connection.fetchval(statement.sql, *statement.args(**values))
    return placed is not None


_ORDER_WITH_DETAILS = _with_details(
    select(Order).where(Order.id == bindparam("order_id"))
).execution_options(populate_existing=True)


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


_RECORD_EVENT = (
    insert(ProcessedEvent)
    .values(event_id=bindparam("seen_event_id"), order_id=bindparam("seen_order_id"))
    .on_conflict_do_nothing(index_elements=[ProcessedEvent.event_id])
    .returning(ProcessedEvent.event_id)
)


async def record_event(session: AsyncSession, event_id: str, order_id: uuid.UUID) -> bool:
    """True the first time an event id is seen (it is then kept), False afterwards."""
    seen = await session.scalar(
        _RECORD_EVENT, {"seen_event_id": event_id, "seen_order_id": order_id}
    )
    return seen is not None


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
