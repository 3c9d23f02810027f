"""Tokens, with PyJWT, all signed with Ed25519 (EdDSA).

User tokens keep the original's claims (`id`, `email`, `role`, `iat`, `exp`), but only
the auth service can make one: it signs with its private key (`JWT_PRIVATE_KEY`), whose
RFC 7638 thumbprint is the token's `kid`; everyone else verifies with the public keys
the auth service publishes (`GET /.well-known/jwks.json`, shared.user_token_keys). A
token of the original (HS256 with `JWT_SECRET`) is refused.

Internal tokens are for service-to-service calls only: the calling service signs with
its own private key (`INTERNAL_PRIVATE_KEY`), `sub` is its name, `aud` the service it
calls, and they live a minute. The callee verifies `sub`'s signature with the public key
it holds for that name (`INTERNAL_PUBLIC_KEYS`), so no service can pose as another.
"""

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.keys import thumbprint

ALGORITHM = "EdDSA"
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


class UnknownKeyId(InvalidToken):
    """A user token signed with a key this process does not know (yet): a new key of the
    auth service, or a forgery."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"unknown key id {kid!r}")
        self.kid = kid


def issue_user_token(
    *,
    user_id: uuid.UUID,
    email: str,
    role: str,
    signing_key: Ed25519PrivateKey,
    expires_in: str,
) -> str:
    now = datetime.now(UTC)
    claims = {
        "id": str(user_id),
        "email": email,
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + parse_duration(expires_in)).timestamp()),
    }
    return jwt.encode(
        claims,
        signing_key,
        algorithm=ALGORITHM,
        headers={"kid": thumbprint(signing_key.public_key())},
    )


def user_token_key_id(token: str) -> str:
    """The `kid` of a token that claims to be signed the way user tokens are; `InvalidToken`
    for any other (HS256, `alg: none`, no kid, garbage)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not kid:
        raise InvalidToken("not a user token of this system")
    return kid


def decode_user_token(token: str, keys: Mapping[str, Ed25519PublicKey]) -> UserClaims:
    """The claims of a valid user token, given the auth service's public keys by kid;
    `UnknownKeyId` when its kid is none of them, `InvalidToken` for anything else (expired,
    forged, `alg: none`, HS256, an internal token, garbage)."""
    kid = user_token_key_id(token)
    key = keys.get(kid)
    if key is None:
        raise UnknownKeyId(kid)
    try:
        claims = jwt.decode(
            token,
            key,
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


def issue_internal_token(*, service: str, audience: str, private_key: Ed25519PrivateKey) -> str:
    """A token that says `service` calls `audience`, signed with `service`'s own key."""
    now = datetime.now(UTC)
    claims = {
        "sub": service,
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int((now + INTERNAL_TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, private_key, algorithm=ALGORITHM)


def decode_internal_token(
    token: str, *, audience: str, public_keys: Mapping[str, Ed25519PublicKey]
) -> str:
    """The calling service's name, if the token is signed with that service's key, is for
    `audience` and has not expired. A caller sends the same token for minutes: once
    verified, it is remembered until it expires (and only while that key is still the
    caller's), which spares a signature check per internal call."""
    remembered = _verified_internal_tokens.get((token, audience))
    if remembered is not None:
        known_caller, known_key, expires_at = remembered
        if public_keys.get(known_caller) is known_key and expires_at > time.time():
            return known_caller
        del _verified_internal_tokens[(token, audience)]
    try:
        caller = jwt.decode(token, options={"verify_signature": False}).get("sub")
        key = public_keys.get(caller) if isinstance(caller, str) else None
        if key is None:
            raise InvalidToken("not signed by a known service")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            options={"require": ["sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if len(_verified_internal_tokens) >= VERIFIED_INTERNAL_TOKENS:
        del _verified_internal_tokens[next(iter(_verified_internal_tokens))]
    _verified_internal_tokens[(token, audience)] = (str(claims["sub"]), key, int(claims["exp"]))
    return str(claims["sub"])


# (token, audience) -> (caller, the key it was verified with, expiry); oldest out first.
VERIFIED_INTERNAL_TOKENS = 1_000
_verified_internal_tokens: dict[tuple[str, str], tuple[str, Ed25519PublicKey, int]] = {}
