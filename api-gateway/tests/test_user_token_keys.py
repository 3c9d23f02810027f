"""The gateway verifies user tokens with the auth service's public keys: fetched from its
JWKS at start, fetched again (once) when a token names a new key, never per request."""

import asyncio

import jwt

from api_gateway.openapi_merge import gateway_path
from shared.keys import generate_private_key, jwks, thumbprint
from shared.testing import bearer
from shared.tokens import issue_user_token


def signed_by(key, user_id: str) -> str:
    import uuid

    return issue_user_token(
        user_id=uuid.UUID(user_id),
        email="rotated@example.com",
        role="customer",
        signing_key=key,
        expires_in="1h",
    )


async def test_the_jwks_is_served_at_the_well_known_path_without_a_token(gateway, fake_services):
    response = await gateway.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json() == fake_services.jwks
    assert response.headers["cache-control"] == "public, max-age=300"
    # It is the auth service's: in the merged document under the same path.
    assert gateway_path("auth", "/.well-known/jwks.json") == "/.well-known/jwks.json"
    refused = await gateway.post("/.well-known/jwks.json", json={})
    assert refused.status_code == 401  # only reading is public


async def test_rotation_one_fetch_for_a_new_key_old_tokens_still_valid(
    gateway, fake_services, make_user, keys
):
    user_id, old_token = make_user()
    assert (await gateway.get("/api/cart", headers=bearer(old_token))).status_code == 200
    assert fake_services.jwks_requests == 1  # at start, once

    # The auth service rotates: a new key signs, the old one is still published.
    new_key = generate_private_key()
    fake_services.jwks = jwks([new_key.public_key(), keys.user_token_key.public_key()])
    new_token = signed_by(new_key, user_id)
    assert jwt.get_unverified_header(new_token)["kid"] == thumbprint(new_key.public_key())

    responses = await asyncio.gather(
        *(gateway.get("/api/cart", headers=bearer(new_token)) for _ in range(20))
    )
    assert [r.status_code for r in responses] == [200] * 20
    assert fake_services.jwks_requests == 2  # twenty requests with the new kid: one fetch
    assert (await gateway.get("/api/cart", headers=bearer(old_token))).status_code == 200
    assert fake_services.jwks_requests == 2


async def test_unknown_kids_do_not_make_a_fetch_per_request(gateway, fake_services, make_user):
    user_id, token = make_user()
    assert (await gateway.get("/api/cart", headers=bearer(token))).status_code == 200
    strangers = [generate_private_key() for _ in range(10)]
    for key in strangers:
        response = await gateway.get("/api/cart", headers=bearer(signed_by(key, user_id)))
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid token"}
    # The first unknown kid asked once more; the others, within the interval, did not.
    assert fake_services.jwks_requests == 2
    # Only the valid token's request reached the cart service.
    assert [r["path"] for r in fake_services.received] == ["/api/cart"]


async def test_a_gateway_that_started_before_the_auth_service_fetches_later(
    make_client, fake_services, make_user
):
    published = fake_services.jwks
    fake_services.jwks = {"error": "not yet"}  # no keys in it: as good as down
    client = await make_client()
    _, token = make_user()
    response = await client.get("/api/cart", headers=bearer(token))
    assert response.status_code == 503
    assert response.json() == {"error": "Auth service unavailable"}
    fake_services.jwks = published
    for _ in range(100):  # the retries after start (0.5 s, 1 s, ...) find the keys
        if (await client.get("/api/cart", headers=bearer(token))).status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/api/cart", headers=bearer(token))).status_code == 200
