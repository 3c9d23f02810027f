import base64
import os

import pytest

from shared.testing import FakeClock, bearer

MAPPING = [
    ("POST", "/api/auth/register", "auth", "/api/register"),
    ("GET", "/api/products?page=2&search=a%20b", "product", "/api/products"),
    ("GET", "/api/cart", "cart", "/api/cart"),
    ("GET", "/api/orders/admin/orders?status=paid", "order", "/api/admin/orders"),
    ("POST", "/api/payments/mpesa", "payment", "/api/payments/mpesa"),
    ("POST", "/api/payments/webhook/stripe", "payment", "/api/webhook/stripe"),
]


@pytest.mark.parametrize(("method", "path", "service", "upstream_path"), MAPPING)
async def test_each_prefix_reaches_its_service_at_the_originals_path(
    gateway, make_user, fake_services, method, path, service, upstream_path
):
    _, token = make_user(role="admin")
    response = await gateway.request(method, path, headers=bearer(token))
    assert response.status_code == 200, response.text
    received = response.json()
    assert (received["service"], received["path"]) == (service, upstream_path)
    assert received["query"] == (path.split("?", 1)[1] if "?" in path else "")
    assert response.headers["X-Upstream"] == "yes"


async def test_body_bytes_reach_the_service_unchanged(gateway, make_user):
    _, token = make_user()
    payloads = [
        (os.urandom(4096) + b"\x00\xff", "application/octet-stream"),
        (b'{ "b":1,\n  "a" : "\\u00e9",   "n": 1.10 }', "application/json"),
        (b"t=1700000000,v1=abc&x=%20", "application/x-www-form-urlencoded"),
    ]
    for body, content_type in payloads:
        response = await gateway.post(
            "/api/payments/webhook/stripe", content=body, headers={"Content-Type": content_type}
        )
        received = response.json()
        assert base64.b64decode(received["body"]) == body
        assert received["headers"]["content-type"] == content_type
        assert received["headers"]["content-length"] == str(len(body))
    response = await gateway.put("/api/cart/items/1", content=b"[1,2]", headers=bearer(token))
    assert base64.b64decode(response.json()["body"]) == b"[1,2]"


async def test_headers_are_cleaned_and_forwarding_headers_added(gateway, make_user):
    _, token = make_user()
    response = await gateway.get(
        "/api/cart",
        headers={
            **bearer(token),
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "dropped",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "X-Internal-Token": "forged",
            "X-Forwarded-For": "1.2.3.4",
            "X-Custom": "kept",
        },
    )
    headers = response.json()["headers"]
    assert "x-hop" not in headers and "proxy-authorization" not in headers
    assert "x-internal-token" not in headers
    assert headers["x-custom"] == "kept"
    assert headers["authorization"] == f"Bearer {token}"
    # The peer is not a trusted proxy: what the client claims is not passed on.
    assert headers["x-forwarded-for"] == "203.0.113.7"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-real-ip"] == "203.0.113.7"


async def test_a_large_response_is_streamed_through_intact(gateway, make_user):
    _, token = make_user()
    response = await gateway.get("/api/cart/big", headers=bearer(token))
    assert response.status_code == 200
    assert response.content == b"0123456789abcdef" * 4096 * 16


@pytest.mark.parametrize(
    "path",
    [
        "/api/products/internal/check-stock",
        "/api/products/internal/reserve",
        "/api/orders/internal/update-status",
        "/api/cart/internal/cart/checkout",
        "/api/auth/internal/users/1",
        "/api/products/Internal/reserve",
        "/api/products/%69nternal/reserve",
        "/api/products/x/..%2Finternal/reserve",
        "/api/products/x/../internal/reserve",
        "/api/payments/webhook/../../products/internal/reserve",
    ],
)
async def test_internal_paths_are_never_proxied(gateway, make_user, fake_services, path):
    _, user_token = make_user()
    _, admin_token = make_user(role="admin")
    for headers in ({}, bearer(user_token), bearer(admin_token)):
        for method in ("GET", "POST"):
            response = await gateway.request(method, path, headers=headers, json={})
            assert response.status_code == 404, (path, response.text)
            assert response.json() == {"error": "Route not found"}
    assert fake_services.received == []


async def test_unknown_route_is_404(gateway):
    for path in ("/api/nothing", "/nothing", "/api"):
        response = await gateway.get(path)
        assert response.status_code == 404
        assert response.json() == {"error": "Route not found"}


async def test_request_id_is_echoed_and_passed_on(gateway, make_user):
    _, token = make_user()
    response = await gateway.get("/api/cart", headers={**bearer(token), "X-Request-ID": "trace-42"})
    assert response.headers["X-Request-ID"] == "trace-42"
    assert response.json()["headers"]["x-request-id"] == "trace-42"
    made = await gateway.get("/api/cart", headers=bearer(token))
    assert made.json()["headers"]["x-request-id"] == made.headers["X-Request-ID"]
    assert len(made.headers["X-Request-ID"]) == 32


async def test_gateway_health_and_security_headers(gateway):
    response = await gateway.get("/health")
    assert response.json()["service"] == "API Gateway"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


async def test_cors_preflight(make_client):
    client = await make_client(CORS_ORIGINS="https://shop.example.com")
    response = await client.options(
        "/api/products",
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    other = await client.options(
        "/api/products",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_a_body_over_the_limit_is_413(make_client):
    client = await make_client(MAX_BODY_SIZE="1024")
    response = await client.post("/api/auth/register", content=b"x" * 2048)
    assert response.status_code == 413
    assert response.json() == {"error": "Request body too large"}


async def test_user_status_is_cached_and_deactivation_honoured(
    make_client, make_user, fake_services
):
    clock = FakeClock()
    client = await make_client(clock=clock, USER_STATUS_TTL="30")
    user_id, token = make_user()
    assert (await client.get("/api/cart", headers=bearer(token))).status_code == 200
    fake_services.users[user_id]["isActive"] = False
    assert (await client.get("/api/cart", headers=bearer(token))).status_code == 200  # cached
    clock.advance(31)
    response = await client.get("/api/cart", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == {"error": "Account is deactivated"}


async def test_cookies_a_service_sets_reach_the_client_and_no_one_else(gateway, make_user):
    _, token = make_user()
    first = await gateway.get("/api/cart/set-cookie", headers=bearer(token))
    assert sorted(first.headers.get_list("set-cookie"))[0].startswith("session=user-a-secret")
    assert len(first.headers.get_list("set-cookie")) == 2
    gateway.cookies.clear()
    _, other_token = make_user()
    second = await gateway.get("/api/cart", headers=bearer(other_token))
    assert "cookie" not in second.json()["headers"]


@pytest.mark.parametrize("escape", ["%00", "%0E", "%1F", "%7F"])
async def test_a_control_character_in_the_path_is_forwarded_as_sent(gateway, make_user, escape):
    """A decoded path cannot be put in a URL (it was a 500); the path as sent can."""
    _, token = make_user()
    for path in (f"/api/products/{escape}", f"/api/orders/{escape}/cancel"):
        response = (
            await gateway.put(path, headers=bearer(token))
            if "cancel" in path
            else (await gateway.get(path))
        )
        assert response.status_code == 200, response.text
        assert response.json()["path"] == path.replace(escape, chr(int(escape[1:], 16)))


async def test_a_header_value_that_is_not_ascii_reaches_the_service(gateway, make_user):
    _, token = make_user()
    response = await gateway.post(
        "/api/orders",
        headers=[
            (b"authorization", f"Bearer {token}".encode()),
            (b"user-agent", "café".encode()),
            (b"idempotency-key", "café".encode()),
        ],
    )
    assert response.status_code == 200, response.text
    received = response.json()["headers"]
    # The fake reads headers as latin-1, as Starlette does: the UTF-8 bytes came through.
    assert received["idempotency-key"] == "café".encode().decode("latin-1")
    assert received["user-agent"] == "café".encode().decode("latin-1")


async def test_head_reaches_the_service_and_the_gateways_own_routes_answer_it(gateway):
    assert (await gateway.head("/api/products")).status_code == 200
    health = await gateway.head("/health")
    assert health.status_code == 200 and health.content == b""
    refused = await gateway.post("/health")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
