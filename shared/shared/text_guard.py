"""Text PostgreSQL cannot store is refused at the door, with a 400 naming the field.

A NUL character (`\\u0000`) is valid JSON and valid in a query string, but a `text`
column refuses it, and so does UTF-8 a lone surrogate (`\\ud800`): without this check
such a value reached the database and came back as a 500. Bodies are checked field by
field by `shared.schemas.RequestModel` (so no schema can forget it, and fields a model
ignores are ignored); query parameters by `refuse_unstorable_text`, a dependency of
every route. The documents say it too: `shared.openapi` gives every text a pattern.
"""

from typing import Any

from fastapi import Request

from shared.errors import BadRequest

MESSAGE = "must not contain a NUL character or an unpaired surrogate"
# JSON Schema's way of saying "no NUL" (the surrogates have no regex of their own).
STORABLE_TEXT_PATTERN = "^[^\\u0000]*$"


def is_unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def contains_unstorable(value: Any) -> bool:
    """Whether a value (a string, or a list or dict of them, keys included) holds text
    that cannot be stored."""
    if isinstance(value, str):
        return is_unstorable(value)
    if isinstance(value, dict):
        return any(
            contains_unstorable(key) or contains_unstorable(item) for key, item in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains_unstorable(item) for item in value)
    return False


async def refuse_unstorable_text(request: Request) -> None:
    for name, value in request.query_params.multi_items():
        if is_unstorable(value):
            raise BadRequest(
                "Validation error",
                details=[{"field": name.replace("\x00", ""), "message": MESSAGE}],
            )
