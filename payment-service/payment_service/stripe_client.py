"""Stripe, through its SDK's async HTTPX client: the client, amounts in the currency's
minor unit, and Stripe's words translated into ours."""

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from payment_service.config import PaymentSettings
from payment_service.lifecycle import RefundStatus

if TYPE_CHECKING:  # the SDK itself is imported where a Stripe call is made (state.py)
    import stripe
    from stripe.params import PaymentIntentCreateParams

# https://docs.stripe.com/currencies: no minor unit at all.
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
# Three decimals, sent in thousandths whose last digit must be 0.
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
# Two decimals in the API, but only whole units can be charged.
WHOLE_UNITS_ONLY = frozenset({"ISK"})


class UnrepresentableAmount(ValueError):
    pass


def minor_unit_factor(currency: str) -> int:
    currency = currency.upper()
    if currency in ZERO_DECIMAL:
        return 1
    if currency in THREE_DECIMAL:
        return 1000
    return 100


def to_minor_units(amount: Decimal, currency: str) -> int:
    """150000.00 KES -> 15000000; 500 UGX -> 500; 1.25 KWD -> 1250. An amount the
    currency cannot carry (cents in UGX) raises UnrepresentableAmount."""
    currency = currency.upper()
    if currency in ZERO_DECIMAL | WHOLE_UNITS_ONLY and amount != amount.to_integral_value():
        raise UnrepresentableAmount(f"{currency} amounts must be whole units")
    minor = amount * minor_unit_factor(currency)
    if minor != minor.to_integral_value():
        raise UnrepresentableAmount(f"{amount} cannot be expressed in {currency}")
    return int(minor)


def from_minor_units(minor: int, currency: str) -> Decimal:
    return (Decimal(minor) / minor_unit_factor(currency)).quantize(Decimal("0.01"))


def create_stripe_client(settings: PaymentSettings) -> "stripe.StripeClient | None":
    if settings.stripe_secret_key is None:
        return None
    import stripe  # here: see payment_service.state

    api_base = settings.stripe_api_base
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        http_client=stripe.HTTPXClient(timeout=settings.stripe_timeout),
        base_addresses={"api": api_base.rstrip("/")} if api_base else {},
        # Safe: every write carries an idempotency key.
        max_network_retries=2,
    )


def payment_intent_params(
    *,
    amount_minor: int,
    currency: str,
    metadata: dict[str, str],
    payment_method_types: list[str],
) -> "PaymentIntentCreateParams":
    params: PaymentIntentCreateParams = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "metadata": metadata,
    }
    if payment_method_types:
        # Sent as the service always has (STRIPE_PAYMENT_METHOD_TYPES); this SDK's typed
        # parameters list only its newer `allowed_payment_method_types`.
        params["payment_method_types"] = payment_method_types  # type: ignore[typeddict-unknown-key]
    else:
        params["automatic_payment_methods"] = {"enabled": True}
    return params


# Stripe's refund statuses (https://docs.stripe.com/api/refunds/object#refund_object-status)
# in ours: one spelling of cancelled; a refund waiting for the customer's action is pending.
REFUND_STATUSES = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELLED,
}


def refund_status(stripe_status: object) -> RefundStatus:
    return REFUND_STATUSES.get(str(stripe_status), RefundStatus.PENDING)


def stripe_error_fields(error: "stripe.StripeError") -> dict[str, Any]:
    """What a log line keeps of a refusal by Stripe (never shown to a client): its kind,
    code, request id and message."""
    return {
        "stripeError": type(error).__name__,
        "stripeCode": error.code,
        "stripeRequestId": error.request_id,
        "providerMessage": error.user_message or str(error),
    }
