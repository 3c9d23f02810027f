"""Every kind of bad token is a 401 with the original's message, never a 500."""

import base64
import json
import time
import uuid

import jwt
import pytest
from sqlalchemy import text

from shared.testing import bearer


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens(valid_token: str, secret: str) -> dict[str, str]:
    claims = jwt.decode(valid_token, secret, algorithms=["HS256"])
    header, _payload, signature = valid_token.split(".")
    return {
        "expired": jwt.encode(
            {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},
            secret,
            "HS256",
        ),
        "another key": jwt.encode(claims, "another-secret-of-sufficient-length-000", "HS256"),
        "alg none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + ".",
        "tampered role": header + "." + _b64({**claims, "role": "admin"}) + "." + signature,
        "garbage": "not.a.token",
        "random bytes": "eyJhbGciOi" + "A" * 40,
        "unknown user": jwt.encode({**claims, "id": str(uuid.uuid4())}, secret, "HS256"),
        "id not a uuid": jwt.encode({**claims, "id": "1 OR 1=1"}, secret, "HS256"),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, secret, "HS256"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "another key",
        "alg none",
        "tampered role",
        "garbage",
        "random bytes",
        "unknown user",
        "id not a uuid",
        "no expiry",
    ],
)
async def test_bad_tokens_are_401(client, register, settings, kind):
    token = (await register())["token"]
    bad = bad_tokens(token, settings.jwt_secret.get_secret_value())[kind]
    for method, path in [("GET", "/api/profile"), ("POST", "/api/verify")]:
        response = await client.request(method, path, headers=bearer(bad))
        assert response.status_code == 401, (kind, path, response.text)
        assert response.json() == {"error": "Invalid token"}


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


async def test_a_token_of_the_original_system_is_accepted(client, register, settings):
    """Tokens the Express service issued (jsonwebtoken, HS256, {id, email, role, iat, exp})."""
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
        settings.jwt_secret.get_secret_value(),
        "HS256",
    )
    assert (await client.get("/api/profile", headers=bearer(original))).status_code == 200


@pytest.mark.parametrize(("expires_in", "seconds"), [("12h", 43200), ("900s", 900), ("30m", 1800)])
async def test_jwt_expires_in_is_honoured(make_settings, expires_in, seconds):
    import httpx
    from asgi_lifespan import LifespanManager

    from auth_service.main import create_app

    settings = make_settings(JWT_EXPIRES_IN=expires_in)
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            response = await client.post(
                "/api/register",
                json={"name": "A", "email": "a@example.com", "password": "password123"},
            )
    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == seconds
