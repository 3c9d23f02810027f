"""The order service's refusals (shared.errors has the ones every service may answer)."""

from typing import Any

from shared.errors import BadRequest, Conflict, NotFound, ServiceUnavailable


class OrderNotFound(NotFound):
    message = "Order not found"


class OrderNotCancellable(BadRequest):
    message = "Order cannot be cancelled"


class CartIsEmpty(BadRequest):
    message = "Cart is empty"


class ItemsOutOfStock(BadRequest):
    """The original's answer (400), with the product service's short items as details."""

    message = "Some items are out of stock"

    def __init__(self, details: Any) -> None:
        super().__init__(details=details)


class OrderTotalTooLarge(BadRequest):
    message = "Order total is too large"


class ProductServiceUnavailable(ServiceUnavailable):
    message = "Product service unavailable"


class CartServiceUnavailable(ServiceUnavailable):
    message = "Cart service unavailable"


class TransitionRefused(Conflict):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"Cannot change order from {current} to {target}")


class PaymentTransitionRefused(Conflict):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"Cannot change payment status from {current} to {target}")


class DeliveryRefused(Exception):
    """A neighbour did not acknowledge a call the outbox makes; it is tried again later."""
