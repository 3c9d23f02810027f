"""The auth service's public keys, by kid: what every other process verifies user tokens
with.

They come from the auth service's `GET /.well-known/jwks.json`: fetched at start (in the
background, retried for a while: the auth service may start after us), again every
`JWKS_REFRESH_INTERVAL` seconds (a key no longer published stops verifying), and when a
token names a kid we do not know: a new key after a rotation. Never per request:
at most one such fetch per `JWKS_REFETCH_INTERVAL` seconds, and concurrent requests that
need one share it (a single flight). A forger who sends tokens with made-up kids therefore
costs the auth service one request per interval, not one per token.

The auth service itself verifies with its own keys (no fetch).

A token once verified is remembered (up to `VERIFIED_TOKENS` of them) until it expires: an
Ed25519 signature check costs about 60 µs, and a client sends the same token with every
request. A remembered token still stops verifying the moment its key is no longer held
(`refresh`), and the user's current status is judged per request all the same
(shared.user_status).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.keys import keys_of_jwks
from shared.tokens import UnknownKeyId, UserClaims, decode_user_token, user_token_key_id

logger = logging.getLogger(__name__)

# Fetches the JWKS document (the parsed JSON); raises when it cannot.
JwksSource = Callable[[], Awaitable[Any]]
# With no key at all (the auth service was not up when we started), try again this soon.
_RETRY_WITHOUT_KEYS = 1.0
# Tokens remembered as verified; beyond this, the oldest are forgotten first.
VERIFIED_TOKENS = 10_000


class KeysUnavailable(Exception):
    """No key at all: the auth service's JWKS could not be fetched yet."""


class UserTokenKeys:
    """`decode(token)`: the claims of a valid user token (shared.tokens.decode_user_token),
    with the keys fetched again once when its kid is unknown. `clock` (monotonic seconds)
    is injectable: tests move time instead of sleeping."""

    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey] | None = None,
        *,
        source: JwksSource | None = None,
        refetch_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys: dict[str, Ed25519PublicKey] = dict(keys or {})
        self._wall_clock = wall_clock
        # token -> (its claims, the kid it was verified with); insertion-ordered (FIFO).
        self._verified: dict[str, tuple[UserClaims, str]] = {}
        self._source = source
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._last_refresh: float | None = None
        self._in_flight: asyncio.Future[bool] | None = None

    @property
    def keys(self) -> Mapping[str, Ed25519PublicKey]:
        return dict(self._keys)

    async def decode(self, token: str) -> UserClaims:
        """`InvalidToken` for a token that is not valid; `KeysUnavailable` when the keys
        could never be fetched (no token can be judged then)."""
        remembered = self._verified.get(token)
        if remembered is not None:
            claims, kid = remembered
            if kid in self._keys and claims.expires_at > self._wall_clock():
                return claims
            del self._verified[token]
        try:
            claims = decode_user_token(token, self._keys)
        except UnknownKeyId:
            await self.refresh()
            if not self._keys:
                raise KeysUnavailable from None
            claims = decode_user_token(token, self._keys)
        self._remember(token, claims)
        return claims

    def _remember(self, token: str, claims: UserClaims) -> None:
        if len(self._verified) >= VERIFIED_TOKENS:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (claims, user_token_key_id(token))

    async def refresh(self) -> None:
        """Fetch the keys again, unless this was asked less than the interval ago (the fetch
        at start does not count); joins a fetch already under way."""
        if self._source is None:
            return
        if self._in_flight is None:
            now = self._clock()
            wait = self._refetch_interval if self._keys else _RETRY_WITHOUT_KEYS
            if self._last_refresh is not None and now - self._last_refresh < wait:
                return
            self._last_refresh = now
        await self._fetch_once()

    async def load_at_start(self, *, attempts: int = 60, delay: float = 0.5) -> None:
        """The first fetch, tried `attempts` times `delay` (doubling, at most 5 s) apart;
        after that, a token with an unknown kid asks again."""
        if self._source is None:
            return
        for _ in range(attempts):
            if await self._fetch_once():
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        logger.error("user token keys: no JWKS after %d attempts; asking again on demand", attempts)

    async def keep_fresh(
        self,
        every: float,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """The first fetch (load_at_start), then one every `every` seconds for as long as
        the process runs: a key the auth service stops publishing (retired, or leaked and
        removed) stops verifying here within that time, even if no token names a new kid.
        `sleep` is injectable: tests do not wait."""
        await self.load_at_start()
        while True:
            await sleep(every)
            await self.refresh()

    async def _fetch_once(self) -> bool:
        """One fetch at a time: a caller who comes while one is under way waits for it."""
        if self._in_flight is None:
            self._in_flight = asyncio.ensure_future(self._fetch())
            self._in_flight.add_done_callback(self._fetched)
        return await asyncio.shield(self._in_flight)

    def _fetched(self, _: "asyncio.Future[bool]") -> None:
        self._in_flight = None

    async def _fetch(self) -> bool:
        assert self._source is not None
        try:
            keys = keys_of_jwks(await self._source())
        except Exception as exc:  # the auth service down, or an odd answer: keep what we have
            logger.warning("user token keys: the JWKS could not be fetched: %s", exc)
            return False
        if not keys:
            logger.warning("user token keys: the JWKS holds no Ed25519 key")
            return False
        self._keys = keys
        logger.info("user token keys: %s", ", ".join(sorted(keys)))
        return True
