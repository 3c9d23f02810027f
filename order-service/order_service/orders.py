"""Orders after their placement: reads, the customer's cancel, the admin's status change
and the expiry of unpaid orders. Every status change goes through `change_status`, which
asks the transition table (lifecycle.py), keeps the history and gives the stock back
when an order is closed (through the outbox). A payment's news: payment_updates.py."""

import logging
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from order_service import metrics, repository
from order_service.exceptions import OrderNotCancellable, OrderNotFound
from order_service.lifecycle import (
    CUSTOMER_CANCELLABLE,
    RELEASES_STOCK,
    TIMESTAMP_COLUMN,
    Actor,
    Status,
    check_transition,
    payment_status_after,
)
from order_service.models import Order, OrderStatusChange, OutboxMessage
from order_service.outbox import RELEASE_STOCK, enqueue_call, send_now
from order_service.schemas import DayFigures, OrderDetailOut, OrderStats
from order_service.state import OrderState
from shared.auth import AuthenticatedUser
from shared.schemas import Page

logger = logging.getLogger(__name__)

EXPIRY_BATCH = 100


def record_change(
    session: AsyncSession,
    order: Order,
    *,
    from_status: str | None,
    actor: Actor,
    reason: str,
) -> None:
    session.add(
        OrderStatusChange(
            order_id=order.id,
            from_status=from_status,
            to_status=order.status,
            payment_status=order.payment_status,
            actor=actor,
            reason=reason,
        )
    )


def change_status(
    session: AsyncSession, order: Order, target: Status, actor: Actor, reason: str
) -> list[OutboxMessage]:
    """Moves the (locked) order to `target` if the table allows it for `actor` (409
    otherwise); returns the calls to send once the transaction has committed."""
    check_transition(order.status, target, actor)
    previous = order.status
    order.status = target
    order.payment_status = payment_status_after(order.payment_status, target)
    column = TIMESTAMP_COLUMN.get(target)
    if column is not None:
        setattr(order, column, datetime.now(UTC))
    record_change(session, order, from_status=previous, actor=actor, reason=reason)
    if target == Status.CANCELLED:
        metrics.order_cancelled(session, actor)
    logger.info(
        "order status changed",
        extra={"orderId": str(order.id), "from": previous, "to": str(target), "actor": actor},
    )
    if target in RELEASES_STOCK:
        return [enqueue_call(session, RELEASE_STOCK, {"orderId": str(order.id)})]
    return []


async def get_own_order(
    state: OrderState, user: AuthenticatedUser, order_id: str
) -> OrderDetailOut:
    order = await repository.find_order(state.hot_path, parse_order_id(order_id), user_id=user.id)
    if order is None:
        raise OrderNotFound()
    return OrderDetailOut.model_validate(order)


async def get_any_order(state: OrderState, order_id: str) -> OrderDetailOut:
    """Any placed order (the admin's, and the payment service's before it charges)."""
    order = await repository.find_order(state.hot_path, parse_order_id(order_id))
    if order is None:
        raise OrderNotFound()
    return OrderDetailOut.model_validate(order)


async def list_orders(
    session: AsyncSession,
    page: Page,
    *,
    user_id: uuid.UUID | None = None,
    status: Status | None = None,
    payment_status: str | None = None,
    order_number: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[list[Order], int]:
    """Placed orders, newest first; each filter only when given, times [from, to)."""
    return await repository.list_orders(
        session,
        user_id=user_id,
        status=status,
        payment_status=payment_status,
        order_number=order_number,
        created_from=created_from,
        created_to=created_to,
        offset=page.offset,
        limit=page.limit,
    )


async def orders_created_between(
    session: AsyncSession, page: Page, created_from: datetime | None, created_to: datetime | None
) -> tuple[list[Order], int]:
    """Orders created in [from, to), newest first, without their items (reconciliation)."""
    return await repository.list_orders(
        session,
        created_from=created_from,
        created_to=created_to,
        offset=page.offset,
        limit=page.limit,
        with_items=False,
    )


def parse_order_id(order_id: str) -> uuid.UUID:
    """A path id that is not a UUID names no order: 404, as for an unknown one."""
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise OrderNotFound() from None


async def cancel_as_customer(state: OrderState, user: AuthenticatedUser, order_id: str) -> Order:
    """The owner's cancel. The row lock makes two racing cancels one cancellation (and
    one release); the release is written to the outbox with it, so a product service
    that is down delays it, never loses it."""
    async with state.sessionmaker() as session, session.begin():
        order = await repository.lock_order_with_details(
            session, parse_order_id(order_id), user_id=user.id
        )
        if order is None:
            raise OrderNotFound()
        if order.status not in CUSTOMER_CANCELLABLE:
            raise OrderNotCancellable()
        calls = change_status(
            session, order, Status.CANCELLED, Actor.CUSTOMER, "Cancelled by the customer"
        )
        order = await repository.reload_order(session, order.id)
    await send_now(state, calls)
    return order


async def change_status_as_admin(
    state: OrderState, admin: AuthenticatedUser, order_id: str, target: Status
) -> Order:
    async with state.sessionmaker() as session, session.begin():
        order = await repository.lock_order_with_details(session, parse_order_id(order_id))
        if order is None:
            raise OrderNotFound()
        calls = change_status(session, order, target, Actor.ADMIN, f"Set by admin {admin.id}")
        order = await repository.reload_order(session, order.id)
    await send_now(state, calls)
    return order


async def expire_unpaid_orders(state: OrderState) -> int:
    """The expiry worker's job: pending orders older than ORDER_PAYMENT_TIMEOUT are
    cancelled and their stock released. Rows another replica holds are skipped."""
    settings = state.settings
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.order_payment_timeout)
    async with state.sessionmaker() as session, session.begin():
        orders = await repository.lock_unpaid_orders(
            session, created_before=cutoff, limit=EXPIRY_BATCH
        )
        calls: list[OutboxMessage] = []
        for order in orders:
            calls += change_status(
                session,
                order,
                Status.CANCELLED,
                Actor.EXPIRY,
                f"Not paid within {settings.order_payment_timeout} seconds",
            )
    await send_now(state, calls)
    return len(calls)


# --- Figures for the admin console ------------------------------------------------------


async def order_stats(
    session: AsyncSession, *, days: int, timezone: ZoneInfo, currency: str, now: datetime
) -> OrderStats:
    """Orders in each status now; orders placed, and orders paid with their total, on each
    of the last `days` calendar days in `timezone` (today included, days without any too)."""
    today = now.astimezone(timezone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time(), timezone)
    end = datetime.combine(today + timedelta(days=1), time(), timezone)
    name = timezone.key
    placed = await repository.orders_per_day(session, start=start, end=end, timezone=name)
    paid = await repository.paid_per_day(
        session, start=start, end=end, timezone=name, currency=currency
    )
    by_status = await repository.count_by_status(session)
    figures = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        paid_orders, revenue = paid.get(day, (0, Decimal(0)))
        figures.append(
            DayFigures(
                date=day, orders=placed.get(day, 0), paid_orders=paid_orders, revenue=revenue
            )
        )
    return OrderStats(
        timezone=name,
        currency=currency,
        by_status={status: by_status.get(status, 0) for status in Status},
        days=figures,
    )
