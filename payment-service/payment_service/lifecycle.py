"""The states of a payment and of a refund, and the one table of the changes allowed
between them (as order-service/order_service/lifecycle.py for orders). Nothing changes
a payment's or a refund's status without `move_payment` / `move_refund` agreeing (the
one exception: a new payment is created `pending`).

    payment:  pending -> processing -> completed | failed | cancelled   (the provider)
              pending -> failed, processing -> cancelled                (expiry)
              failed, cancelled -> completed   (only on the provider's own confirmation:
                                                late money is never ignored)
              completed <-> partially_refunded <-> refunded             (the refunds)
    refund:   pending -> succeeded | failed | cancelled;  succeeded -> failed (Stripe may
              fail a refund it had reported succeeded)

One spelling: `cancelled`, for payments and refunds alike (Stripe's `canceled` is
translated where Stripe's words come in, stripe_client.py).
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Provider(StrEnum):
    MPESA = "mpesa"
    STRIPE = "stripe"


class PaymentStatus(StrEnum):
    PENDING = "pending"  # created, the provider not yet asked
    PROCESSING = "processing"  # the provider accepted: waiting for the customer
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Not yet decided: at most one per order (a partial unique index).
IN_FLIGHT = frozenset({PaymentStatus.PENDING, PaymentStatus.PROCESSING})
# The money was received (refunds included).
SETTLED_PAID = frozenset(
    {PaymentStatus.COMPLETED, PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED}
)
# The money is kept: received and not refunded in full.
KEPT = frozenset({PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED})


class By(StrEnum):
    """Why a payment's status changes."""

    PROVIDER = "provider"  # the provider's answer: accepted, refused, paid, failed
    CONFIRMATION = "confirmation"  # the provider's own word that the money arrived
    EXPIRY = "expiry"  # no answer in time (MPESA_EXPIRE_AFTER)
    REFUNDS = "refunds"  # the total of the payment's refunds changed


_SETTLED_BY_PROVIDER = frozenset({By.PROVIDER, By.CONFIRMATION})
# (from, to) -> why that change may happen. A pair not here is refused.
PAYMENT_TRANSITIONS: dict[tuple[PaymentStatus, PaymentStatus], frozenset[By]] = {
    (PaymentStatus.PENDING, PaymentStatus.PROCESSING): frozenset({By.PROVIDER}),
    (PaymentStatus.PENDING, PaymentStatus.COMPLETED): _SETTLED_BY_PROVIDER,
    (PaymentStatus.PENDING, PaymentStatus.FAILED): frozenset({By.PROVIDER, By.EXPIRY}),
    (PaymentStatus.PENDING, PaymentStatus.CANCELLED): frozenset({By.PROVIDER}),
    (PaymentStatus.PROCESSING, PaymentStatus.COMPLETED): _SETTLED_BY_PROVIDER,
    (PaymentStatus.PROCESSING, PaymentStatus.FAILED): frozenset({By.PROVIDER}),
    (PaymentStatus.PROCESSING, PaymentStatus.CANCELLED): frozenset({By.PROVIDER, By.EXPIRY}),
    # Late money is never ignored, but only the provider's own word proves it.
    (PaymentStatus.FAILED, PaymentStatus.COMPLETED): frozenset({By.CONFIRMATION}),
    (PaymentStatus.CANCELLED, PaymentStatus.COMPLETED): frozenset({By.CONFIRMATION}),
    # The refunds' total decides (a refund may fail after it succeeded).
    (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED): frozenset({By.REFUNDS}),
    (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED): frozenset({By.REFUNDS}),
    (PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED): frozenset({By.REFUNDS}),
    (PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.COMPLETED): frozenset({By.REFUNDS}),
    (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED): frozenset({By.REFUNDS}),
    (PaymentStatus.REFUNDED, PaymentStatus.COMPLETED): frozenset({By.REFUNDS}),
}

REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PENDING: frozenset(
        {RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.CANCELLED}
    ),
    RefundStatus.SUCCEEDED: frozenset({RefundStatus.FAILED}),
    RefundStatus.FAILED: frozenset(),
    RefundStatus.CANCELLED: frozenset(),
}


def payment_move_allowed(current: PaymentStatus | str, target: PaymentStatus, by: By) -> bool:
    return by in PAYMENT_TRANSITIONS.get((PaymentStatus(current), target), frozenset())


def refund_move_allowed(current: RefundStatus | str, target: RefundStatus) -> bool:
    return target in REFUND_TRANSITIONS[RefundStatus(current)]


class EventOutcome(StrEnum):
    """What was done with a provider's webhook or callback (kept with it, for audit)."""

    RECEIVED = "received"
    COMPLETED = "completed"
    COMPLETED_UNVERIFIED = "completed (unverified)"  # MPESA_VERIFY_CALLBACKS=false
    FAILED = "failed"
    CANCELLED = "cancelled"
    DUPLICATE = "duplicate"
    NO_CHANGE = "no change"
    IGNORED = "ignored"  # an event type this service does not act on
    UNKNOWN_PAYMENT = "unknown payment"
    CONFIRMING = "confirming with STK Query"
    UNCONFIRMED = "unconfirmed: left to the status poller"
    REJECTED = "rejected"  # not believed (amount, receipt, Daraja's word): `detail` says why
    REFUNDS = "refunds"


@dataclass(frozen=True)
class Outcome:
    kind: EventOutcome
    detail: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else str(self.kind)


class _HasStatus(Protocol):
    status: str


def move_payment(payment: _HasStatus, target: PaymentStatus, by: By) -> bool:
    """Moves a (locked) payment to `target` if the table allows it for that reason; False,
    changing nothing, otherwise (a duplicate notice, or a change that is not one)."""
    if not payment_move_allowed(payment.status, target, by):
        return False
    payment.status = target
    return True


def move_refund(refund: _HasStatus, target: RefundStatus) -> bool:
    """Moves a (locked) refund to `target` if the table allows it; False otherwise (the
    same status again, or an older event arriving late)."""
    if not refund_move_allowed(refund.status, target):
        return False
    refund.status = target
    return True
