import time
import uuid
from datetime import timedelta

import jwt
import pytest

from shared.tokens import (
    InvalidToken,
    decode_internal_token,
    decode_user_token,
    issue_internal_token,
    issue_user_token,
    parse_duration,
)

SECRET = "a-test-secret-that-is-long-enough-000000"


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
        user_id=user_id, email="a@example.com", role="admin", secret=SECRET, expires_in="1h"
    )
    raw = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert set(raw) == {"id", "email", "role", "iat", "exp"}
    claims = decode_user_token(token, SECRET)
    assert (claims.id, claims.email, claims.role) == (user_id, "a@example.com", "admin")
    assert claims.expires_at - claims.issued_at == 3600


def test_a_role_outside_the_known_ones_is_refused():
    now = int(time.time())
    token = jwt.encode(
        {"id": str(uuid.uuid4()), "email": "a@b.c", "role": "root", "iat": now, "exp": now + 60},
        SECRET,
    )
    with pytest.raises(InvalidToken):
        decode_user_token(token, SECRET)


def test_internal_and_user_tokens_do_not_stand_in_for_each_other():
    internal = issue_internal_token(service="order", secret=SECRET)
    assert decode_internal_token(internal, SECRET) == "order"
    with pytest.raises(InvalidToken):
        decode_user_token(internal, SECRET)
    user = issue_user_token(
        user_id=uuid.uuid4(),
        email="a@example.com",
        role="customer",
        secret=SECRET,
        expires_in="1h",
    )
    with pytest.raises(InvalidToken):
        decode_internal_token(user, SECRET)


def test_internal_tokens_live_one_minute():
    token = issue_internal_token(service="order", secret=SECRET)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="ecommerce-internal")
    assert claims["exp"] - claims["iat"] == 60
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, SECRET)
    with pytest.raises(InvalidToken):
        decode_internal_token(expired, SECRET)
