import socket
import time

import pytest

from shared.testing import bearer, refused_port


async def test_the_auth_limit_is_hit_and_then_resets(make_client, time_machine):
    time_machine.move_to(time.time())  # the clock a test moves (time ticks on from here)
    client = await make_client(RATE_LIMIT_ENABLED="true", RATE_LIMIT_AUTH="3 per 2 seconds")
    for _ in range(3):
        allowed = await client.post("/api/auth/login", json={})
        assert allowed.status_code == 200
    assert allowed.headers["RateLimit-Limit"] == "3"
    assert allowed.headers["RateLimit-Remaining"] == "0"
    refused = await client.post("/api/auth/login", json={})
    assert refused.status_code == 429
    assert refused.json() == {"error": "Too many requests, please try again later."}
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    # Register shares the stricter bucket; other routes have their own.
    assert (await client.post("/api/auth/register", json={})).status_code == 429
    assert (await client.get("/api/products")).status_code == 200

    time_machine.shift(int(refused.headers["Retry-After"]) + 0.1)
    assert (await client.post("/api/auth/login", json={})).status_code == 200


async def test_the_default_limit_applies_to_other_routes(make_client, make_user):
    _, token = make_user()
    client = await make_client(RATE_LIMIT_ENABLED="true", RATE_LIMIT_DEFAULT="5/minute")
    statuses = [
        (await client.get("/api/cart", headers=bearer(token))).status_code for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]


async def test_a_spoofed_x_forwarded_for_does_not_reset_the_limit(make_client):
    client = await make_client(RATE_LIMIT_ENABLED="true", RATE_LIMIT_AUTH="2/minute")
    statuses = [
        (
            await client.post(
                "/api/auth/login", json={}, headers={"X-Forwarded-For": f"198.51.100.{i}"}
            )
        ).status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 429, 429]


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(make_client):
    client = await make_client(
        client_ip="10.0.0.2",
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_AUTH="2/minute",
        TRUSTED_PROXIES="10.0.0.0/8",
    )

    async def login_from(ip: str, spoofed: str = "") -> int:
        forwarded = f"{spoofed}, {ip}" if spoofed else ip
        response = await client.post(
            "/api/auth/login", json={}, headers={"X-Forwarded-For": forwarded}
        )
        return response.status_code

    assert [await login_from("198.51.100.1") for _ in range(3)] == [200, 200, 429]
    assert await login_from("198.51.100.2") == 200
    # A client behind the proxy that prepends its own X-Forwarded-For gains nothing.
    assert await login_from("198.51.100.1", spoofed="203.0.113.99") == 429


async def test_rate_limits_can_be_switched_off(make_client):
    client = await make_client(RATE_LIMIT_ENABLED="false", RATE_LIMIT_AUTH="1/minute")
    assert [(await client.post("/api/auth/login", json={})).status_code for _ in range(3)] == [
        200,
        200,
        200,
    ]


async def test_an_unreachable_redis_lets_requests_through(make_client):
    with refused_port() as port:
        client = await make_client(
            RATE_LIMIT_ENABLED="true",
            RATE_LIMIT_AUTH="1/minute",
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
        )
        statuses = [(await client.post("/api/auth/login", json={})).status_code for _ in range(2)]
    assert statuses == [200, 200]


def _redis_is_running() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_is_running(), reason="needs a Redis server on 127.0.0.1:6379")
async def test_replicas_share_the_limit_through_redis(make_client):
    import uuid

    # Each run its own database-less namespace: the client IP differs per run.
    ip = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    settings = {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_AUTH": "3/minute",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    first = await make_client(client_ip=ip, **settings)
    second = await make_client(client_ip=ip, **settings)
    import redis.asyncio

    connection = redis.asyncio.from_url("redis://127.0.0.1:6379/15")
    await connection.flushdb()
    await connection.aclose()
    statuses = []
    for client in (first, second, first, second):
        statuses.append((await client.post("/api/auth/login", json={})).status_code)
    assert statuses == [200, 200, 200, 429]
