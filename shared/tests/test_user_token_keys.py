"""The keys user tokens are verified with: fetched at start, fetched again once for a new
kid (a single flight, at most once per interval), never per request."""

import asyncio
import uuid

import httpx
import pytest
import respx

from shared.auth_client import auth_service_jwks
from shared.http_client import ServiceClient
from shared.keys import generate_private_key, jwks, keys_of_jwks, thumbprint
from shared.testing import FakeClock
from shared.tokens import InvalidToken, issue_user_token
from shared.user_token_keys import KeysUnavailable, UserTokenKeys

AUTH_URL = "http://auth.test"
JWKS_URL = f"{AUTH_URL}/.well-known/jwks.json"


def token_signed_by(key) -> str:
    return issue_user_token(
        user_id=uuid.uuid4(), email="a@b.c", role="customer", signing_key=key, expires_in="1h"
    )


@pytest.fixture
async def client():
    client = ServiceClient(
        service="gateway", private_key=generate_private_key(), audiences={}, timeout=5
    )
    yield client
    await client.aclose()


@pytest.fixture
def auth_service():
    """The auth service's JWKS through respx; `published` is what it answers."""
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        state = {"published": [generate_private_key()]}
        route = mock.get(JWKS_URL).mock(
            side_effect=lambda request: httpx.Response(
                200, json=jwks([key.public_key() for key in state["published"]])
            )
        )
        yield state, route


async def test_the_keys_come_from_the_jwks_at_start(client, auth_service):
    state, route = auth_service
    keys = UserTokenKeys(source=auth_service_jwks(client, AUTH_URL))
    await keys.load_at_start()
    assert route.call_count == 1
    (key,) = state["published"]
    assert set(keys.keys) == {thumbprint(key.public_key())}
    assert (await keys.decode(token_signed_by(key))).role == "customer"
    assert route.call_count == 1  # verifying is local


async def test_an_unknown_kid_makes_exactly_one_fetch_however_many_ask(client, auth_service):
    state, route = auth_service
    clock = FakeClock()
    keys = UserTokenKeys(source=auth_service_jwks(client, AUTH_URL), clock=clock)
    await keys.load_at_start()
    old = state["published"][0]
    new = generate_private_key()
    state["published"] = [new, old]  # a rotation: the new key signs, the old still verifies
    results = await asyncio.gather(*(keys.decode(token_signed_by(new)) for _ in range(25)))
    assert len(results) == 25
    assert route.call_count == 2  # one at start, one for the new kid
    assert (await keys.decode(token_signed_by(old))).role == "customer"

    # A forger's made-up keys: refused, and no fetch until the interval (30 s) has passed
    # since the last one.
    for _ in range(10):
        with pytest.raises(InvalidToken):
            await keys.decode(token_signed_by(generate_private_key()))
    assert route.call_count == 2
    clock.advance(29)
    with pytest.raises(InvalidToken):
        await keys.decode(token_signed_by(generate_private_key()))
    assert route.call_count == 2
    clock.advance(2)
    with pytest.raises(InvalidToken):
        await keys.decode(token_signed_by(generate_private_key()))
    assert route.call_count == 3


async def test_a_retired_key_stops_verifying_once_the_jwks_drops_it(client, auth_service):
    state, _ = auth_service
    clock = FakeClock()
    keys = UserTokenKeys(source=auth_service_jwks(client, AUTH_URL), clock=clock)
    await keys.load_at_start()
    old = state["published"][0]
    old_token = token_signed_by(old)
    new = generate_private_key()
    state["published"] = [new]
    await keys.decode(token_signed_by(new))
    with pytest.raises(InvalidToken):
        await keys.decode(old_token)


async def test_a_key_no_longer_published_stops_verifying_at_the_next_periodic_fetch(
    client, auth_service
):
    """No token names a new kid, yet a key the auth service removed (leaked, retired)
    stops verifying: every process fetches the JWKS again every JWKS_REFRESH_INTERVAL."""
    state, route = auth_service
    keys = UserTokenKeys(source=auth_service_jwks(client, AUTH_URL), clock=FakeClock())
    ticks: asyncio.Queue[None] = asyncio.Queue()
    proceed = asyncio.Event()

    async def one_interval(seconds: float) -> None:
        assert seconds == 300
        ticks.put_nowait(None)
        await proceed.wait()
        proceed.clear()

    leaked = state["published"][0]
    leaked_token = token_signed_by(leaked)
    fresh = asyncio.create_task(keys.keep_fresh(300, sleep=one_interval))
    await ticks.get()  # loaded at start, now waiting for the interval
    assert (await keys.decode(leaked_token)).email == "a@b.c"
    state["published"] = [generate_private_key()]  # the auth service drops the leaked key
    proceed.set()
    await ticks.get()  # the interval passed: fetched again, waiting for the next
    with pytest.raises(InvalidToken):
        await keys.decode(leaked_token)
    assert route.call_count == 2
    fresh.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fresh


async def test_without_any_key_no_token_can_be_judged(client):
    with respx.mock(using="httpx") as mock:
        route = mock.get(JWKS_URL).respond(503, json={"error": "Service unavailable"})
        keys = UserTokenKeys(source=auth_service_jwks(client, AUTH_URL))
        with pytest.raises(KeysUnavailable):
            await keys.decode(token_signed_by(generate_private_key()))
        assert route.call_count == 1


async def test_the_start_retries_until_the_auth_service_answers(client, monkeypatch):
    """Bounded: `attempts` tries, the delay doubling; time is not waited for here."""
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    key = generate_private_key()
    answers = [httpx.ConnectError("refused")] * 3 + [
        httpx.Response(200, json=jwks([key.public_key()]))
    ]
    with respx.mock(using="httpx") as mock:
        route = mock.get(JWKS_URL).mock(side_effect=answers)
        keys = UserTokenKeys(source=auth_service_jwks(client, AUTH_URL))
        await keys.load_at_start(attempts=5)
        assert route.call_count == 4
    assert slept == [0.5, 1.0, 2.0]
    assert set(keys.keys) == {thumbprint(key.public_key())}

    with respx.mock(using="httpx") as mock:
        route = mock.get(JWKS_URL).mock(side_effect=httpx.ConnectError("refused"))
        never = UserTokenKeys(source=auth_service_jwks(client, AUTH_URL))
        await never.load_at_start(attempts=3)
        assert route.call_count == 3


def test_a_kid_is_the_keys_own_thumbprint_or_not_believed():
    key = generate_private_key().public_key()
    document = jwks([key])
    document["keys"][0]["kid"] = "chosen-by-someone"
    assert set(keys_of_jwks(document)) == {thumbprint(key)}
    assert keys_of_jwks({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}) == {}
    with pytest.raises(ValueError):
        keys_of_jwks(["not", "a", "jwks"])


def test_rfc_7638_thumbprint_of_an_ed25519_key():
    """RFC 8037 appendix A.3: the thumbprint of the example key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    x = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert thumbprint(Ed25519PublicKey.from_public_bytes(x)) == (
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )


async def test_a_token_is_verified_once_then_remembered_until_it_expires(
    client, auth_service, monkeypatch
):
    """The signature check is done once per token; past the token's expiry, or once its key
    is gone, the token is judged afresh (and refused)."""
    import shared.user_token_keys as module

    checks = []
    real_decode = module.decode_user_token

    def counting_decode(token, keys):
        checks.append(token)
        return real_decode(token, keys)

    monkeypatch.setattr(module, "decode_user_token", counting_decode)
    state, _ = auth_service
    now = [1_000.0]
    keys = UserTokenKeys(
        source=auth_service_jwks(client, AUTH_URL), clock=FakeClock(), wall_clock=lambda: now[0]
    )
    await keys.load_at_start()
    token = token_signed_by(state["published"][0])
    claims = await keys.decode(token)
    for _ in range(5):
        assert await keys.decode(token) == claims
    assert len(checks) == 1

    now[0] = claims.expires_at  # the moment it expires: no longer taken from memory
    await keys.decode(token)  # (PyJWT's own clock is the real one: still valid to it)
    assert len(checks) == 2


async def test_the_remembered_tokens_are_bounded(client, auth_service, monkeypatch):
    import shared.user_token_keys as module

    monkeypatch.setattr(module, "VERIFIED_TOKENS", 3)
    state, _ = auth_service
    keys = UserTokenKeys(source=auth_service_jwks(client, AUTH_URL))
    await keys.load_at_start()
    tokens = [token_signed_by(state["published"][0]) for _ in range(5)]
    for token in tokens:
        await keys.decode(token)
    assert list(keys._verified) == tokens[2:]
