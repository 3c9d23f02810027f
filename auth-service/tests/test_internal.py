import uuid

from sqlalchemy import text

from shared.testing import bearer
from shared.tokens import issue_internal_token


def internal_headers(settings) -> dict[str, str]:
    token = issue_internal_token(
        service="gateway", secret=settings.internal_service_secret.get_secret_value()
    )
    return {"X-Internal-Token": token}


async def test_user_status_for_other_services(client, register, settings, engine):
    user = (await register())["user"]
    response = await client.get(
        f"/api/internal/users/{user['id']}", headers=internal_headers(settings)
    )
    assert response.status_code == 200
    assert response.json() == {
        "user": {"id": user["id"], "role": "customer", "isActive": True, "tokensValidAfter": 0}
    }
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE users SET is_active = false, role = 'admin'"))
    response = await client.get(
        f"/api/internal/users/{user['id']}", headers=internal_headers(settings)
    )
    assert response.json()["user"]["isActive"] is False
    assert response.json()["user"]["role"] == "admin"


async def test_unknown_user_status_is_404(client, settings):
    response = await client.get(
        f"/api/internal/users/{uuid.uuid4()}", headers=internal_headers(settings)
    )
    assert response.status_code == 404


async def test_internal_routes_refuse_anonymous_and_user_tokens(client, register, settings):
    body = await register()
    path = f"/api/internal/users/{body['user']['id']}"
    anonymous = await client.get(path)
    assert anonymous.status_code == 401
    as_user = await client.get(path, headers=bearer(body["token"]))
    assert as_user.status_code == 401
    # A user token in the internal header is not an internal token either.
    disguised = await client.get(path, headers={"X-Internal-Token": body["token"]})
    assert disguised.status_code == 401
    # Nor is an internal token signed with the users' key.
    wrong_key = issue_internal_token(
        service="gateway", secret=settings.jwt_secret.get_secret_value()
    )
    assert (await client.get(path, headers={"X-Internal-Token": wrong_key})).status_code == 401


async def test_an_internal_token_is_not_a_user_token(client, settings):
    response = await client.get(
        "/api/profile", headers=bearer(internal_headers(settings)["X-Internal-Token"])
    )
    assert response.status_code == 401
