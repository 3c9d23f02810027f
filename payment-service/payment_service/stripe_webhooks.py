"""Stripe's webhooks: where a Stripe webhook is verified, and what each event changes.

An event is believed only when its signature, computed over the raw bytes with
STRIPE_WEBHOOK_SECRET, holds (`verify_stripe_event`; 400 otherwise, nothing read). Each
event is processed once: its id is recorded in the same transaction as what it changes.
A success is checked against the payment (amount and currency) before it settles it;
refunds made here or in the Stripe Dashboard are recorded and the payment's status
follows them (refunds.py).
"""

import json
import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payment_service import metrics, repository
from payment_service.config import PaymentSettings
from payment_service.exceptions import InvalidSignature, StripeNotConfigured
from payment_service.lifecycle import (
    By,
    EventOutcome,
    Outcome,
    PaymentStatus,
    Provider,
    RefundStatus,
    move_refund,
)
from payment_service.models import Payment, Refund
from payment_service.refunds import apply_refund_totals
from payment_service.settlement import settle
from payment_service.stripe_client import from_minor_units, refund_status, to_minor_units

logger = logging.getLogger(__name__)

HANDLED = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "refund.failed",
    }
)


def verify_stripe_event(
    settings: PaymentSettings, payload: bytes, signature: str | None
) -> dict[str, Any]:
    """The event, once its signature over the raw bytes holds; 400 otherwise."""
    if settings.stripe_webhook_secret is None:
        raise StripeNotConfigured()
    import stripe  # here: the SDK is loaded at the first Stripe call (state.py)

    try:
        stripe.Webhook.construct_event(
            payload, signature or "", settings.stripe_webhook_secret.get_secret_value()
        )
    except (stripe.SignatureVerificationError, ValueError, KeyError, IndexError):
        metrics.webhook_rejected("stripe", "bad_signature")
        raise InvalidSignature() from None
    event: dict[str, Any] = json.loads(payload)
    return event


async def handle_stripe_event(
    sessionmaker: async_sessionmaker[AsyncSession], event: dict[str, Any]
) -> Outcome:
    """A verified Stripe event, processed once: its id is recorded in the same transaction
    as what it changes."""
    event_type = str(event.get("type", ""))
    obj = (event.get("data") or {}).get("object") or {}
    async with sessionmaker() as session, session.begin():
        event_row = await repository.record_event_once(
            session,
            provider=Provider.STRIPE,
            event_id=str(event["id"]),
            event_type=event_type[:100],
            reference=_stripe_reference(obj),
            payload=event,
            outcome=EventOutcome.RECEIVED,
        )
        if event_row is None:
            return Outcome(EventOutcome.DUPLICATE)
        outcome, payment_id = await _apply(session, event_type, obj)
        await repository.set_event_outcome(session, event_row, str(outcome), payment_id=payment_id)
    return outcome


def _stripe_reference(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "payment_intent":
        reference = obj.get("id")
        return reference if isinstance(reference, str) else None
    intent = obj.get("payment_intent")
    return intent if isinstance(intent, str) else None


async def _apply(
    session: AsyncSession, event_type: str, obj: dict[str, Any]
) -> tuple[Outcome, uuid.UUID | None]:
    if event_type not in HANDLED:
        return Outcome(EventOutcome.IGNORED), None
    intent_id = _stripe_reference(obj)
    payment = (
        await repository.payment_by_reference(session, Provider.STRIPE, intent_id, lock=True)
        if intent_id
        else None
    )
    if payment is None:
        logger.warning("stripe event for an unknown payment", extra={"type": event_type})
        return Outcome(EventOutcome.UNKNOWN_PAYMENT), None

    if event_type == "payment_intent.succeeded":
        return await _succeeded(session, payment, obj), payment.id
    if event_type == "payment_intent.payment_failed":
        error = (obj.get("last_payment_error") or {}).get("message") or "Payment failed"
        changed = await settle(
            session, payment, PaymentStatus.FAILED, error_message=f"Stripe: {error}"
        )
        return Outcome(EventOutcome.FAILED if changed else EventOutcome.NO_CHANGE), payment.id
    if event_type == "payment_intent.canceled":
        reason = obj.get("cancellation_reason") or "canceled"
        changed = await settle(
            session, payment, PaymentStatus.CANCELLED, error_message=f"Stripe: {reason}"
        )
        return Outcome(EventOutcome.CANCELLED if changed else EventOutcome.NO_CHANGE), payment.id
    if event_type == "charge.refunded":
        for refund in (obj.get("refunds") or {}).get("data") or []:
            await _apply_refund(session, payment, refund)
        await _record_untracked_refund(session, payment, obj)
    else:  # refund.*
        await _apply_refund(session, payment, obj)
    await apply_refund_totals(session, payment)
    return Outcome(EventOutcome.REFUNDS, f"payment {payment.status}"), payment.id


async def _succeeded(session: AsyncSession, payment: Payment, intent: dict[str, Any]) -> Outcome:
    expected = to_minor_units(payment.amount, payment.currency)
    received = intent.get("amount_received")
    currency = str(intent.get("currency", "")).lower()
    if received != expected or currency != payment.currency.lower():
        logger.error(
            "stripe payment does not match the order",
            extra={"paymentId": str(payment.id), "received": received, "currency": currency},
        )
        return Outcome(
            EventOutcome.REJECTED, f"{received} {currency} is not {expected} {payment.currency}"
        )
    charge = intent.get("latest_charge")
    changed = await settle(
        session,
        payment,
        PaymentStatus.COMPLETED,
        transaction_id=charge if isinstance(charge, str) else None,
        by=By.CONFIRMATION,
    )
    return Outcome(EventOutcome.COMPLETED if changed else EventOutcome.DUPLICATE)


async def _apply_refund(session: AsyncSession, payment: Payment, refund: dict[str, Any]) -> None:
    """A Stripe refund object: ours (by id, or by the refundId we put in its metadata) is
    updated; one made in the Stripe Dashboard is recorded."""
    refund_id = refund.get("id")
    if not isinstance(refund_id, str):
        return
    status = refund_status(refund.get("status"))
    row = await repository.refund_by_provider_id(session, refund_id)
    if row is None:
        row = await repository.lock_refund_by_id(
            session, (refund.get("metadata") or {}).get("refundId")
        )
    if row is None:
        amount = from_minor_units(int(refund.get("amount") or 0), payment.currency)
        if amount > 0:
            session.add(
                Refund(
                    id=uuid.uuid4(),
                    payment_id=payment.id,
                    amount=amount,
                    reason="Refunded in Stripe",
                    provider_refund_id=refund_id,
                    status=status,
                )
            )
        return
    row.provider_refund_id = refund_id
    move_refund(row, status)
    await session.flush()


async def _record_untracked_refund(
    session: AsyncSession, payment: Payment, charge: dict[str, Any]
) -> None:
    """charge.refunded without its refund list (recent API versions): when Stripe reports
    more refunded than we know of, and none of ours is still pending, record the rest."""
    refunded = charge.get("amount_refunded")
    if not isinstance(refunded, int):
        return
    await session.flush()
    total = from_minor_units(refunded, payment.currency)
    known = await repository.reserved_refund_total(session, payment.id)
    if total > known and not await repository.pending_refunds(session, payment.id):
        session.add(
            Refund(
                id=uuid.uuid4(),
                payment_id=payment.id,
                amount=min(total - known, payment.amount - known),
                reason="Refunded in Stripe",
                status=RefundStatus.SUCCEEDED,
            )
        )
