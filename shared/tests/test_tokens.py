import time
import uuid
from datetime import timedelta

import jwt
import pytest

from shared.keys import generate_private_key, thumbprint
from shared.tokens import (
    InvalidToken,
    UnknownKeyId,
    decode_internal_token,
    decode_user_token,
    issue_internal_token,
    issue_user_token,
    parse_duration,
)

KEY = generate_private_key()
KID = thumbprint(KEY.public_key())
PUBLIC = {KID: KEY.public_key()}
ORDER, CART = generate_private_key(), generate_private_key()
SERVICES = {"order": ORDER.public_key(), "cart": CART.public_key()}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 604800),
        ("12h", 43200),
        ("900s", 900),
        ("30m", 1800),
        ("2 days", 172800),
        ("1w", 604800),
        ("3600", 3600),
        ("1.5h", 5400),
    ],
)
def test_parse_duration_reads_the_originals_formats(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "7 fortnights", "-1d", "d7"])
def test_parse_duration_refuses_nonsense(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_user_token_round_trip_keeps_the_originals_claims():
    user_id = uuid.uuid4()
    token = issue_user_token(
        user_id=user_id, email="a@example.com", role="admin", signing_key=KEY, expires_in="1h"
    )
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "typ": "JWT", "kid": KID}
    raw = jwt.decode(token, KEY.public_key(), algorithms=["EdDSA"])
    assert set(raw) == {"id", "email", "role", "iat", "exp"}
    claims = decode_user_token(token, PUBLIC)
    assert (claims.id, claims.email, claims.role) == (user_id, "a@example.com", "admin")
    assert claims.expires_at - claims.issued_at == 3600


def test_a_role_outside_the_known_ones_is_refused():
    now = int(time.time())
    token = jwt.encode(
        {"id": str(uuid.uuid4()), "email": "a@b.c", "role": "root", "iat": now, "exp": now + 60},
        KEY,
        algorithm="EdDSA",
        headers={"kid": KID},
    )
    with pytest.raises(InvalidToken):
        decode_user_token(token, PUBLIC)


def test_an_unknown_kid_is_told_apart_from_a_bad_token():
    """So that the verifier knows when asking the auth service again may help."""
    other = generate_private_key()
    token = issue_user_token(
        user_id=uuid.uuid4(), email="a@b.c", role="customer", signing_key=other, expires_in="1h"
    )
    with pytest.raises(UnknownKeyId) as raised:
        decode_user_token(token, PUBLIC)
    assert raised.value.kid == thumbprint(other.public_key())
    assert decode_user_token(token, {thumbprint(other.public_key()): other.public_key()})


def test_hs256_tokens_of_before_are_refused_whatever_the_secret():
    now = int(time.time())
    claims = {
        "id": str(uuid.uuid4()),
        "email": "a@b.c",
        "role": "admin",
        "iat": now,
        "exp": now + 60,
    }
    for headers in (None, {"kid": KID}):
        token = jwt.encode(claims, "the-old-jwt-secret-" + "x" * 32, "HS256", headers=headers)
        with pytest.raises(InvalidToken) as raised:
            decode_user_token(token, PUBLIC)
        assert not isinstance(raised.value, UnknownKeyId)  # no JWKS fetch for these


def test_internal_and_user_tokens_do_not_stand_in_for_each_other():
    internal = issue_internal_token(service="order", audience="product", private_key=ORDER)
    assert decode_internal_token(internal, audience="product", public_keys=SERVICES) == "order"
    with pytest.raises(InvalidToken):
        decode_user_token(internal, PUBLIC)
    user = issue_user_token(
        user_id=uuid.uuid4(),
        email="a@example.com",
        role="customer",
        signing_key=KEY,
        expires_in="1h",
    )
    with pytest.raises(InvalidToken):
        decode_internal_token(user, audience="product", public_keys=SERVICES)


def test_internal_tokens_live_one_minute_for_one_service():
    token = issue_internal_token(service="order", audience="product", private_key=ORDER)
    claims = jwt.decode(token, ORDER.public_key(), algorithms=["EdDSA"], audience="product")
    assert claims["sub"] == "order" and claims["aud"] == "product"
    assert claims["exp"] - claims["iat"] == 60
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, ORDER, algorithm="EdDSA")
    with pytest.raises(InvalidToken):
        decode_internal_token(expired, audience="product", public_keys=SERVICES)
    with pytest.raises(InvalidToken):
        decode_internal_token(token, audience="cart", public_keys=SERVICES)


def test_a_service_cannot_pose_as_another():
    """The cart service holds its own key only: a token it signs saying `order` is refused."""
    posing = issue_internal_token(service="order", audience="product", private_key=CART)
    with pytest.raises(InvalidToken):
        decode_internal_token(posing, audience="product", public_keys=SERVICES)
    own = issue_internal_token(service="cart", audience="product", private_key=CART)
    assert decode_internal_token(own, audience="product", public_keys=SERVICES) == "cart"


def test_a_remembered_internal_token_holds_only_while_its_key_is_the_callers(monkeypatch):
    """Verified once, then remembered; a caller whose key was replaced (a rotation, at the
    restart that loads it) is refused the old token at once, and another audience is
    judged afresh."""
    import shared.tokens as tokens

    token = issue_internal_token(service="order", audience="product", private_key=ORDER)
    assert decode_internal_token(token, audience="product", public_keys=SERVICES) == "order"
    calls = []
    real_decode = tokens.jwt.decode
    monkeypatch.setattr(
        tokens.jwt, "decode", lambda *a, **k: calls.append(1) or real_decode(*a, **k)
    )
    assert decode_internal_token(token, audience="product", public_keys=SERVICES) == "order"
    assert calls == []  # remembered: no decoding, no signature check
    rotated = {**SERVICES, "order": generate_private_key().public_key()}
    with pytest.raises(InvalidToken):
        decode_internal_token(token, audience="product", public_keys=rotated)
    with pytest.raises(InvalidToken):
        decode_internal_token(token, audience="cart", public_keys=SERVICES)
