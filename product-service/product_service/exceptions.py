"""The product service's refusals (shared.errors has the ones every service may answer)."""

from shared.errors import BadRequest, Conflict, NotFound


class ProductNotFound(NotFound):
    message = "Product not found"


class InsufficientStock(BadRequest):
    message = "Insufficient stock"


class StockTooLarge(BadRequest):
    message = "Stock would exceed 2147483647"


class OutOfStock(Conflict):
    message = "Some items are out of stock"


class ReservationReleased(Conflict):
    message = "Reservation already released"


class ReservationMismatch(Conflict):
    message = "Order already has a reservation with other items"


class ReservationChanged(Conflict):
    message = "Reservation changed concurrently, retry"
