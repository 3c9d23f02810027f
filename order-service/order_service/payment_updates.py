"""Where an order becomes paid: the payment service's news (settled, failed, refund
pending, refunded), applied once per event id. A settlement moves a pending order to
`paid` through the transition table; money for an order that was closed meanwhile leaves
it closed with a refund pending."""

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from order_service import repository
from order_service.exceptions import OrderNotFound
from order_service.lifecycle import Actor, PaymentStatus, Status, check_payment_transition
from order_service.models import Order, OutboxMessage
from order_service.orders import change_status, get_any_order, record_change
from order_service.outbox import send_now
from order_service.schemas import OrderDetailOut, PaymentUpdate
from order_service.state import OrderState

logger = logging.getLogger(__name__)


async def apply_payment_update(
    state: OrderState, update: PaymentUpdate
) -> tuple[OrderDetailOut, bool]:
    """The payment service's news, applied once per `eventId` (False: seen before, nothing
    changed); the order as it is afterwards."""
    async with state.sessionmaker() as session, session.begin():
        order = await repository.lock_order(session, update.order_id)
        if order is None:
            raise OrderNotFound()
        applied = await repository.record_event(session, update.event_id, order.id)
        calls = _apply_payment_update(session, order, update) if applied else []
    await send_now(state, calls)
    return await get_any_order(state, str(update.order_id)), applied


def _apply_payment_update(
    session: AsyncSession, order: Order, update: PaymentUpdate
) -> list[OutboxMessage]:
    if update.payment_id and update.payment_id not in order.payment_ids:
        order.payment_ids = [*order.payment_ids, update.payment_id]

    payment_status = None if update.payment_status is None else PaymentStatus(update.payment_status)
    if payment_status == PaymentStatus.PAID or update.status == Status.PAID:
        return _payment_settled(session, order)

    if payment_status is not None and payment_status != order.payment_status:
        if payment_status == PaymentStatus.FAILED:
            _payment_failed(session, order)
        else:
            check_payment_transition(order.payment_status, payment_status)
            _set_payment_status(
                session,
                order,
                payment_status,
                f"Payment {payment_status.replace('_', ' ')}",
            )

    # A failed payment never fails the order: it stays payable (a `status: failed` sent
    # with `paymentStatus: failed` is the payment's news, not the order's).
    payment_failure = payment_status == PaymentStatus.FAILED
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
