"""The auth service's refusals (shared.errors has the ones every service may answer)."""

from shared.errors import AppError, NotFound


class AccountDeactivated(AppError):
    status_code = 403
    message = "Account is deactivated"


class UserNotFound(NotFound):
    message = "User not found"
