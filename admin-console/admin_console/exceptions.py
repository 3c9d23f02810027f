"""The console's refusals and signals, turned into pages by main.py's handlers."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiError(Exception):
    status: int
    message: str
    details: Any = None
    retry_after: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.message}"

    def field_errors(self) -> dict[str, str]:
        """A validation error's messages by field name (`{"price": "must be ..."}`)."""
        if not isinstance(self.details, list):
            return {}
        errors: dict[str, str] = {}
        for detail in self.details:
            if isinstance(detail, dict) and detail.get("field"):
                errors.setdefault(str(detail["field"]), str(detail.get("message", "")))
        return errors


class SignInRequired(Exception):
    """No session, or the API no longer accepts its token: back to the sign-in page, with
    the page the person was on remembered."""

    def __init__(self, next_path: str, reason: str | None = None) -> None:
        self.next_path = next_path
        self.reason = reason  # a key of SIGN_IN_REASONS


class CsrfRefused(Exception):
    pass
