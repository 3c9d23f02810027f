"""Kenyan mobile numbers, as M-Pesa wants them: 2547XXXXXXXX or 2541XXXXXXXX."""

import re

# Spaces, dashes, dots and brackets may be anywhere ("0712-345-678", "(0712) 345 678").
_SEPARATOR = r"[ \t\n\r\f\v().-]"
_SEPARATORS = re.compile(_SEPARATOR)
_KENYAN_MOBILE = re.compile(r"^(?:\+?254|0)?([17][0-9]{8})$")
# The same rule as one regular expression over the number as typed: the API document's
# `pattern` (ECMA-262 and Python read it alike), so it refuses exactly what this module does.
KENYAN_PHONE_PATTERN = (
    rf"^{_SEPARATOR}*(?:(?:\+{_SEPARATOR}*)?2{_SEPARATOR}*5{_SEPARATOR}*4{_SEPARATOR}*"
    rf"|0{_SEPARATOR}*)?[17](?:{_SEPARATOR}*[0-9]){{8}}{_SEPARATOR}*$"
)


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
