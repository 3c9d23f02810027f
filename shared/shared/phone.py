"""Kenyan mobile numbers, as M-Pesa wants them: 2547XXXXXXXX or 2541XXXXXXXX."""

import re

_SEPARATORS = re.compile(r"[\s\-().]")
_KENYAN_MOBILE = re.compile(r"^(?:\+?254|0)?([17]\d{8})$")


def normalize_kenyan_phone(value: str) -> str:
    """`0712345678`, `0112345678`, `+254712345678`, `254712345678`, `712345678` ->
    `254712345678`. Raises ValueError for anything else."""
    compact = _SEPARATORS.sub("", value or "")
    match = _KENYAN_MOBILE.match(compact)
    if not match:
        raise ValueError(
            "must be a Kenyan mobile number such as 0712345678, +254712345678 or 254112345678"
        )
    return "254" + match.group(1)
