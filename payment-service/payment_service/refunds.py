"""Refunds: an admin gives money back, never more than was paid. Stripe's are made
through Stripe's API (its idempotency key is the refund's id); M-Pesa's are made in the
M-Pesa portal and recorded here with their reference. A payment's refunded amount and
status follow its succeeded refunds (`apply_refund_totals`), and the order hears of a
full refund."""

import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import metrics, repository
from payment_service.exceptions import PaymentNotFound, StripeNotConfigured
from payment_service.lifecycle import (
    KEPT,
    SETTLED_PAID,
    By,
    PaymentStatus,
    Provider,
    RefundStatus,
    move_payment,
    move_refund,
)
from payment_service.models import Payment, Refund
from payment_service.outbox import PAYMENT_REFUNDED, queue_order_update
from payment_service.payments import payment_out
from payment_service.schemas import RefundOut, RefundRequest, RefundResult
from payment_service.state import PaymentState
from payment_service.stripe_client import refund_status, stripe_error_fields, to_minor_units
from shared.auth import AuthenticatedUser

if TYPE_CHECKING:
    from stripe.params import RefundCreateParams
from shared.errors import BadGateway, BadRequest
from shared.idempotency import Answer, KeyedRequest
from shared.schemas import money_str

logger = logging.getLogger(__name__)

# A failed refund's `errorMessage` when Stripe refused it (its words are in the log).
STRIPE_REFUSED_REFUND = "Stripe refused the refund"


async def refund(
    state: PaymentState,
    admin: AuthenticatedUser,
    payment_id: uuid.UUID,
    data: RefundRequest,
    keyed: KeyedRequest | None,
) -> Answer:
    """POST /api/payments/:id/refund, once per Idempotency-Key."""
    return await state.idempotency_keys.answer(
        state.sessionmaker,
        user_id=admin.id,
        request=keyed,
        action=lambda: refund_payment(state, admin, payment_id, data),
    )


async def refund_payment(
    state: PaymentState, admin: AuthenticatedUser, payment_id: uuid.UUID, data: RefundRequest
) -> RefundResult:
    """The payment row is locked while the amount still refundable is computed; a Stripe
    refund is asked for outside any transaction and recorded after."""
    async with state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        if payment is None:
            raise PaymentNotFound()
        if payment.status == PaymentStatus.REFUNDED:
            raise BadRequest("Payment is already fully refunded")
        if payment.status not in SETTLED_PAID:
            raise BadRequest("Only a completed payment can be refunded")
        refundable = payment.amount - await repository.reserved_refund_total(session, payment.id)
        amount = data.amount if data.amount is not None else refundable
        if refundable <= 0:
            raise BadRequest("Payment is already fully refunded")
        if amount <= 0 or amount > refundable:
            raise BadRequest(
                "Refund amount exceeds what can be refunded",
                details={"refundable": money_str(refundable)},
            )
        if payment.provider == Provider.MPESA:
            return await _record_mpesa_refund(session, admin, payment, data, amount)
        if data.manual:
            raise BadRequest('Stripe refunds are made through Stripe: leave out "manual"')
        client = state.stripe
        if client is None:
            raise StripeNotConfigured()
        pending = Refund(
            id=uuid.uuid4(),
            payment_id=payment.id,
            amount=amount,
            status=RefundStatus.PENDING,
            reason=data.reason,
            created_by=admin.id,
        )
        session.add(pending)
        intent_id, currency, order_id = (
            payment.external_reference,
            payment.currency,
            payment.order_id,
        )
        # Settled through Stripe's webhook, which found the payment by this reference.
        assert intent_id is not None

    import stripe  # here: the SDK is loaded at the first Stripe call (state.py)

    params: RefundCreateParams = {
        "payment_intent": intent_id,
        "amount": to_minor_units(amount, currency),
        "reason": "requested_by_customer",
        "metadata": {
            "refundId": str(pending.id),
            "paymentId": str(payment_id),
            "orderId": str(order_id),
        },
    }
    try:
        stripe_refund = await client.v1.refunds.create_async(
            params,
            options={"idempotency_key": f"refund-{pending.id}"},
        )
    except stripe.APIConnectionError:
        # Stripe may have made it: the refund stays pending until its webhook says.
        raise BadGateway("Stripe is unavailable, try again") from None
    except stripe.StripeError as exc:
        # Stripe's message is for the log only (it speaks of our request and account).
        logger.warning(
            "stripe refused a refund",
            extra={"refundId": str(pending.id), **stripe_error_fields(exc)},
        )
        async with state.sessionmaker() as session, session.begin():
            row = await repository.lock_refund(session, pending.id)
            if move_refund(row, RefundStatus.FAILED):
                row.error_message = STRIPE_REFUSED_REFUND
        raise BadRequest("Failed to refund Stripe payment") from None

    async with state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        assert payment is not None  # payments are never deleted
        row = await repository.lock_refund(session, pending.id)
        row.provider_refund_id = stripe_refund.id
        move_refund(row, refund_status(stripe_refund.status))
        await apply_refund_totals(session, payment)
        return RefundResult(
            message="Refund created",
            refund=RefundOut.model_validate(row),
            payment=payment_out(payment),
        )


async def _record_mpesa_refund(
    session: AsyncSession,
    admin: AuthenticatedUser,
    payment: Payment,
    data: RefundRequest,
    amount: object,
) -> RefundResult:
    """M-Pesa refunds are made in the M-Pesa portal: recorded here as made."""
    if not data.manual or not data.reference:
        raise BadRequest(
            "M-Pesa refunds are made in the M-Pesa portal: record one with "
            '"manual": true and its "reference"'
        )
    made = Refund(
        id=uuid.uuid4(),
        payment_id=payment.id,
        amount=amount,
        status=RefundStatus.SUCCEEDED,
        reason=data.reason,
        manual=True,
        reference=data.reference,
        created_by=admin.id,
    )
    session.add(made)
    await apply_refund_totals(session, payment)
    return RefundResult(
        message="Refund recorded",
        refund=RefundOut.model_validate(made),
        payment=payment_out(payment),
    )


async def apply_refund_totals(session: AsyncSession, payment: Payment) -> None:
    """The payment's refunded amount and status follow its succeeded refunds; the order
    hears of a full refund."""
    await session.flush()
    if payment.status not in SETTLED_PAID:
        return
    refunded = min(await repository.succeeded_refund_total(session, payment.id), payment.amount)
    payment.refunded_amount = refunded
    if refunded >= payment.amount:
        target = PaymentStatus.REFUNDED
    elif refunded > 0:
        target = PaymentStatus.PARTIALLY_REFUNDED
    else:
        target = PaymentStatus.COMPLETED
    if not move_payment(payment, target, By.REFUNDS):
        return  # the status is already the one the refunds say
    metrics.payment_status(session, payment)
    if target is PaymentStatus.REFUNDED:
        # A second payment of the order refunded (a double charge put right): the order
        # keeps the first one and stays paid.
        kept = await repository.paid_payment_for_order(
            session, payment.order_id, other_than=payment.id, statuses=KEPT
        )
        if kept is None:
            queue_order_update(session, payment, PAYMENT_REFUNDED)
