"""The payment service's business rules.

A payment is charged for the order's total, in the store's currency, only for an order
that exists, belongs to the payer and is still pending. Money is believed only when the
provider says so in a way that cannot be forged: a Stripe event signed with the webhook
secret, or an M-Pesa callback carrying the callback secret and confirmed by Daraja's
STK Query. Every settlement writes, in its own transaction, the outbox message that tells
the order service.

No database transaction is held open across a call to Daraja, Stripe or the order
service: each flow is a few short transactions around the calls.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payment_service import metrics, orders, repository
from payment_service.config import PaymentSettings
from payment_service.daraja import (
    DarajaClient,
    DarajaError,
    DarajaRefused,
    DarajaUnavailable,
    StkQueryResult,
)
from payment_service.models import (
    IN_FLIGHT,
    KEPT,
    SETTLED_PAID,
    OutboxMessage,
    Payment,
    ProviderEvent,
    Refund,
)
from payment_service.schemas import (
    MpesaInitiated,
    MpesaPaymentRequest,
    PaymentOut,
    RefundOut,
    RefundRequest,
    RefundResult,
    StripeInitiated,
    StripePaymentRequest,
)
from payment_service.stripe_gateway import (
    UnrepresentableAmount,
    from_minor_units,
    payment_intent_params,
    to_minor_units,
)
from shared.auth import AuthenticatedUser
from shared.errors import AppError, BadRequest, Conflict, NotFound, ServiceUnavailable
from shared.outbox import enqueue
from shared.schemas import money_str

logger = logging.getLogger(__name__)

# Daraja's ResultCodes for a prompt the customer did not answer: the payment is cancelled.
CANCELLED_RESULT_CODES = frozenset({"1032", "1037"})
TRANSACTION_DESC = "Order payment"  # 13 characters, Daraja's maximum


class BadGateway(AppError):
    status_code = 502


def utcnow() -> datetime:
    return datetime.now(UTC)


def mask_phone(phone: str | None) -> str | None:
    """For logs: 2547****5678."""
    if not phone or len(phone) < 8:
        return phone
    return phone[:4] + "*" * (len(phone) - 8) + phone[-4:]


@dataclass
class Providers:
    """What the app talks to, built at start-up (see main.py)."""

    daraja: DarajaClient | None
    stripe: stripe.StripeClient | None


def payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut.model_validate(payment)


# --- Ordering a payment -------------------------------------------------------------


async def _payable_order(
    app: FastAPI,
    user: AuthenticatedUser,
    order_id: uuid.UUID,
    amount: Decimal | None,
    currency: str | None,
) -> tuple[dict[str, Any], Decimal, str]:
    """The order, the amount to charge and its currency; refusals as the issue lists them."""
    settings: PaymentSettings = app.state.settings
    order = await orders.fetch_order(app.state.services, settings.order_service_url, order_id)
    if order is None or str(order.get("userId")) != str(user.id):
        raise NotFound("Order not found")
    async with app.state.sessionmaker() as session:
        # The order service may not have heard of a payment that just completed.
        paid_here = await repository.paid_payment_for_order(session, order_id)
    if (
        paid_here is not None
        or order.get("status") in orders.PAID_ORDER_STATUSES
        or order.get("paymentStatus") in orders.PAID_PAYMENT_STATUSES
    ):
        raise BadRequest("Order is already paid")
    if order.get("status") != "pending":
        raise BadRequest("Order is not payable")

    total = Decimal(str(order["totalAmount"]))
    if amount is not None and amount != total:
        raise BadRequest(
            "Amount does not match the order total", details={"expected": money_str(total)}
        )
    store_currency = settings.store_currency
    order_currency = str(order.get("currency") or store_currency).upper()
    if order_currency != store_currency:
        raise BadRequest(
            "Order currency is not the store currency", details={"expected": store_currency}
        )
    if currency is not None and currency.upper() != store_currency:
        raise BadRequest(f"Currency must be {store_currency}", details={"expected": store_currency})
    if total <= 0:
        raise BadRequest("Order is not payable")
    return order, total, store_currency


async def _claim_payment(app: FastAPI, **values: Any) -> Payment:
    """A new pending payment, or 409 with the payment already in flight for the order."""
    async with app.state.sessionmaker() as session, session.begin():
        payment_id = await repository.insert_payment_unless_in_flight(
            session, id=uuid.uuid4(), status="pending", **values
        )
        if payment_id is not None:
            payment = await session.get(Payment, payment_id)
            metrics.payment_status(session, payment)
            return payment
        in_flight = await repository.in_flight_payment(session, values["order_id"])
    raise Conflict(
        "A payment for this order is already in progress",
        extra={"payment": payment_out(in_flight).model_dump(mode="json", by_alias=True)}
        if in_flight
        else None,
    )


async def _mark_failed(app: FastAPI, payment_id: uuid.UUID, message: str) -> Payment:
    """The provider refused or could not be reached: the attempt is over. Nothing was
    charged, so the order hears nothing and stays payable."""
    async with app.state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        if payment.status in IN_FLIGHT:
            payment.status = "failed"
            payment.error_message = message[:2000]
            metrics.payment_status(session, payment)
        return payment


async def _mark_processing(
    app: FastAPI, payment_id: uuid.UUID, reference: str, details: dict[str, Any]
) -> Payment:
    """The provider accepted the request: the payment waits for the customer."""
    async with app.state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        if payment.status == "pending":
            payment.status = "processing"
            metrics.payment_status(session, payment)
        payment.external_reference = reference
        payment.details = {**payment.details, **details}
        return payment


def _account_reference(order: dict[str, Any]) -> str:
    """What the customer sees in the M-Pesa prompt (at most 12 characters): the end of the
    order number, else the start of the order id."""
    number = "".join(ch for ch in str(order.get("orderNumber") or "") if ch.isalnum())
    if number:
        return number[-12:]
    return uuid.UUID(str(order["id"])).hex[:12].upper()


async def initiate_mpesa(
    app: FastAPI, user: AuthenticatedUser, data: MpesaPaymentRequest
) -> MpesaInitiated:
    settings: PaymentSettings = app.state.settings
    providers: Providers = app.state.providers
    if providers.daraja is None:
        raise ServiceUnavailable("M-Pesa is not configured")
    order, total, currency = await _payable_order(
        app, user, data.order_id, data.amount, data.currency
    )
    if currency != "KES":
        raise BadRequest("M-Pesa payments are in KES only")
    if total != total.to_integral_value():
        raise BadRequest(
            "M-Pesa accepts whole shillings only: this order's total has cents",
            details={"expected": money_str(total)},
        )
    if total > settings.mpesa_max_amount:
        raise BadRequest(
            f"M-Pesa payments are limited to {money_str(settings.mpesa_max_amount)} KES",
            details={"maximum": money_str(settings.mpesa_max_amount)},
        )

    account_reference = _account_reference(order)
    payment = await _claim_payment(
        app,
        order_id=data.order_id,
        user_id=user.id,
        provider="mpesa",
        amount=total,
        currency=currency,
        phone_number=data.phone_number,
        details={"accountReference": account_reference},
    )
    callback_url = (
        settings.mpesa_callback_url.rstrip("/")
        + "/"
        + settings.mpesa_callback_secret.get_secret_value()
    )
    body = providers.daraja.stk_push_body(
        amount=total,
        phone=data.phone_number,
        callback_url=callback_url,
        account_reference=account_reference,
        transaction_desc=TRANSACTION_DESC,
        transaction_type=settings.mpesa_transaction_type,
        party_b=settings.mpesa_party_b,
    )
    try:
        accepted = await providers.daraja.stk_push(body)
    except DarajaRefused as exc:
        logger.warning(
            "daraja refused an STK push",
            extra={"paymentId": str(payment.id), "errorCode": exc.error_code},
        )
        await _mark_failed(app, payment.id, f"M-Pesa refused: {exc.error_message}")
        raise BadRequest("Failed to initiate M-Pesa payment", details=exc.details()) from None
    except DarajaUnavailable as exc:
        logger.warning(
            "daraja unavailable", extra={"paymentId": str(payment.id), "reason": str(exc)}
        )
        await _mark_failed(app, payment.id, "M-Pesa was unavailable")
        raise BadGateway("M-Pesa is unavailable, try again") from None

    payment = await _mark_processing(
        app,
        payment.id,
        accepted.checkout_request_id,
        {
            "merchantRequestId": accepted.merchant_request_id,
            "checkoutRequestId": accepted.checkout_request_id,
        },
    )
    logger.info(
        "stk push sent",
        extra={"paymentId": str(payment.id), "phone": mask_phone(data.phone_number)},
    )
    return MpesaInitiated(
        message="M-Pesa payment initiated. Please check your phone.",
        payment=payment_out(payment),
        checkout_request_id=accepted.checkout_request_id,
    )


async def initiate_stripe(
    app: FastAPI, user: AuthenticatedUser, data: StripePaymentRequest
) -> StripeInitiated:
    settings: PaymentSettings = app.state.settings
    client = app.state.providers.stripe
    if client is None:
        raise ServiceUnavailable("Stripe is not configured")
    _, total, currency = await _payable_order(app, user, data.order_id, data.amount, data.currency)
    try:
        amount_minor = to_minor_units(total, currency)
    except UnrepresentableAmount as exc:
        raise BadRequest(str(exc)) from None

    payment = await _claim_payment(
        app,
        order_id=data.order_id,
        user_id=user.id,
        provider="stripe",
        amount=total,
        currency=currency,
        details={},
    )
    params = payment_intent_params(
        amount_minor=amount_minor,
        currency=currency,
        metadata={
            "orderId": str(data.order_id),
            "userId": str(user.id),
            "paymentId": str(payment.id),
        },
        payment_method_types=settings.stripe_payment_method_types,
    )
    try:
        intent = await client.v1.payment_intents.create_async(
            params, options={"idempotency_key": f"payment-{payment.id}"}
        )
    except stripe.APIConnectionError:
        await _mark_failed(app, payment.id, "Stripe was unavailable")
        raise BadGateway("Stripe is unavailable, try again") from None
    except stripe.StripeError as exc:
        message = exc.user_message or str(exc)
        logger.warning("stripe refused a payment intent", extra={"paymentId": str(payment.id)})
        await _mark_failed(app, payment.id, f"Stripe refused: {message}")
        raise BadRequest("Failed to create Stripe payment", details=message) from None

    payment = await _mark_processing(app, payment.id, intent.id, {"paymentIntentId": intent.id})
    return StripeInitiated(
        message="Stripe payment initiated",
        payment=payment_out(payment),
        client_secret=intent.client_secret,
    )


# --- Settling -------------------------------------------------------------------------


async def settle(
    session: AsyncSession,
    payment: Payment,
    outcome: str,
    *,
    transaction_id: str | None = None,
    error_message: str | None = None,
    details: dict[str, Any] | None = None,
    verified: bool = False,
) -> bool:
    """Moves a locked payment to completed, failed or cancelled and, in the same
    transaction, queues the order's update. False when nothing changed (a duplicate, or a
    transition the status machine does not allow).

    A payment that was failed or cancelled (expired) may still complete when the provider
    itself confirms the money arrived (`verified`): the customer paid late, and money
    received is never ignored."""
    if outcome == "completed":
        allowed = payment.status in IN_FLIGHT or (
            verified and payment.status in ("failed", "cancelled")
        )
        if not allowed:
            return False
        if transaction_id and await repository.transaction_id_taken(
            session, transaction_id, payment.id
        ):
            logger.error(
                "a receipt already used by another payment",
                extra={"paymentId": str(payment.id), "transactionId": transaction_id},
            )
            return False
        other = await repository.paid_payment_for_order(
            session, payment.order_id, other_than=payment.id
        )
        payment.status = "completed"
        payment.completed_at = utcnow()
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
        update = ORDER_PAID
    elif outcome in ("failed", "cancelled"):
        if payment.status not in IN_FLIGHT:
            return False
        payment.status = outcome
        payment.error_message = (error_message or outcome)[:2000]
        other = await repository.paid_payment_for_order(
            session, payment.order_id, other_than=payment.id
        )
        # Only the payment status changes: the order stays pending and payable again.
        update = None if other is not None else {"paymentStatus": "failed"}
    else:
        raise ValueError(f"unknown outcome {outcome!r}")

    if details:
        payment.details = {**payment.details, **details}
    metrics.payment_status(session, payment)
    if update is not None:
        queue_order_update(session, payment, update)
    logger.info(
        "payment settled",
        extra={"paymentId": str(payment.id), "status": payment.status},
    )
    return True


ORDER_PAID = {"status": "paid", "paymentStatus": "paid"}


def queue_order_update(session: AsyncSession, payment: Payment, update: dict[str, str]) -> None:
    """Tells the order service what the payment became, through the outbox: sent once this
    transaction commits, retried until the order service acknowledges."""
    enqueue(
        session,
        OutboxMessage,
        topic=orders.UPDATE_STATUS_TOPIC,
        payload={"orderId": str(payment.order_id), "paymentId": str(payment.id), **update},
    )


def _failure_outcome(result_code: str) -> str:
    return "cancelled" if result_code in CANCELLED_RESULT_CODES else "failed"


def _callback_items(stk: dict[str, Any]) -> dict[str, Any]:
    metadata = stk.get("CallbackMetadata")
    items = metadata.get("Item") if isinstance(metadata, dict) else None
    if not isinstance(items, list):
        return {}
    return {
        item["Name"]: item.get("Value")
        for item in items
        if isinstance(item, dict) and isinstance(item.get("Name"), str)
    }


def _amount_of(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return None
    return amount if amount.is_finite() else None


async def handle_mpesa_callback(app: FastAPI, body: Any, source_ip: str | None) -> str:
    """Daraja's STK callback, its secret already checked. Returns what was done (also
    stored with the callback). The callback is a claim: success is believed only once
    STK Query confirms it and the amount is the payment's."""
    stk = body.get("Body", {}).get("stkCallback") if isinstance(body, dict) else None
    if not isinstance(stk, dict):
        raise BadRequest("Invalid callback: Body.stkCallback is missing")
    checkout_id = str(stk.get("CheckoutRequestID") or "")[:255]
    result_code = str(stk.get("ResultCode", "")).strip()
    result_desc = str(stk.get("ResultDesc") or "")[:1000]
    items = _callback_items(stk)
    settings: PaymentSettings = app.state.settings
    sessionmaker: async_sessionmaker = app.state.sessionmaker

    async with sessionmaker() as session, session.begin():
        event_id = uuid.uuid4()
        payment = await repository.payment_by_reference(session, "mpesa", checkout_id, lock=True)
        outcome, verify_receipt = _judge_callback(payment, result_code, result_desc, items)
        if outcome == "settle-failure":
            changed = await settle(
                session,
                payment,
                _failure_outcome(result_code),
                error_message=result_desc or f"M-Pesa result {result_code}",
                details={"resultCode": result_code},
            )
            outcome = payment.status if changed else "duplicate"
        elif outcome == "settle-success" and not settings.mpesa_verify_callbacks:
            changed = await settle(
                session,
                payment,
                "completed",
                transaction_id=verify_receipt,
                details=_success_details(items),
            )
            outcome = "completed (unverified)" if changed else "duplicate"
        stored = "confirming with STK Query" if outcome == "settle-success" else outcome
        session.add(_mpesa_event(event_id, checkout_id, payment, body, stored, source_ip))
        if outcome == "unknown payment":
            logger.warning(
                "m-pesa callback for an unknown CheckoutRequestID",
                extra={"resultCode": result_code, "amount": str(items.get("Amount"))},
            )
        if outcome != "settle-success":
            return outcome
        payment_id = payment.id

    # Confirm with Daraja before believing it (outside any transaction).
    try:
        query = await app.state.providers.daraja.stk_query(checkout_id)
    except (DarajaError, AttributeError) as exc:
        logger.warning("stk query failed; reconciliation will settle", extra={"reason": str(exc)})
        query = None
    async with sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        if query is None or query.state == "pending":
            outcome = "unconfirmed: left to reconciliation"
        elif query.state == "completed":
            changed = await settle(
                session,
                payment,
                "completed",
                transaction_id=verify_receipt,
                details=_success_details(items),
                verified=True,
            )
            outcome = "completed" if changed else "duplicate"
        else:
            # Daraja's own word wins over the callback's.
            logger.error(
                "a success callback that STK Query denies",
                extra={"paymentId": str(payment.id), "resultCode": query.result_code},
            )
            await settle(
                session,
                payment,
                _failure_outcome(query.result_code or ""),
                error_message=query.result_desc or f"M-Pesa result {query.result_code}",
                details={"resultCode": query.result_code},
            )
            outcome = f"rejected: STK Query says {query.result_code}"
        await _set_event_outcome(session, event_id, outcome)
    return outcome


def _judge_callback(
    payment: Payment | None, result_code: str, result_desc: str, items: dict[str, Any]
) -> tuple[str, str | None]:
    """What a callback calls for, before asking Daraja anything."""
    if payment is None:
        return "unknown payment", None
    if result_code != "0":
        return "settle-failure", None
    amount = _amount_of(items.get("Amount"))
    if amount is None or amount != payment.amount:
        logger.error(
            "m-pesa callback amount does not match the payment",
            extra={"paymentId": str(payment.id), "amount": str(items.get("Amount"))},
        )
        return f"rejected: amount {items.get('Amount')} is not {payment.amount}", None
    receipt = items.get("MpesaReceiptNumber")
    if not receipt or not isinstance(receipt, str):
        return "rejected: no MpesaReceiptNumber", None
    if payment.status in SETTLED_PAID:
        return "duplicate", None
    return "settle-success", receipt[:255]


def _success_details(items: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if items.get("MpesaReceiptNumber"):
        details["mpesaReceiptNumber"] = str(items["MpesaReceiptNumber"])
    if items.get("TransactionDate"):
        details["transactionDate"] = str(items["TransactionDate"])
    return details


def _mpesa_event(event_id, checkout_id, payment, body, outcome, source_ip) -> ProviderEvent:
    return ProviderEvent(
        id=event_id,
        provider="mpesa",
        event_type="stk_callback",
        reference=checkout_id or None,
        payment_id=payment.id if payment else None,
        payload=body,
        outcome=outcome[:255],
        source_ip=source_ip,
    )


async def _set_event_outcome(session: AsyncSession, event_id: uuid.UUID, outcome: str) -> None:
    event = await session.get(ProviderEvent, event_id)
    if event is not None:
        event.outcome = outcome[:255]


# --- Reconciliation ---------------------------------------------------------------------


async def reconcile_mpesa(app: FastAPI) -> int:
    """Asks STK Query about M-Pesa payments still processing after MPESA_QUERY_AFTER
    seconds (callbacks get lost) and settles them; after MPESA_EXPIRE_AFTER seconds without
    a result they are cancelled and the order may be paid again. Returns how many were
    settled."""
    settings: PaymentSettings = app.state.settings
    sessionmaker: async_sessionmaker = app.state.sessionmaker
    now = utcnow()
    expire_after = timedelta(seconds=settings.mpesa_expire_after)
    settled = 0

    async with sessionmaker() as session, session.begin():
        abandoned = await repository.fail_abandoned_initiations(
            session,
            created_before=now - expire_after,
            message="Payment initiation was interrupted",
        )
        await app.state.idempotency_keys.forget_expired(session)
        for payment in abandoned:
            metrics.payment_status(session, payment)
            metrics.reconciliation(session, "abandoned")
    settled += len(abandoned)

    daraja = app.state.providers.daraja
    if daraja is None:
        return settled
    async with sessionmaker() as session, session.begin():
        claimed = await repository.claim_due_payments(
            session,
            provider="mpesa",
            status="processing",
            created_before=now - timedelta(seconds=settings.mpesa_query_after),
            now=now,
            lease_until=now + timedelta(seconds=settings.mpesa_reconcile_interval),
        )
    for payment_id, checkout_id, created_at in claimed:
        query = None
        if checkout_id:
            try:
                query = await daraja.stk_query(checkout_id)
            except DarajaError as exc:
                logger.warning(
                    "stk query failed", extra={"paymentId": str(payment_id), "reason": str(exc)}
                )
            metrics.reconciliation_query(query.state if query is not None else "error")
        expired = utcnow() - created_at >= expire_after
        async with sessionmaker() as session, session.begin():
            payment = await repository.lock_payment(session, payment_id)
            if payment is None or payment.status != "processing":
                continue
            if query is not None and query.state in ("completed", "failed"):
                changed = await settle_from_stk_query(session, payment, query)
            elif expired:
                changed = await settle(
                    session,
                    payment,
                    "cancelled",
                    error_message="No answer from M-Pesa in time",
                    details={"settledBy": "expiry"},
                )
            else:
                changed = False
            settled += int(changed)
            metrics.reconciliation(session, _reconciliation_outcome(payment, changed, query))
    return settled


async def settle_from_stk_query(
    session: AsyncSession, payment: Payment, query: StkQueryResult, settled_by: str = "stk_query"
) -> bool:
    """Daraja's STK Query answered with a result: the locked payment is settled as the
    callback would have settled it (a success is Daraja's own word: verified)."""
    if query.state == "completed":
        return await settle(
            session, payment, "completed", verified=True, details={"settledBy": settled_by}
        )
    if query.state == "failed":
        return await settle(
            session,
            payment,
            _failure_outcome(query.result_code or ""),
            error_message=query.result_desc or f"M-Pesa result {query.result_code}",
            details={"resultCode": query.result_code, "settledBy": settled_by},
        )
    return False


def _reconciliation_outcome(payment: Payment, changed: bool, query: StkQueryResult | None) -> str:
    """What reconciliation did with a payment (the label of mpesa_reconciliations_total)."""
    decisive = query is not None and query.state != "pending"
    if changed:
        return payment.status if decisive else "expired"
    return "unchanged" if decisive else "pending"


# --- Stripe webhooks ----------------------------------------------------------------------


def verify_stripe_event(settings: PaymentSettings, payload: bytes, signature: str | None) -> None:
    if settings.stripe_webhook_secret is None:
        raise ServiceUnavailable("Stripe is not configured")
    try:
        stripe.Webhook.construct_event(
            payload, signature, settings.stripe_webhook_secret.get_secret_value()
        )
    except (stripe.SignatureVerificationError, ValueError, KeyError, IndexError):
        metrics.webhook_rejected("stripe", "bad_signature")
        raise BadRequest("Invalid signature") from None


async def handle_stripe_event(app: FastAPI, event: dict[str, Any]) -> str:
    """A verified Stripe event, processed once: its id is recorded in the same transaction
    as what it changes."""
    event_type = str(event.get("type", ""))
    obj = (event.get("data") or {}).get("object") or {}
    async with app.state.sessionmaker() as session, session.begin():
        event_row = await repository.record_event_once(
            session,
            provider="stripe",
            event_id=str(event["id"]),
            event_type=event_type[:100],
            reference=_stripe_reference(obj),
            payload=event,
            outcome="received",
        )
        if event_row is None:
            return "duplicate"
        outcome, payment_id = await _apply_stripe_event(session, event_type, obj)
        row = await session.get(ProviderEvent, event_row)
        row.outcome = outcome[:255]
        row.payment_id = payment_id
    return outcome


def _stripe_reference(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "payment_intent":
        return obj.get("id")
    return obj.get("payment_intent") if isinstance(obj.get("payment_intent"), str) else None


async def _stripe_payment(session: AsyncSession, obj: dict[str, Any]) -> Payment | None:
    intent_id = _stripe_reference(obj)
    if not intent_id:
        return None
    return await repository.payment_by_reference(session, "stripe", intent_id, lock=True)


async def _apply_stripe_event(
    session: AsyncSession, event_type: str, obj: dict[str, Any]
) -> tuple[str, uuid.UUID | None]:
    if event_type not in {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "refund.failed",
    }:
        return "ignored", None
    payment = await _stripe_payment(session, obj)
    if payment is None:
        logger.warning("stripe event for an unknown payment", extra={"type": event_type})
        return "unknown payment", None

    if event_type == "payment_intent.succeeded":
        expected = to_minor_units(payment.amount, payment.currency)
        received = obj.get("amount_received")
        currency = str(obj.get("currency", "")).lower()
        if received != expected or currency != payment.currency.lower():
            logger.error(
                "stripe payment does not match the order",
                extra={"paymentId": str(payment.id), "received": received, "currency": currency},
            )
            return (
                f"rejected: {received} {currency} is not {expected} {payment.currency}",
                payment.id,
            )
        charge = obj.get("latest_charge")
        changed = await settle(
            session,
            payment,
            "completed",
            transaction_id=charge if isinstance(charge, str) else None,
            verified=True,
        )
        return ("completed" if changed else "duplicate"), payment.id
    if event_type == "payment_intent.payment_failed":
        error = (obj.get("last_payment_error") or {}).get("message") or "Payment failed"
        changed = await settle(session, payment, "failed", error_message=f"Stripe: {error}")
        return ("failed" if changed else "no change"), payment.id
    if event_type == "payment_intent.canceled":
        reason = obj.get("cancellation_reason") or "canceled"
        changed = await settle(session, payment, "cancelled", error_message=f"Stripe: {reason}")
        return ("cancelled" if changed else "no change"), payment.id
    if event_type == "charge.refunded":
        refunds = (obj.get("refunds") or {}).get("data") or []
        for refund in refunds:
            await _apply_stripe_refund(session, payment, refund)
        await _record_untracked_refund(session, payment, obj)
    else:  # refund.*
        await _apply_stripe_refund(session, payment, obj)
    await apply_refund_totals(session, payment)
    return f"refunds: payment {payment.status}", payment.id


REFUND_STATUS_MAP = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "canceled",
}


async def _apply_stripe_refund(
    session: AsyncSession, payment: Payment, refund: dict[str, Any]
) -> None:
    """A Stripe refund object: ours (by id, or by the refundId we put in its metadata) is
    updated; one made in the Stripe Dashboard is recorded."""
    refund_id = refund.get("id")
    if not isinstance(refund_id, str):
        return
    status = REFUND_STATUS_MAP.get(str(refund.get("status")), "pending")
    row = await repository.refund_by_provider_id(session, refund_id)
    if row is None:
        ours = (refund.get("metadata") or {}).get("refundId")
        if ours:
            try:
                row = await session.get(Refund, uuid.UUID(str(ours)), with_for_update=True)
            except ValueError:
                row = None
    if row is None:
        row = Refund(
            id=uuid.uuid4(),
            payment_id=payment.id,
            amount=from_minor_units(int(refund.get("amount") or 0), payment.currency),
            reason="Refunded in Stripe",
            provider_refund_id=refund_id,
            status=status,
        )
        if row.amount > 0:
            session.add(row)
        return
    row.provider_refund_id = refund_id
    row.status = status
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
                status="succeeded",
            )
        )


async def apply_refund_totals(session: AsyncSession, payment: Payment) -> None:
    """The payment's refunded amount and status follow its succeeded refunds; the order
    hears of a full refund."""
    await session.flush()
    if payment.status not in SETTLED_PAID:
        return
    refunded = await repository.succeeded_refund_total(session, payment.id)
    refunded = min(refunded, payment.amount)
    previous = payment.status
    payment.refunded_amount = refunded
    if refunded >= payment.amount:
        payment.status = "refunded"
    elif refunded > 0:
        payment.status = "partially_refunded"
    else:
        payment.status = "completed"
    if payment.status != previous:
        metrics.payment_status(session, payment)
    if payment.status == "refunded" and previous != "refunded":
        # A second payment of the order refunded (a double charge put right): the order
        # keeps the first one and stays paid.
        kept = await repository.paid_payment_for_order(
            session, payment.order_id, other_than=payment.id, statuses=KEPT
        )
        if kept is not None:
            return
        queue_order_update(session, payment, {"paymentStatus": "refunded"})


# --- Refunds ----------------------------------------------------------------------------


async def refund_payment(
    app: FastAPI, admin: AuthenticatedUser, payment_id: uuid.UUID, data: RefundRequest
) -> RefundResult:
    """Stripe: through Stripe's API (its idempotency key is the refund's id). M-Pesa: made
    in the M-Pesa portal and recorded here with its reference. Never more than was paid:
    the payment row is locked while the amount still refundable is computed."""
    sessionmaker: async_sessionmaker = app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        if payment is None:
            raise NotFound("Payment not found")
        if payment.status == "refunded":
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
        if payment.provider == "mpesa":
            if not data.manual or not data.reference:
                raise BadRequest(
                    "M-Pesa refunds are made in the M-Pesa portal: record one with "
                    '"manual": true and its "reference"'
                )
            refund = Refund(
                id=uuid.uuid4(),
                payment_id=payment.id,
                amount=amount,
                status="succeeded",
                reason=data.reason,
                manual=True,
                reference=data.reference,
                created_by=admin.id,
            )
            session.add(refund)
            await apply_refund_totals(session, payment)
            return RefundResult(
                message="Refund recorded",
                refund=RefundOut.model_validate(refund),
                payment=payment_out(payment),
            )
        if data.manual:
            raise BadRequest('Stripe refunds are made through Stripe: leave out "manual"')
        client = app.state.providers.stripe
        if client is None:
            raise ServiceUnavailable("Stripe is not configured")
        refund = Refund(
            id=uuid.uuid4(),
            payment_id=payment.id,
            amount=amount,
            status="pending",
            reason=data.reason,
            created_by=admin.id,
        )
        session.add(refund)
        intent_id, currency, order_id = (
            payment.external_reference,
            payment.currency,
            payment.order_id,
        )

    params = {
        "payment_intent": intent_id,
        "amount": to_minor_units(amount, currency),
        "reason": "requested_by_customer",
        "metadata": {
            "refundId": str(refund.id),
            "paymentId": str(payment_id),
            "orderId": str(order_id),
        },
    }
    try:
        stripe_refund = await client.v1.refunds.create_async(
            params, options={"idempotency_key": f"refund-{refund.id}"}
        )
    except stripe.APIConnectionError:
        # Stripe may have made it: the refund stays pending until its webhook says.
        raise BadGateway("Stripe is unavailable, try again") from None
    except stripe.StripeError as exc:
        message = exc.user_message or str(exc)
        async with sessionmaker() as session, session.begin():
            row = await session.get(Refund, refund.id, with_for_update=True)
            row.status = "failed"
            row.error_message = message[:2000]
        raise BadRequest("Failed to refund Stripe payment", details=message) from None

    async with sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        row = await session.get(Refund, refund.id, with_for_update=True)
        row.provider_refund_id = stripe_refund.id
        row.status = REFUND_STATUS_MAP.get(str(stripe_refund.status), "pending")
        await apply_refund_totals(session, payment)
        return RefundResult(
            message="Refund created",
            refund=RefundOut.model_validate(row),
            payment=payment_out(payment),
        )
