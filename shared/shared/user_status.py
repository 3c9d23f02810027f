"""A user's current status and role, cached: a token is not the last word on its holder.

The cache is filled from a `UserStatusSource` (the auth service's internal route, see
`shared.auth_client`; the auth service itself reads its database) and keeps an answer at
most `USER_STATUS_TTL` seconds (60 at most), so an admin who deactivates a user or changes
a role is obeyed everywhere within a minute, and a password change revokes older tokens.
"""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class UserStatus:
    role: str
    is_active: bool
    # Tokens issued (iat, epoch seconds) before this are revoked (password change).
    tokens_valid_after: int = 0


# Looks up a user's current status; None when the user does not exist.
UserStatusSource = Callable[[uuid.UUID], Awaitable[UserStatus | None]]


class UserStatusCache:
    """A TTL cache in front of a `UserStatusSource`. Concurrent misses for one user make a
    single lookup. `clock` (seconds, monotonic) is injectable: tests move time instead of
    sleeping."""

    def __init__(
        self,
        source: UserStatusSource,
        ttl: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[uuid.UUID, tuple[float, UserStatus | None]] = {}
        self._in_flight: dict[uuid.UUID, asyncio.Future[UserStatus | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, user_id: uuid.UUID) -> UserStatus | None:
        entry = self._entries.get(user_id)
        if entry is not None and self._clock() - entry[0] < self._ttl:
            return entry[1]
        pending = self._in_flight.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)

        future: asyncio.Future[UserStatus | None] = asyncio.get_running_loop().create_future()
        self._in_flight[user_id] = future
        try:
            status = await self._source(user_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) get it, nobody else must
            raise
        finally:
            self._in_flight.pop(user_id, None)
        self._store(user_id, status)
        future.set_result(status)
        return status

    def invalidate(self, user_id: uuid.UUID) -> None:
        self._entries.pop(user_id, None)

    def _store(self, user_id: uuid.UUID, status: UserStatus | None) -> None:
        now = self._clock()
        if len(self._entries) >= self._max_entries:
            self._entries = {
                key: value for key, value in self._entries.items() if now - value[0] < self._ttl
            }
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
        self._entries[user_id] = (now, status)
