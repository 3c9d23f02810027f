"""What must never reach a log line or a trace: tokens, passwords, secrets, full
phone numbers and card numbers.

`redact_text` masks them inside free text (messages, exception text, URLs);
`redact_value` also judges a field by its name (`password`, `authorization`,
`phone`, ...), recursively through dicts and lists. Phone numbers keep their
last 3 digits (`*********678`) so that support can still match a customer's
complaint; card numbers their last 4.
"""

import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"

# A field whose name says it holds a secret is dropped whatever its value.
_SECRET_NAME = re.compile(
    r"password|passwd|secret|token|authorization|api[_-]?key|passkey|cookie|signature"
    r"|credential|private[_-]?key|cvv|cvc|card[_-]?number",
    re.IGNORECASE,
)
_PHONE_NAME = re.compile(r"phone|msisdn|party[_-]?[ab]$", re.IGNORECASE)

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# `password=...`, `"jwt_secret": "..."`, `token: ...` inside text.
_SECRET_ASSIGNMENT = re.compile(
    r"""(?ix)
    (["']?[\w-]*(?:password|passwd|secret|token|api[_-]?key|passkey|authorization)[\w-]*["']?
     \s*[:=]\s*)
    ("[^"]*"|'[^']*'|[^\s,;&}\]]+)
    """
)
_PROVIDER_KEY = re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}|\bwhsec_[A-Za-z0-9]{8,}")
# postgresql://user:password@host -> postgresql://user:[REDACTED]@host
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/?#\s@]+:)[^@\s/]+@", re.IGNORECASE)
# M-Pesa's callback carries its secret as the last path segment (/webhook/mpesa/<secret>).
_WEBHOOK_PATH_SECRET = re.compile(r"(/webhooks?/[A-Za-z0-9_-]+/)[^/?#\s\"']+")
# Kenyan mobile numbers in any of their usual forms, and other E.164 numbers.
_PHONE = re.compile(
    r"(?<![\w.+-])(?:(?:(?:\+?254|0)[ -]?)?[17]\d{2}[ -]?\d{3}[ -]?\d{3}|\+\d{8,14})(?![\w.-])"
)
_CARD = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w.-])")


def mask_phone(value: str) -> str:
    """All but the last 3 digits become `*` (separators and `+` too)."""
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 3:
        return "*" * len(digits)
    return "*" * (len(digits) - 3) + digits[-3:]


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if not 13 <= len(digits) <= 19 or not _luhn_valid(digits):
        return match.group(0)
    return "*" * (len(digits) - 4) + digits[-4:]


# Cheap tests first: most text (a method, a path, a message) holds none of these.
_SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "authorization")
_ENOUGH_DIGITS = re.compile(r"(?:\d[ -]?){8}\d")


def redact_text(text: str) -> str:
    if not text:
        return text
    lowered = text.lower()
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "bearer" in lowered or "basic" in lowered:
        text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    if "_live_" in text or "_test_" in text or "whsec_" in text:
        text = _PROVIDER_KEY.sub(REDACTED, text)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    if "/webhook" in lowered:
        text = _WEBHOOK_PATH_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    if any(word in lowered for word in _SECRET_WORDS):
        text = _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    if _ENOUGH_DIGITS.search(text):
        text = _CARD.sub(_mask_card, text)
        text = _PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    return text


@lru_cache(maxsize=1024)
def _field_kind(name: str) -> str | None:
    if _SECRET_NAME.search(name):
        return "secret"
    if _PHONE_NAME.search(name):
        return "phone"
    return None


def redact_value(name: str | None, value: Any) -> Any:
    """`value` as it may be logged under the field `name`."""
    if value is None or isinstance(value, bool):
        return value
    kind = _field_kind(name) if name else None
    if kind == "secret":
        return REDACTED
    if kind == "phone" and isinstance(value, str | int):
        return mask_phone(str(value))
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int):
        # A phone number logged as a number (Daraja sends them so).
        return mask_phone(str(value)) if value > 10**8 and _PHONE.fullmatch(str(value)) else value
    if isinstance(value, float):
        return value
    if isinstance(value, Mapping):
        return {key: redact_value(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(name, item) for item in value]
    if isinstance(value, datetime | date | time | Decimal | uuid.UUID):
        return value
    # Anything else is logged as its text: mask that text.
    return redact_text(str(value))
