"""The order lifecycle: every status an order can have, and the one table of the changes
allowed between them, with who may make each. Nothing changes an order's status without
`check_transition` agreeing.

    pending -> paid -> processing -> shipped -> delivered
    pending -> cancelled          (customer, admin, expiry)
    pending -> failed             (admin, payment service)
    paid, processing -> cancelled (admin only; a paid order's payment becomes refund_pending)

The original's `confirmed` is not kept: nothing in this system puts an order there (a
settled payment makes it `paid`), so it would be a state without a way in.
"""

from enum import StrEnum

from order_service.exceptions import PaymentTransitionRefused, TransitionRefused


class Status(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    FAILED = "failed"


# Internal, never shown: the order row exists while its stock is being reserved. It
# becomes `pending` once the reservation is answered, or is removed (see placement.py).
RESERVING = "reserving"
ALL_STORED_STATUSES = (RESERVING, *Status)


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"


class Actor(StrEnum):
    CUSTOMER = "customer"  # the order's owner
    ADMIN = "admin"
    PAYMENT = "payment"  # the payment service, through the internal route
    EXPIRY = "expiry"  # the expiry worker: unpaid for ORDER_PAYMENT_TIMEOUT seconds


# (from, to) -> who may make that change. A pair not here is refused.
TRANSITIONS: dict[tuple[Status, Status], frozenset[Actor]] = {
    (Status.PENDING, Status.PAID): frozenset({Actor.PAYMENT, Actor.ADMIN}),
    (Status.PENDING, Status.CANCELLED): frozenset({Actor.CUSTOMER, Actor.ADMIN, Actor.EXPIRY}),
    (Status.PENDING, Status.FAILED): frozenset({Actor.ADMIN, Actor.PAYMENT}),
    (Status.PAID, Status.PROCESSING): frozenset({Actor.ADMIN}),
    (Status.PAID, Status.CANCELLED): frozenset({Actor.ADMIN}),
    (Status.PROCESSING, Status.SHIPPED): frozenset({Actor.ADMIN}),
    (Status.PROCESSING, Status.CANCELLED): frozenset({Actor.ADMIN}),
    (Status.SHIPPED, Status.DELIVERED): frozenset({Actor.ADMIN}),
}

# Payment status changes that are not a consequence of a status change (those follow
# from the status table: -> paid makes it paid, cancelling a paid order refund_pending).
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset({PaymentStatus.FAILED}),
    PaymentStatus.FAILED: frozenset({PaymentStatus.FAILED}),
    PaymentStatus.PAID: frozenset({PaymentStatus.REFUND_PENDING, PaymentStatus.REFUNDED}),
    PaymentStatus.REFUND_PENDING: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.REFUNDED: frozenset(),
}

# Entering one of these gives the order's stock back (exactly once: they are final).
RELEASES_STOCK = frozenset({Status.CANCELLED, Status.FAILED})
FINAL = frozenset({Status.DELIVERED, Status.CANCELLED, Status.FAILED})
# The moment of entering a status is kept in this column.
TIMESTAMP_COLUMN = {
    Status.PAID: "paid_at",
    Status.SHIPPED: "shipped_at",
    Status.DELIVERED: "delivered_at",
    Status.CANCELLED: "cancelled_at",
}
# A customer may cancel from these (the original: pending or confirmed).
CUSTOMER_CANCELLABLE = frozenset(
    current
    for (current, target), actors in TRANSITIONS.items()
    if target is Status.CANCELLED and Actor.CUSTOMER in actors
)


def is_allowed(current: str, target: str, actor: Actor) -> bool:
    try:
        key = (Status(current), Status(target))
    except ValueError:
        return False
    return actor in TRANSITIONS.get(key, frozenset())


def check_transition(current: str, target: str, actor: Actor) -> None:
    """409 `Cannot change order from <a> to <b>` unless the table allows it for `actor`."""
    if not is_allowed(current, target, actor):
        raise TransitionRefused(current, target)


def payment_status_after(current_payment_status: str, target: Status) -> str:
    """The payment status an order has after entering `target`."""
    if target is Status.PAID:
        return PaymentStatus.PAID
    if target is Status.CANCELLED and current_payment_status == PaymentStatus.PAID:
        return PaymentStatus.REFUND_PENDING  # money to give back: an admin sees it
    return current_payment_status


def check_payment_transition(current: str, target: str) -> None:
    if PaymentStatus(target) not in PAYMENT_TRANSITIONS.get(PaymentStatus(current), frozenset()):
        raise PaymentTransitionRefused(current, target)
