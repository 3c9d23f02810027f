"""Tokens, with PyJWT.

User tokens keep the original's shape (HS256 with `JWT_SECRET`, claims `id`,
`email`, `role`, `iat`, `exp`) so tokens the original issued stay valid.
Internal tokens are for service-to-service calls only: another key
(`INTERNAL_SERVICE_SECRET`), their own audience, a one-minute life.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
INTERNAL_AUDIENCE = "ecommerce-internal"
INTERNAL_TOKEN_LIFETIME = timedelta(seconds=60)
ROLES = frozenset({"customer", "admin"})

_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|weeks?|y|years?)?\s*$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31557600,
}


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class UserClaims:
    id: uuid.UUID
    email: str
    role: str
    issued_at: int
    expires_at: int


def parse_duration(value: str | int) -> timedelta:
    """`JWT_EXPIRES_IN` as the original's `jsonwebtoken` took it: `7d`, `12h`, `900s`, `30m`,
    `2 days`; a bare number is seconds."""
    if isinstance(value, int):
        return timedelta(seconds=value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 7d, 12h, 30m, 900s)")
    number, unit = float(match.group(1)), (match.group(2) or "s").lower()
    key = "ms" if unit == "ms" else unit[0]
    return timedelta(seconds=number * _UNIT_SECONDS[key])


def issue_user_token(
    *, user_id: uuid.UUID, email: str, role: str, secret: str, expires_in: str
) -> str:
    now = datetime.now(UTC)
    claims = {
        "id": str(user_id),
        "email": email,
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + parse_duration(expires_in)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_user_token(token: str, secret: str) -> UserClaims:
    """The claims of a valid user token; `InvalidToken` for anything else (expired, forged,
    `alg: none`, an internal token, garbage)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["id", "exp", "iat"]},
        )
        user_id = uuid.UUID(str(claims["id"]))
        role = claims.get("role", "customer")
        email = claims.get("email", "")
        issued_at = int(claims["iat"])
        expires_at = int(claims["exp"])
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken(str(exc)) from exc
    if role not in ROLES or not isinstance(email, str):
        raise InvalidToken("unexpected claims")
    return UserClaims(
        id=user_id, email=email, role=role, issued_at=issued_at, expires_at=expires_at
    )


def issue_internal_token(*, service: str, secret: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": service,
        "aud": INTERNAL_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + INTERNAL_TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_internal_token(token: str, secret: str) -> str:
    """The calling service's name, if the token is a valid internal token."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=INTERNAL_AUDIENCE,
            options={"require": ["iss", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    return str(claims["iss"])
