"""The payment service's refusals (shared.errors has the ones every service may answer)."""

from shared.errors import AppError, BadRequest, NotFound, ServiceUnavailable


class PaymentNotFound(NotFound):
    message = "Payment not found"


class OrderNotFound(NotFound):
    message = "Order not found"


class OrderAlreadyPaid(BadRequest):
    message = "Order is already paid"


class OrderNotPayable(BadRequest):
    message = "Order is not payable"


class OrderServiceUnavailable(ServiceUnavailable):
    message = "Order service unavailable"


class MpesaNotConfigured(ServiceUnavailable):
    message = "M-Pesa is not configured"


class StripeNotConfigured(ServiceUnavailable):
    message = "Stripe is not configured"


class CallbackForbidden(AppError):
    """An M-Pesa callback without the secret, or from an address not allowed."""

    status_code = 403
    message = "Forbidden"


class InvalidSignature(BadRequest):
    """A Stripe webhook whose signature does not hold."""

    message = "Invalid signature"


class OrderUpdateRefused(Exception):
    """The order service did not take a payment's news; the outbox tries again later."""
