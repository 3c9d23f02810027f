import uuid

import pytest
from sqlalchemy import text

from shared.testing import bearer

# Every identity that asks the auth service for a user's status.
CALLERS = ["gateway", "product", "cart", "order", "payment"]


@pytest.fixture
def internal_headers(keys):
    def headers(caller: str = "gateway") -> dict[str, str]:
        return keys.internal_headers(caller, "auth")

    return headers


@pytest.mark.parametrize("caller", CALLERS)
async def test_each_callers_own_token_is_accepted(client, register, internal_headers, caller):
    user = (await register())["user"]
    response = await client.get(
        f"/api/internal/users/{user['id']}", headers=internal_headers(caller)
    )
    assert response.status_code == 200, response.text


async def test_user_status_for_other_services(client, register, internal_headers, engine):
    user = (await register())["user"]
    response = await client.get(f"/api/internal/users/{user['id']}", headers=internal_headers())
    assert response.status_code == 200
    assert response.json() == {
        "user": {"id": user["id"], "role": "customer", "isActive": True, "tokensValidAfter": 0}
    }
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE users SET is_active = false, role = 'admin'"))
    response = await client.get(f"/api/internal/users/{user['id']}", headers=internal_headers())
    assert response.json()["user"]["isActive"] is False
    assert response.json()["user"]["role"] == "admin"


async def test_unknown_user_status_is_404(client, internal_headers):
    response = await client.get(f"/api/internal/users/{uuid.uuid4()}", headers=internal_headers())
    assert response.status_code == 404


async def test_internal_routes_refuse_anonymous_and_user_tokens(client, register):
    body = await register()
    path = f"/api/internal/users/{body['user']['id']}"
    anonymous = await client.get(path)
    assert anonymous.status_code == 401
    as_user = await client.get(path, headers=bearer(body["token"]))
    assert as_user.status_code == 401
    # A user token in the internal header is not an internal token either.
    disguised = await client.get(path, headers={"X-Internal-Token": body["token"]})
    assert disguised.status_code == 401


@pytest.mark.parametrize("caller", CALLERS)
async def test_forged_internal_tokens_are_refused(client, register, keys, caller):
    """Signed with another service's key, for another service, expired, ...: each a 401."""
    user = (await register())["user"]
    path = f"/api/internal/users/{user['id']}"
    for why, token in keys.forged_internal_tokens(caller, "auth").items():
        response = await client.get(path, headers={"X-Internal-Token": token})
        assert response.status_code == 401, why
        assert response.json() == {"error": "Invalid internal service token"}, why


async def test_an_internal_token_is_not_a_user_token(client, internal_headers):
    response = await client.get(
        "/api/profile", headers=bearer(internal_headers()["X-Internal-Token"])
    )
    assert response.status_code == 401
