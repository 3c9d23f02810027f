"""The gateway in front of the admin console: /admin/... forwarded as it is, with the
console's own security headers; and the console's API calls counted against the person
signed in to it (the address it vouches for with its internal token), not the console."""

import pytest

from shared.testing import TestKeys, bearer, refused_port


async def test_the_console_is_served_at_admin(make_client, fake_services):
    client = await make_client()
    for path in ("/admin", "/admin/", "/admin/orders?status=paid", "/admin/static/console.css"):
        response = await client.get(path)
        assert response.status_code == 200, path
        received = fake_services.received[-1]
        assert received["service"] == "console"
        assert received["path"] + ("?" + received["query"] if received["query"] else "") == path
        # The address of the person at the browser, for the console's own calls.
        assert received["headers"]["x-real-ip"] == "203.0.113.7"
        # The console's pages carry the console's stricter policy, not the gateway's.
        assert "content-security-policy" not in response.headers
    form = await client.post("/admin/login", data={"email": "a@example.com"})
    assert form.status_code == 200
    assert fake_services.received[-1]["method"] == "POST"
    assert (await client.get("/api/products")).headers["content-security-policy"]


async def test_a_console_that_is_down_is_a_503(make_client):
    with refused_port() as port:
        client = await make_client(ADMIN_CONSOLE_URL=f"http://127.0.0.1:{port}")
        response = await client.get("/admin/")
    assert response.status_code == 503
    assert response.json() == {"error": "Admin console service unavailable"}


@pytest.fixture
async def limited(make_client):
    return await make_client(
        client_ip="127.0.0.1",
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_AUTH="2/minute",
    )


async def test_the_consoles_calls_count_against_each_signed_in_person(limited, keys):
    client = limited
    console = keys.internal_token("admin-console", "gateway")

    async def login_for(person: str) -> int:
        response = await client.post(
            "/api/auth/login",
            json={},
            headers={"X-Internal-Token": console, "X-Forwarded-For": person},
        )
        return response.status_code

    # Two people behind the one console: each has the limit of /api/auth/login.
    assert [await login_for("198.51.100.1") for _ in range(3)] == [200, 200, 429]
    assert [await login_for("198.51.100.2") for _ in range(2)] == [200, 200]


@pytest.mark.parametrize(
    "why",
    [
        "no token",
        "not a token",
        # Another service's real token does not vouch for a browser's address.
        "the order service's own token",
        *TestKeys().forged_internal_tokens("admin-console", "gateway"),
    ],
)
async def test_no_one_else_chooses_the_address_counted(limited, fake_services, keys, why):
    client = limited
    tokens = {
        "no token": None,
        "not a token": "not-a-token",
        "the order service's own token": keys.internal_token("order", "gateway"),
        **keys.forged_internal_tokens("admin-console", "gateway"),
    }
    token = tokens[why]
    headers = {"X-Internal-Token": token} if token else {}
    statuses = [
        (
            await client.post(
                "/api/auth/login", json={}, headers={**headers, "X-Forwarded-For": f"192.0.2.{i}"}
            )
        ).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]  # all counted against the caller itself
    # Whatever it was, the token never reaches a service.
    assert all("x-internal-token" not in r["headers"] for r in fake_services.received)


async def test_a_vouched_call_still_needs_its_users_token(limited, make_user, keys):
    client = limited
    console = keys.internal_token("admin-console", "gateway")
    headers = {"X-Internal-Token": console, "X-Forwarded-For": "198.51.100.9"}
    assert (await client.get("/api/auth/admin/users", headers=headers)).status_code == 401
    _, customer = make_user()
    refused = await client.get("/api/auth/admin/users", headers={**headers, **bearer(customer)})
    assert refused.status_code == 403
