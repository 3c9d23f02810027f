"""Who is calling: FastAPI dependencies for users, admins and internal callers.

A user's JWT is verified locally (no network call per request). A token is not
the last word on its holder, though: the user's current status and role come
from a cache, at most `USER_STATUS_TTL` seconds old (60 at most), filled from
the auth service. So an admin who deactivates a user or changes a role is
obeyed everywhere within a minute, and a password change revokes older tokens.
"""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request

from shared.errors import Forbidden, ServiceUnavailable, Unauthorized
from shared.http_client import INTERNAL_TOKEN_HEADER, ServiceClient
from shared.tokens import InvalidToken, decode_internal_token, decode_user_token


@dataclass(frozen=True)
class UserStatus:
    role: str
    is_active: bool
    # Tokens issued (iat, epoch seconds) before this are revoked (password change).
    tokens_valid_after: int = 0


@dataclass(frozen=True)
class AuthenticatedUser:
    id: uuid.UUID
    email: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# Looks up a user's current status; None when the user does not exist.
UserStatusSource = Callable[[uuid.UUID], Awaitable[UserStatus | None]]


class UserStatusCache:
    """A TTL cache in front of a `UserStatusSource`. Concurrent misses for one user
    make a single lookup."""

    def __init__(self, source: UserStatusSource, ttl: float, max_entries: int = 100_000) -> None:
        self._source = source
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[uuid.UUID, tuple[float, UserStatus | None]] = {}
        self._in_flight: dict[uuid.UUID, asyncio.Future[UserStatus | None]] = {}

    async def get(self, user_id: uuid.UUID) -> UserStatus | None:
        entry = self._entries.get(user_id)
        if entry is not None and time.monotonic() - entry[0] < self._ttl:
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
        if len(self._entries) >= self._max_entries:
            now = time.monotonic()
            self._entries = {
                key: value for key, value in self._entries.items() if now - value[0] < self._ttl
            }
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
        self._entries[user_id] = (time.monotonic(), status)


def auth_service_status_source(client: ServiceClient, auth_service_url: str) -> UserStatusSource:
    """Reads a user's status from the auth service's internal route."""

    async def fetch(user_id: uuid.UUID) -> UserStatus | None:
        try:
            response = await client.request(
                "GET", f"{auth_service_url}/api/internal/users/{user_id}"
            )
        except httpx.TransportError as exc:
            raise ServiceUnavailable("Auth service unavailable") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ServiceUnavailable("Auth service unavailable")
        user = response.json()["user"]
        return UserStatus(
            role=user["role"],
            is_active=user["isActive"],
            tokens_valid_after=user.get("tokensValidAfter", 0),
        )

    return fetch


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`; None when there is no header at all."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Invalid token")
    return token.strip()


async def authenticate(
    token: str, *, secret: str, user_status: UserStatusCache
) -> AuthenticatedUser:
    """The user a token stands for, as they are now; `Unauthorized` otherwise."""
    try:
        claims = decode_user_token(token, secret)
    except InvalidToken:
        raise Unauthorized("Invalid token") from None
    status = await user_status.get(claims.id)
    if status is None or claims.issued_at < status.tokens_valid_after:
        raise Unauthorized("Invalid token")
    if not status.is_active:
        raise Unauthorized("Account is deactivated")
    return AuthenticatedUser(id=claims.id, email=claims.email, role=status.role)


async def current_user(request: Request) -> AuthenticatedUser:
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("No token provided")
    state = request.app.state
    user = await authenticate(
        token, secret=state.settings.jwt_secret.get_secret_value(), user_status=state.user_status
    )
    request.state.user = user
    return user


async def optional_user(request: Request) -> AuthenticatedUser | None:
    """The user on a public route, or None (no token, or a token that does not hold)."""
    try:
        return await current_user(request)
    except Unauthorized:
        return None


async def require_admin(
    user: Annotated[AuthenticatedUser, Depends(current_user)],
) -> AuthenticatedUser:
    if not user.is_admin:
        raise Forbidden("Access denied. Admin only.")
    return user


async def internal_caller(request: Request) -> str:
    """The name of the calling service; internal routes accept nothing else."""
    token = request.headers.get(INTERNAL_TOKEN_HEADER)
    if not token:
        raise Unauthorized("Internal service token required")
    try:
        return decode_internal_token(
            token, request.app.state.settings.internal_service_secret.get_secret_value()
        )
    except InvalidToken:
        raise Unauthorized("Invalid internal service token") from None


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
OptionalUser = Annotated[AuthenticatedUser | None, Depends(optional_user)]
AdminUser = Annotated[AuthenticatedUser, Depends(require_admin)]
InternalCaller = Annotated[str, Depends(internal_caller)]
