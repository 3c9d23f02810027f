"""The cart service's refusals (shared.errors has the ones every service may answer)."""

from shared.errors import AppError, BadRequest, NotFound, ServiceUnavailable


class ProductServiceUnavailable(ServiceUnavailable):
    message = "Product service unavailable"


class ProductNotFound(NotFound):
    message = "Product not found"


class CartItemNotFound(NotFound):
    message = "Item not found in cart"


class CartIsEmpty(NotFound):
    message = "Cart is empty"


class CartTotalTooLarge(BadRequest):
    message = "Cart total exceeds the maximum amount"


class InsufficientStock(AppError):
    """The original's answer, with what could be had: `{"error", "available"}`."""

    status_code = 400
    message = "Insufficient stock"

    def __init__(self, available: int) -> None:
        super().__init__(extra={"available": max(available, 0)})
