"""The order lifecycle's business rules: every status change goes through
`change_status`, which asks the transition table (lifecycle.py), keeps the history and
gives the stock back when an order is closed."""

import logging
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from order_service import metrics, repository
from order_service.lifecycle import (
    CUSTOMER_CANCELLABLE,
    RELEASES_STOCK,
    TIMESTAMP_COLUMN,
    Actor,
    PaymentStatus,
    Status,
    check_payment_transition,
    check_transition,
    payment_status_after,
)
from order_service.messages import RELEASE_STOCK, enqueue_call, send_now
from order_service.models import Order, OrderStatusChange, OutboxMessage
from order_service.schemas import DayFigures, OrderStats, PaymentUpdate
from shared.auth import AuthenticatedUser
from shared.errors import BadRequest, NotFound

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


async def get_own_order(session: AsyncSession, user: AuthenticatedUser, order_id: str) -> Order:
    order = await repository.get_order(session, _parse_id(order_id), user_id=user.id)
    if order is None:
        raise NotFound("Order not found")
    return order


async def get_any_order(session: AsyncSession, order_id: str) -> Order:
    order = await repository.get_order(session, _parse_id(order_id))
    if order is None:
        raise NotFound("Order not found")
    return order


def _parse_id(order_id: str) -> uuid.UUID:
    """A path id that is not a UUID names no order: 404, as for an unknown one."""
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise NotFound("Order not found") from None


async def cancel_as_customer(app: FastAPI, user: AuthenticatedUser, order_id: str) -> Order:
    """The owner's cancel. The row lock makes two racing cancels one cancellation (and
    one release); the release is written to the outbox with it, so a product service
    that is down delays it, never loses it."""
    async with app.state.sessionmaker() as session, session.begin():
        order = await repository.get_order(
            session, _parse_id(order_id), user_id=user.id, for_update=True
        )
        if order is None:
            raise NotFound("Order not found")
        if order.status not in CUSTOMER_CANCELLABLE:
            raise BadRequest("Order cannot be cancelled")
        calls = change_status(
            session, order, Status.CANCELLED, Actor.CUSTOMER, "Cancelled by the customer"
        )
        order = await repository.reload_order(session, order.id)
    await send_now(app, calls)
    return order


async def change_status_as_admin(
    app: FastAPI, admin: AuthenticatedUser, order_id: str, target: Status
) -> Order:
    async with app.state.sessionmaker() as session, session.begin():
        order = await repository.get_order(session, _parse_id(order_id), for_update=True)
        if order is None:
            raise NotFound("Order not found")
        calls = change_status(session, order, target, Actor.ADMIN, f"Set by admin {admin.id}")
        order = await repository.reload_order(session, order.id)
    await send_now(app, calls)
    return order


async def apply_payment_update(app: FastAPI, update: PaymentUpdate) -> tuple[Order, bool]:
    """The payment service's news, applied once per `eventId` (False: seen before, nothing
    changed)."""
    async with app.state.sessionmaker() as session, session.begin():
        order = await repository.get_order(session, update.order_id, for_update=True)
        if order is None:
            raise NotFound("Order not found")
        if not await repository.record_event(session, update.event_id, order.id):
            return order, False
        calls = _apply_payment_update(session, order, update)
        order = await repository.reload_order(session, order.id)
    await send_now(app, calls)
    return order, True


def _apply_payment_update(
    session: AsyncSession, order: Order, update: PaymentUpdate
) -> list[OutboxMessage]:
    if update.payment_id and update.payment_id not in order.payment_ids:
        order.payment_ids = [*order.payment_ids, update.payment_id]

    if update.payment_status == PaymentStatus.PAID or update.status == Status.PAID:
        return _payment_settled(session, order)

    if update.payment_status is not None and update.payment_status != order.payment_status:
        if update.payment_status == PaymentStatus.FAILED:
            _payment_failed(session, order)
        else:
            check_payment_transition(order.payment_status, update.payment_status)
            _set_payment_status(
                session,
                order,
                update.payment_status,
                f"Payment {update.payment_status.replace('_', ' ')}",
            )

    # A failed payment never fails the order: it stays payable (a `status: failed` sent
    # with `paymentStatus: failed` is the payment's news, not the order's).
    payment_failure = update.payment_status == PaymentStatus.FAILED
    if update.status is not None and update.status != order.status and not payment_failure:
        return change_status(
            session, order, update.status, Actor.PAYMENT, "Changed by the payment service"
        )
    return []


def _payment_settled(session: AsyncSession, order: Order) -> list[OutboxMessage]:
    if order.status == Status.PENDING:
        return change_status(session, order, Status.PAID, Actor.PAYMENT, "Payment settled")
    if order.status in (Status.CANCELLED, Status.FAILED):
        # Money for an order that no longer exists: it stays closed, the money goes back.
        if order.payment_status not in (PaymentStatus.REFUND_PENDING, PaymentStatus.REFUNDED):
            _set_payment_status(
                session,
                order,
                PaymentStatus.REFUND_PENDING,
                f"Payment settled after the order was {order.status}: refund pending",
            )
        logger.warning(
            "payment settled on a closed order",
            extra={"orderId": str(order.id), "status": order.status},
        )
        return []
    # Already paid (a second notice of the same payment, or a second payment).
    logger.info(
        "payment settled on an order already paid",
        extra={"orderId": str(order.id), "paymentIds": order.payment_ids},
    )
    return []


def _payment_failed(session: AsyncSession, order: Order) -> None:
    # A failed attempt never undoes a settled payment, nor touches a closed order.
    if order.status == Status.PENDING and order.payment_status == PaymentStatus.PENDING:
        _set_payment_status(
            session, order, PaymentStatus.FAILED, "Payment failed; the order can be paid again"
        )


def _set_payment_status(
    session: AsyncSession, order: Order, payment_status: str, reason: str
) -> None:
    """A payment status change the payment service reported; the order's status stays."""
    order.payment_status = payment_status
    record_change(session, order, from_status=order.status, actor=Actor.PAYMENT, reason=reason)


async def expire_unpaid_orders(app: FastAPI) -> int:
    """The expiry worker's job: pending orders older than ORDER_PAYMENT_TIMEOUT are
    cancelled and their stock released. Rows another replica holds are skipped."""
    settings = app.state.settings
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.order_payment_timeout)
    async with app.state.sessionmaker() as session, session.begin():
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
    await send_now(app, calls)
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
