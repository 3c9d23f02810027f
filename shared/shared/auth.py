"""Who is calling: FastAPI dependencies for users, admins and internal callers.

A user's JWT is verified locally, with the auth service's public keys
(shared.user_token_keys: fetched once, again only for a new key; no network call per
request). A token is not
the last word on its holder, though: the user's current status and role come
from a cache (shared.user_status), at most `USER_STATUS_TTL` seconds old (60 at
most), filled from the auth service. So an admin who deactivates a user or
changes a role is obeyed everywhere within a minute, and a password change
revokes older tokens.
"""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shared.auth_client import AUTH_UNAVAILABLE
from shared.errors import Forbidden, ServiceUnavailable, Unauthorized
from shared.http_client import INTERNAL_TOKEN_HEADER
from shared.internal_access import may_call
from shared.openapi import answers
from shared.state import service_state
from shared.tokens import InvalidToken, decode_internal_token
from shared.user_status import UserStatusCache
from shared.user_token_keys import KeysUnavailable, UserTokenKeys


@dataclass(frozen=True)
class AuthenticatedUser:
    id: uuid.UUID
    email: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# For the document only (the security scheme of every route that needs a user); the
# header is read and judged by `bearer_token`, in this system's error format.
bearer_scheme = HTTPBearer(
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="The token of POST /api/auth/login or /api/auth/register.",
    auto_error=False,
)
internal_token_scheme = APIKeyHeader(
    name=INTERNAL_TOKEN_HEADER,
    scheme_name="internalToken",
    description="A token only the system's own services can make (docs/internal-api.md).",
    auto_error=False,
)
DocumentedBearer = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


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
    token: str, *, keys: UserTokenKeys, user_status: UserStatusCache
) -> AuthenticatedUser:
    """The user a token stands for, as they are now; `Unauthorized` otherwise."""
    try:
        claims = await keys.decode(token)
    except InvalidToken:
        raise Unauthorized("Invalid token") from None
    except KeysUnavailable:
        raise ServiceUnavailable(AUTH_UNAVAILABLE) from None
    status = await user_status.get(claims.id)
    if status is None or claims.issued_at < status.tokens_valid_after:
        raise Unauthorized("Invalid token")
    if not status.is_active:
        raise Unauthorized("Account is deactivated")
    return AuthenticatedUser(id=claims.id, email=claims.email, role=status.role)


@answers((401, "No token, or one that is not valid (any more)"))
async def current_user(request: Request, _: DocumentedBearer = None) -> AuthenticatedUser:
    cached: AuthenticatedUser | None = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("No token provided")
    state = service_state(request)
    user = await authenticate(token, keys=state.user_token_keys, user_status=state.user_status)
    request.state.user = user
    return user


async def optional_user(request: Request) -> AuthenticatedUser | None:
    """The user on a public route, or None (no token, or a token that does not hold)."""
    try:
        return await current_user(request)
    except Unauthorized:
        return None


@answers((403, "The caller is not an admin"))
async def require_admin(
    user: Annotated[AuthenticatedUser, Depends(current_user)],
) -> AuthenticatedUser:
    if not user.is_admin:
        raise Forbidden("Access denied. Admin only.")
    return user


@answers((401, "No internal service token, or one that is not valid"))
async def internal_caller(
    request: Request,
    _: Annotated[str | None, Security(internal_token_scheme)] = None,
) -> str:
    """The name of the calling service, proven by its own key (a token for this service,
    not expired); internal routes accept nothing else."""
    token = request.headers.get(INTERNAL_TOKEN_HEADER)
    if not token:
        raise Unauthorized("Internal service token required")
    state = service_state(request)
    try:
        return decode_internal_token(
            token,
            audience=state.services.service,
            public_keys=state.settings.internal_public_keys,
        )
    except InvalidToken:
        raise Unauthorized("Invalid internal service token") from None


@answers((403, "The calling service may not call this internal route"))
async def authorised_internal_caller(
    request: Request, caller: Annotated[str, Depends(internal_caller)]
) -> str:
    """The calling service, if shared.internal_access lists it for this route; 403 otherwise."""
    service = service_state(request).services.service
    if not may_call(caller, service, request.method, request.url.path):
        raise Forbidden("Access denied. This service may not call this route.")
    return caller


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
OptionalUser = Annotated[AuthenticatedUser | None, Depends(optional_user)]
AdminUser = Annotated[AuthenticatedUser, Depends(require_admin)]
# An internal route's caller: authenticated, then authorised by shared.internal_access.
InternalCaller = Annotated[str, Depends(authorised_internal_caller)]
