import time

import jwt
import pytest

from shared.testing import bearer


async def test_profile_without_a_token_is_a_401(client):
    response = await client.get("/api/profile")
    assert response.status_code == 401
    assert response.json() == {"error": "No token provided"}


async def test_update_profile_changes_only_what_is_sent(client, register):
    body = await register(phoneNumber="0712345678")
    token = body["token"]
    response = await client.put("/api/profile", json={"name": "Jane Doe"}, headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["message"] == "Profile updated successfully"
    user = response.json()["user"]
    assert user["name"] == "Jane Doe"
    assert user["phoneNumber"] == "254712345678"

    response = await client.put(
        "/api/profile", json={"phoneNumber": "+254 112 345 678"}, headers=bearer(token)
    )
    assert response.json()["user"] == {
        **user,
        "phoneNumber": "254112345678",
        "updatedAt": response.json()["user"]["updatedAt"],
    }


async def test_update_profile_cannot_change_email_role_or_password(client, register, login):
    body = await register(password="password123")
    response = await client.put(
        "/api/profile",
        json={"email": "other@example.com", "role": "admin", "password": "hijacked1"},
        headers=bearer(body["token"]),
    )
    assert response.status_code == 200
    user = response.json()["user"]
    assert user["email"] == "john@example.com" and user["role"] == "customer"
    assert await login(password="password123")


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"name": None}, {"name": "x" * 101}, {"phoneNumber": "999"}]
)
async def test_update_profile_validates(client, register, body):
    token = (await register())["token"]
    response = await client.put("/api/profile", json=body, headers=bearer(token))
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"


async def test_change_password(client, register, login, keys):
    body = await register(password="password123")
    # A token from an earlier second, as a stolen one would be.
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    old_token = jwt.encode(
        {**claims, "iat": claims["iat"] - 5},
        keys.user_token_key,
        "EdDSA",
        headers=jwt.get_unverified_header(body["token"]),
    )
    assert (await client.get("/api/profile", headers=bearer(old_token))).status_code == 200

    response = await client.post(
        "/api/change-password",
        json={"currentPassword": "password123", "newPassword": "a new password"},
        headers=bearer(body["token"]),
    )
    assert response.status_code == 200
    assert response.json()["message"] == "Password changed successfully"
    new_token = response.json()["token"]

    assert (await client.get("/api/profile", headers=bearer(new_token))).status_code == 200
    revoked = await client.get("/api/profile", headers=bearer(old_token))
    assert revoked.status_code == 401
    assert await login(password="a new password")
    refused = await client.post(
        "/api/login", json={"email": "john@example.com", "password": "password123"}
    )
    assert refused.status_code == 401


async def test_change_password_needs_the_current_one(client, register):
    token = (await register(password="password123"))["token"]
    response = await client.post(
        "/api/change-password",
        json={"currentPassword": "wrong-one", "newPassword": "a new password"},
        headers=bearer(token),
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Current password is incorrect"}


async def test_change_password_validates_the_new_one(client, register):
    token = (await register(password="password123"))["token"]
    response = await client.post(
        "/api/change-password",
        json={"currentPassword": "password123", "newPassword": "short"},
        headers=bearer(token),
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "newPassword"


async def test_verify_returns_the_claims_of_a_valid_token(client, register):
    body = await register()
    response = await client.post("/api/verify", headers=bearer(body["token"]))
    assert response.status_code == 200
    claims = response.json()["user"]
    assert claims["id"] == body["user"]["id"]
    assert claims["email"] == "john@example.com"
    assert claims["role"] == "customer"
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600
    assert abs(claims["iat"] - time.time()) < 60


async def test_verify_without_a_token(client):
    response = await client.post("/api/verify")
    assert response.status_code == 401
    assert response.json() == {"error": "No token provided"}
