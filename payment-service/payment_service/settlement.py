"""Settling a payment: the one place where a payment becomes completed, failed or
cancelled (from an M-Pesa callback, the M-Pesa status poller, a Stripe webhook or the
money reconciliation's repair), and where the order service is told, in the same
transaction (the outbox)."""

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import metrics, repository
from payment_service.lifecycle import By, PaymentStatus, move_payment, payment_move_allowed
from payment_service.models import Payment
from payment_service.outbox import ORDER_PAID, PAYMENT_FAILED, queue_order_update

logger = logging.getLogger(__name__)

ENDINGS = frozenset({PaymentStatus.COMPLETED, PaymentStatus.FAILED, PaymentStatus.CANCELLED})


async def settle(
    session: AsyncSession,
    payment: Payment,
    outcome: PaymentStatus,
    *,
    transaction_id: str | None = None,
    error_message: str | None = None,
    details: dict[str, Any] | None = None,
    by: By = By.PROVIDER,
) -> bool:
    """Moves a locked payment to completed, failed or cancelled and, in the same
    transaction, queues the order's update. False when nothing changed (a duplicate, or a
    change the transition table does not allow for `by`).

    A payment that was failed or cancelled (expired) may still complete when the provider
    itself confirms the money arrived (`By.CONFIRMATION`): the customer paid late, and
    money received is never ignored."""
    if outcome not in ENDINGS:
        raise ValueError(f"a payment is not settled as {outcome!r}")
    if outcome is PaymentStatus.COMPLETED:
        update = await _complete(session, payment, transaction_id, by)
        if update is None:
            return False
    else:
        if not move_payment(payment, outcome, by):
            return False
        payment.error_message = (error_message or outcome)[:2000]
        other = await repository.paid_payment_for_order(
            session, payment.order_id, other_than=payment.id
        )
        # Only the payment status changes: the order stays pending and payable again.
        update = {} if other is not None else PAYMENT_FAILED

    if details:
        payment.details = {**payment.details, **details}
    metrics.payment_status(session, payment)
    if update:
        queue_order_update(session, payment, update)
    logger.info("payment settled", extra={"paymentId": str(payment.id), "status": payment.status})
    return True


async def _complete(
    session: AsyncSession, payment: Payment, transaction_id: str | None, by: By
) -> dict[str, str] | None:
    """The payment completed; the order's update, or None when nothing changed."""
    if not payment_move_allowed(payment.status, PaymentStatus.COMPLETED, by):
        return None
    if transaction_id and await repository.transaction_id_taken(
        session, transaction_id, payment.id
    ):
        logger.error(
            "a receipt already used by another payment",
            extra={"paymentId": str(payment.id), "transactionId": transaction_id},
        )
        return None
    other = await repository.paid_payment_for_order(
        session, payment.order_id, other_than=payment.id
    )
    move_payment(payment, PaymentStatus.COMPLETED, by)
    payment.completed_at = datetime.now(UTC)
    payment.transaction_id = transaction_id or payment.transaction_id
    payment.error_message = None
    if other is not None:
        # Two payments for one order: keep the money on record and ask for a refund.
        payment.error_message = (
            f"The order was already paid by payment {other.id}: refund this payment"
        )
        logger.error(
            "order paid twice",
            extra={"paymentId": str(payment.id), "otherPaymentId": str(other.id)},
        )
    return ORDER_PAID
