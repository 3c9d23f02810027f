"""Asking for a payment: an STK Push to the customer's phone (M-Pesa) or a PaymentIntent
(Stripe), always for the order's own total, in the store's currency, only for an order
that exists, belongs to the payer and is still pending, and one attempt at a time per
order.

No database transaction is held open across a call to the order service or a provider:
the payment row is claimed (`pending`) in one short transaction, the provider asked, and
its answer written in another (`processing`, or `failed`).
"""

import logging
import uuid
from decimal import Decimal
from typing import Any

from payment_service import metrics, repository
from payment_service.daraja_client import DarajaRefused, DarajaUnavailable
from payment_service.exceptions import (
    MpesaNotConfigured,
    OrderAlreadyPaid,
    OrderNotFound,
    OrderNotPayable,
    StripeNotConfigured,
)
from payment_service.lifecycle import By, PaymentStatus, Provider, move_payment
from payment_service.models import Payment
from payment_service.order_client import PAID_ORDER_STATUSES, PAID_PAYMENT_STATUSES
from payment_service.payments import payment_out
from payment_service.schemas import (
    MpesaInitiated,
    MpesaPaymentRequest,
    StripeInitiated,
    StripePaymentRequest,
)
from payment_service.state import PaymentState
from payment_service.stripe_client import (
    UnrepresentableAmount,
    payment_intent_params,
    stripe_error_fields,
    to_minor_units,
)
from shared.auth import AuthenticatedUser
from shared.errors import BadGateway, BadRequest, Conflict
from shared.idempotency import Answer, KeyedRequest
from shared.redaction import mask_phone
from shared.schemas import money_str

logger = logging.getLogger(__name__)

TRANSACTION_DESC = "Order payment"  # 13 characters, Daraja's maximum
# A failed payment's `errorMessage` when the provider refused the request (its own words
# are in the log, with the payment's id).
MPESA_REFUSED = "M-Pesa refused the payment request"
STRIPE_REFUSED = "Stripe refused the payment"


async def pay_with_mpesa(
    state: PaymentState,
    user: AuthenticatedUser,
    data: MpesaPaymentRequest,
    keyed: KeyedRequest | None,
) -> Answer:
    """POST /api/payments/mpesa, once per Idempotency-Key."""
    return await state.idempotency_keys.answer(
        state.sessionmaker,
        user_id=user.id,
        request=keyed,
        action=lambda: initiate_mpesa(state, user, data),
    )


async def pay_with_stripe(
    state: PaymentState,
    user: AuthenticatedUser,
    data: StripePaymentRequest,
    keyed: KeyedRequest | None,
) -> Answer:
    """POST /api/payments/stripe, once per Idempotency-Key."""
    return await state.idempotency_keys.answer(
        state.sessionmaker,
        user_id=user.id,
        request=keyed,
        action=lambda: initiate_stripe(state, user, data),
    )


async def initiate_mpesa(
    state: PaymentState, user: AuthenticatedUser, data: MpesaPaymentRequest
) -> MpesaInitiated:
    settings = state.settings
    daraja = state.daraja
    if daraja is None:
        raise MpesaNotConfigured()
    assert settings.mpesa_callback_url and settings.mpesa_callback_secret  # configured
    order, total, currency = await _payable_order(
        state, user, data.order_id, data.amount, data.currency
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
        state,
        order_id=data.order_id,
        user_id=user.id,
        provider=Provider.MPESA,
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
    body = daraja.stk_push_body(
        amount=total,
        phone=data.phone_number,
        callback_url=callback_url,
        account_reference=account_reference,
        transaction_desc=TRANSACTION_DESC,
        transaction_type=settings.mpesa_transaction_type,
        party_b=settings.mpesa_party_b,
    )
    try:
        accepted = await daraja.stk_push(body)
    except DarajaRefused as exc:
        # Daraja's words are for the log only: its error body describes our request and
        # our credentials, not anything the customer can act on.
        logger.warning(
            "daraja refused an STK push",
            extra={
                "paymentId": str(payment.id),
                "errorCode": exc.error_code,
                "providerMessage": exc.error_message,
            },
        )
        await _mark_failed(state, payment.id, MPESA_REFUSED)
        raise BadRequest("Failed to initiate M-Pesa payment") from None
    except DarajaUnavailable as exc:
        logger.warning(
            "daraja unavailable", extra={"paymentId": str(payment.id), "reason": str(exc)}
        )
        await _mark_failed(state, payment.id, "M-Pesa was unavailable")
        raise BadGateway("M-Pesa is unavailable, try again") from None

    payment = await _mark_processing(
        state,
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
    state: PaymentState, user: AuthenticatedUser, data: StripePaymentRequest
) -> StripeInitiated:
    client = state.stripe
    if client is None:
        raise StripeNotConfigured()
    _, total, currency = await _payable_order(
        state, user, data.order_id, data.amount, data.currency
    )
    try:
        amount_minor = to_minor_units(total, currency)
    except UnrepresentableAmount as exc:
        raise BadRequest(str(exc)) from None

    payment = await _claim_payment(
        state,
        order_id=data.order_id,
        user_id=user.id,
        provider=Provider.STRIPE,
        amount=total,
        currency=currency,
        details={},
    )
    import stripe  # here: the SDK is loaded at the first Stripe call (state.py)

    params = payment_intent_params(
        amount_minor=amount_minor,
        currency=currency,
        metadata={
            "orderId": str(data.order_id),
            "userId": str(user.id),
            "paymentId": str(payment.id),
        },
        payment_method_types=state.settings.stripe_payment_method_types,
    )
    try:
        intent = await client.v1.payment_intents.create_async(
            params,
            options={"idempotency_key": f"payment-{payment.id}"},
        )
    except stripe.APIConnectionError:
        await _mark_failed(state, payment.id, "Stripe was unavailable")
        raise BadGateway("Stripe is unavailable, try again") from None
    except stripe.StripeError as exc:
        # Stripe's message is for the log only (it speaks of our request and account).
        logger.warning(
            "stripe refused a payment intent",
            extra={"paymentId": str(payment.id), **stripe_error_fields(exc)},
        )
        await _mark_failed(state, payment.id, STRIPE_REFUSED)
        raise BadRequest("Failed to create Stripe payment") from None

    payment = await _mark_processing(state, payment.id, intent.id, {"paymentIntentId": intent.id})
    return StripeInitiated(
        message="Stripe payment initiated",
        payment=payment_out(payment),
        client_secret=intent.client_secret,
    )


async def _payable_order(
    state: PaymentState,
    user: AuthenticatedUser,
    order_id: uuid.UUID,
    amount: Decimal | None,
    currency: str | None,
) -> tuple[dict[str, Any], Decimal, str]:
    """The order, the amount to charge and its currency; refusals as the issue lists them."""
    order = await state.orders.fetch_order(order_id)
    if order is None or str(order.get("userId")) != str(user.id):
        raise OrderNotFound()
    # The order service may not have heard of a payment that just completed.
    paid_here = await repository.order_has_paid_payment(state.hot_path, order_id)
    if (
        paid_here
        or order.get("status") in PAID_ORDER_STATUSES
        or order.get("paymentStatus") in PAID_PAYMENT_STATUSES
    ):
        raise OrderAlreadyPaid()
    if order.get("status") != "pending":
        raise OrderNotPayable()

    total = Decimal(str(order["totalAmount"]))
    if amount is not None and amount != total:
        raise BadRequest(
            "Amount does not match the order total", details={"expected": money_str(total)}
        )
    store_currency = state.settings.store_currency
    order_currency = str(order.get("currency") or store_currency).upper()
    if order_currency != store_currency:
        raise BadRequest(
            "Order currency is not the store currency", details={"expected": store_currency}
        )
    if currency is not None and currency.upper() != store_currency:
        raise BadRequest(f"Currency must be {store_currency}", details={"expected": store_currency})
    if total <= 0:
        raise OrderNotPayable()
    return order, total, store_currency


async def _claim_payment(state: PaymentState, **values: Any) -> Payment:
    """A new pending payment, or 409 with the payment already in flight for the order."""
    payment = await repository.insert_payment_unless_in_flight(
        state.hot_path,
        id=uuid.uuid4(),
        status=PaymentStatus.PENDING,
        refunded_amount=Decimal("0.00"),
        **values,
    )
    if payment is not None:
        metrics.payment_entered(payment)
        return payment
    async with state.read_sessionmaker() as session:
        in_flight = await repository.in_flight_payment(session, values["order_id"])
    raise Conflict(
        "A payment for this order is already in progress",
        extra={"payment": payment_out(in_flight).model_dump(mode="json", by_alias=True)}
        if in_flight
        else None,
    )


async def _mark_failed(state: PaymentState, payment_id: uuid.UUID, message: str) -> None:
    """The provider refused or could not be reached: the attempt is over. Nothing was
    charged, so the order hears nothing and stays payable."""
    async with state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        assert payment is not None  # made by this request, never deleted
        if move_payment(payment, PaymentStatus.FAILED, By.PROVIDER):
            payment.error_message = message[:2000]
            metrics.payment_status(session, payment)


async def _mark_processing(
    state: PaymentState, payment_id: uuid.UUID, reference: str, details: dict[str, Any]
) -> Payment:
    """The provider accepted the request: the payment waits for the customer."""
    async with state.hot_path.transaction() as connection:
        payment = await repository.lock_payment_row(connection, payment_id)
        assert payment is not None  # made by this request, never deleted
        moved = move_payment(payment, PaymentStatus.PROCESSING, By.PROVIDER)
        payment = await repository.record_acceptance(
            connection,
            payment_id,
            status=payment.status,
            reference=reference,
            details={**payment.details, **details},
        )
    if moved:
        metrics.payment_entered(payment)
    return payment


def _account_reference(order: dict[str, Any]) -> str:
    """What the customer sees in the M-Pesa prompt (at most 12 characters): the end of the
    order number, else the start of the order id."""
    number = "".join(ch for ch in str(order.get("orderNumber") or "") if ch.isalnum())
    if number:
        return number[-12:]
    return uuid.UUID(str(order["id"])).hex[:12].upper()
