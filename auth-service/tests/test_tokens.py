"""Every kind of bad token is a 401 with the original's message, never a 500."""

import base64
import json
import time
import uuid

import jwt
import pytest
from sqlalchemy import text

from shared.keys import thumbprint
from shared.testing import bearer


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens(valid_token: str, keys) -> dict[str, str]:
    """Tokens for the user of `valid_token` that must be refused, by what is wrong."""
    claims = jwt.decode(valid_token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(valid_token)["kid"]
    key = keys.user_token_key
    header, _payload, signature = valid_token.split(".")

    def signed(payload: dict) -> str:
        return jwt.encode(payload, key, "EdDSA", headers={"kid": kid})

    return {
        **keys.forged_user_tokens(claims["id"], claims["role"]),
        "tampered role": header + "." + _b64({**claims, "role": "admin"}) + "." + signature,
        "garbage": "not.a.token",
        "random bytes": "eyJhbGciOi" + "A" * 40,
        "unknown user": signed({**claims, "id": str(uuid.uuid4())}),
        "id not a uuid": signed({**claims, "id": "1 OR 1=1"}),
        "no expiry": signed({k: v for k, v in claims.items() if k != "exp"}),
        "an internal token": keys.internal_token("gateway", "auth"),
    }


BAD_TOKEN_KINDS = [
    "HS256 with the old JWT_SECRET",
    "another Ed25519 key",
    "another key under the real kid",
    "the right key, an unknown kid",
    "the right key, no kid",
    "alg none",
    "a service's internal key",
    "expired",
    "tampered role",
    "garbage",
    "random bytes",
    "unknown user",
    "id not a uuid",
    "no expiry",
    "an internal token",
]


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
async def test_bad_tokens_are_401(client, register, keys, kind):
    token = (await register())["token"]
    bad = bad_tokens(token, keys)[kind]
    for method, path in [("GET", "/api/profile"), ("POST", "/api/verify")]:
        response = await client.request(method, path, headers=bearer(bad))
        assert response.status_code == 401, (kind, path, response.text)
        assert response.json() == {"error": "Invalid token"}

    response = await client.post("/api/verify", headers=bearer(token))
    assert response.status_code == 200


async def test_a_token_of_the_original_system_is_refused(client, register):
    """Tokens the Express service issued (jsonwebtoken, HS256 with JWT_SECRET, {id, email,
    role, iat, exp}) are no longer valid: the user logs in again (README)."""
    user = (await register())["user"]
    now = int(time.time())
    original = jwt.encode(
        {
            "id": user["id"],
            "email": user["email"],
            "role": "customer",
            "iat": now,
            "exp": now + 7 * 86400,
        },
        "the-original-jwt-secret-of-the-express-service",
        "HS256",
    )
    response = await client.get("/api/profile", headers=bearer(original))
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid token"}


async def test_a_token_is_signed_by_the_auth_services_key_and_names_it(client, register, keys):
    token = (await register())["token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == thumbprint(keys.user_token_key.public_key())
    claims = jwt.decode(token, keys.user_token_key.public_key(), algorithms=["EdDSA"])
    assert set(claims) == {"id", "email", "role", "iat", "exp"}


@pytest.mark.parametrize("header", ["Token abc", "abc.def.ghi", "Bearer", "Bearer   ", "Basic x"])
async def test_an_authorization_header_that_is_not_bearer_is_401(client, register, header):
    response = await client.get("/api/profile", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid token"}


async def test_a_token_without_bearer_prefix_is_refused_even_if_valid(client, register):
    token = (await register())["token"]
    response = await client.get("/api/profile", headers={"Authorization": token})
    assert response.status_code == 401


async def test_a_deactivated_users_token_stops_working(client, register, engine):
    token = (await register())["token"]
    assert (await client.get("/api/profile", headers=bearer(token))).status_code == 200
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE users SET is_active = false"))
    for method, path in [("GET", "/api/profile"), ("POST", "/api/verify")]:
        response = await client.request(method, path, headers=bearer(token))
        assert response.status_code == 401
        assert response.json() == {"error": "Account is deactivated"}


async def test_a_deleted_users_token_stops_working(client, register, engine):
    token = (await register())["token"]
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM users"))
    response = await client.post("/api/verify", headers=bearer(token))
    assert response.status_code == 401


@pytest.mark.parametrize(("expires_in", "seconds"), [("12h", 43200), ("900s", 900), ("30m", 1800)])
async def test_jwt_expires_in_is_honoured(make_settings, expires_in, seconds):
    import httpx

    from auth_service.main import create_app
    from shared.testing import started

    settings = make_settings(JWT_EXPIRES_IN=expires_in)
    app = create_app(settings)
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            response = await client.post(
                "/api/register",
                json={"name": "A", "email": "a@example.com", "password": "password123"},
            )
    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == seconds
