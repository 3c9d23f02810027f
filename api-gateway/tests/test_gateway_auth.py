"""The gateway checks tokens itself: bad ones never reach a service."""

import base64
import json
import time
import uuid

import jwt
import pytest

from shared.testing import FakeClock, bearer


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


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
    "unknown user",
    "an internal token",
]


@pytest.fixture
def bad_tokens(make_user, keys):
    user_id, token = make_user()
    claims = jwt.decode(token, options={"verify_signature": False})
    header, _, signature = token.split(".")
    return {
        **keys.forged_user_tokens(user_id),
        "tampered role": f"{header}.{_b64({**claims, 'role': 'admin'})}.{signature}",
        "garbage": "garbage",
        "unknown user": keys.user_token(uuid.uuid4()),
        "an internal token": keys.internal_token("admin-console", "gateway"),
    }


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
async def test_bad_tokens_are_401_before_any_service(gateway, fake_services, bad_tokens, kind):
    for path in ("/api/auth/profile", "/api/cart", "/api/orders/admin/orders"):
        response = await gateway.get(path, headers=bearer(bad_tokens[kind]))
        assert response.status_code == 401, (kind, path)
        assert response.json() == {"error": "Invalid token"}
    assert [r for r in fake_services.received] == []


async def test_missing_token_and_missing_bearer(gateway, make_user, fake_services):
    _, token = make_user()
    none = await gateway.get("/api/auth/profile")
    assert none.status_code == 401
    assert none.json() == {"error": "No token provided"}
    no_bearer = await gateway.get("/api/auth/profile", headers={"Authorization": token})
    assert no_bearer.status_code == 401
    assert no_bearer.json() == {"error": "Invalid token"}
    assert fake_services.received == []


async def test_public_routes_need_no_token(gateway):
    assert (await gateway.get("/api/products")).status_code == 200
    assert (await gateway.post("/api/auth/login", json={})).status_code == 200
    assert (await gateway.post("/api/payments/webhook/stripe", content=b"{}")).status_code == 200


async def test_admin_routes_are_403_for_customers(gateway, make_user, fake_services):
    _, customer = make_user()
    _, admin = make_user(role="admin")
    for method, path in [
        ("GET", "/api/auth/admin/users"),
        ("POST", "/api/products"),
        ("PUT", "/api/products/1"),
        ("DELETE", "/api/products/1"),
        ("GET", "/api/orders/admin/orders"),
        ("GET", "/api/payments/admin/payments"),
        ("POST", "/api/payments/1/refund"),
    ]:
        refused = await gateway.request(method, path, headers=bearer(customer))
        assert refused.status_code == 403, path
        assert refused.json() == {"error": "Access denied. Admin only."}
        allowed = await gateway.request(method, path, headers=bearer(admin))
        assert allowed.status_code == 200, path
    assert len(fake_services.received) == 7


async def test_a_demoted_admin_loses_admin_routes_within_the_ttl(
    make_client, make_user, fake_services
):
    clock = FakeClock()
    client = await make_client(clock=clock, USER_STATUS_TTL="30")
    user_id, token = make_user(role="admin")
    assert (await client.get("/api/auth/admin/users", headers=bearer(token))).status_code == 200
    fake_services.users[user_id]["role"] = "customer"
    # Within the TTL the cached status still holds; past it, the change is seen.
    assert (await client.get("/api/auth/admin/users", headers=bearer(token))).status_code == 200
    clock.advance(31)
    assert (await client.get("/api/auth/admin/users", headers=bearer(token))).status_code == 403
    # ...and a token revoked by a password change stops working too.
    fake_services.users[user_id]["tokensValidAfter"] = int(time.time()) + 10
    clock.advance(31)
    assert (await client.get("/api/cart", headers=bearer(token))).status_code == 401


async def test_a_customer_promoted_to_admin_gets_admin_routes(
    make_client, make_user, fake_services
):
    clock = FakeClock()
    client = await make_client(clock=clock, USER_STATUS_TTL="30")
    user_id, token = make_user(role="customer")
    assert (await client.get("/api/auth/admin/users", headers=bearer(token))).status_code == 403
    fake_services.users[user_id]["role"] = "admin"
    clock.advance(31)
    assert (await client.get("/api/auth/admin/users", headers=bearer(token))).status_code == 200
