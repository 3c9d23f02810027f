"""Order numbers: ORD-<ms>-<9 characters>, the original's form. The 9 characters are a
value of the database's order number sequence scrambled by a bijection of [0, 36^9)
(multiplication by a number prime to 36), so they are unique by construction and say
nothing of volume. Values are taken from the sequence BATCH at a time: one round trip
for many orders (a value never used is a gap, as a rolled back nextval is)."""

import asyncio
from collections import deque
from datetime import datetime

from order_service import repository
from shared.db import HotPath

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SUFFIX_SPACE = 36**9
_SCRAMBLE = 1_000_000_007
BATCH = 50


def format_order_number(sequence_value: int, at: datetime) -> str:
    scrambled = (sequence_value * _SCRAMBLE) % _SUFFIX_SPACE
    suffix = ""
    for _ in range(9):
        scrambled, digit = divmod(scrambled, 36)
        suffix = _ALPHABET[digit] + suffix
    return f"ORD-{int(at.timestamp() * 1000)}-{suffix}"


class OrderNumbers:
    """The process's supply of sequence values."""

    def __init__(self, hot_path: HotPath) -> None:
        self._hot_path = hot_path
        self._values: deque[int] = deque()
        self._refilling = asyncio.Lock()

    async def next(self, at: datetime) -> str:
        if not self._values:
            async with self._refilling:
                if not self._values:
                    self._values.extend(
                        await repository.next_order_number_values(self._hot_path, BATCH)
                    )
        return format_order_number(self._values.popleft(), at)
