"""The gateway's own refusals (shared.errors has the ones every service may answer)."""

from shared.errors import AppError


class TooManyRequests(AppError):
    status_code = 429
    message = "Too many requests, please try again later."


class PayloadTooLarge(AppError):
    status_code = 413
    message = "Request body too large"


class GatewayTimeout(AppError):
    status_code = 504
