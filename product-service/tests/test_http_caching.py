"""HTTP caching of the catalogue's reads: anonymous answers are public for
CATALOGUE_MAX_AGE seconds with a strong ETag (304 on If-None-Match); a token's holder gets
a private answer; errors carry no caching headers."""

import httpx
import pytest

from product_service.main import create_app
from shared.http_cache import cache_directives, etag_matches, strong_etag
from shared.testing import started


@pytest.fixture
async def product(create_product) -> dict:
    return await create_product(name="Cached phone", stock=7)


def paths(product: dict) -> list[str]:
    return [
        "/api/products?limit=10",
        "/api/products?search=cached&limit=20",
        f"/api/products/{product['id']}",
    ]


async def test_anonymous_reads_are_public_with_a_strong_etag(client, product):
    for path in paths(product):
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["cache-control"] == "public, max-age=1"
        assert response.headers["etag"] == strong_etag(response.content)
        assert not response.headers["etag"].startswith("W/")
        assert response.headers["vary"] == "Authorization"
        # The same bytes as before: the original's envelope.
        assert "products" in response.json() or response.json()["product"]["id"] == product["id"]


async def test_the_etag_is_stable_for_the_same_body_and_changes_with_it(
    client, product, admin_headers
):
    path = f"/api/products/{product['id']}"
    first = await client.get(path)
    again = await client.get(path)
    assert first.headers["etag"] == again.headers["etag"]
    listed = (await client.get("/api/products?limit=10")).headers["etag"]

    changed = await client.put(path, json={"stock": 8}, headers=admin_headers)
    assert changed.status_code == 200, changed.text
    after = await client.get(path)
    assert after.json()["product"]["stock"] == 8
    assert after.headers["etag"] != first.headers["etag"]
    assert (await client.get("/api/products?limit=10")).headers["etag"] != listed


async def test_if_none_match_is_304_without_a_body(client, product):
    for path in paths(product):
        etag = (await client.get(path)).headers["etag"]
        for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            response = await client.get(path, headers={"If-None-Match": if_none_match})
            assert response.status_code == 304, (path, if_none_match)
            assert response.content == b""
            assert response.headers["etag"] == etag
            assert response.headers["cache-control"] == "public, max-age=1"
        stale = await client.get(path, headers={"If-None-Match": '"not-this-one"'})
        assert stale.status_code == 200
        assert stale.headers["etag"] == etag


async def test_a_token_holders_reads_are_private(client, product, admin_headers, customer_headers):
    for headers in (admin_headers, customer_headers):
        for path in paths(product):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200
            directives = cache_directives(response.headers["cache-control"])
            assert "public" not in directives
            assert {"private", "no-store"} <= directives.keys()


async def test_an_admins_view_of_inactive_products_is_private(client, product, admin_headers):
    path = f"/api/products/{product['id']}"
    assert (await client.delete(path, headers=admin_headers)).status_code == 200
    seen = await client.get(path, headers=admin_headers)
    assert seen.status_code == 200
    assert seen.headers["cache-control"] == "private, no-store"
    listed = await client.get("/api/products?includeInactive=true", headers=admin_headers)
    assert product["id"] in [p["id"] for p in listed.json()["products"]]
    assert listed.headers["cache-control"] == "private, no-store"


async def test_errors_carry_no_caching_headers(client):
    for path in (
        "/api/products/00000000-0000-0000-0000-000000000000",
        "/api/products/not-a-uuid",
        "/api/products?limit=0",
    ):
        response = await client.get(path)
        assert response.status_code in (400, 404)
        assert "etag" not in response.headers
        assert "public" not in response.headers.get("cache-control", "")


async def test_the_max_age_is_a_setting(make_settings, keys):
    app = create_app(make_settings(CATALOGUE_MAX_AGE="7"), user_token_keys=keys.user_token_keys)
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://product") as client:
            response = await client.get("/api/products")
    assert response.headers["cache-control"] == "public, max-age=7"


def test_if_none_match_comparison():
    assert etag_matches('"a"', '"a"')
    assert etag_matches('W/"a"', '"a"')
    assert etag_matches('"b", "a"', '"a"')
    assert etag_matches("*", '"a"')
    assert not etag_matches('"b"', '"a"')
    assert not etag_matches(None, '"a"')
    assert not etag_matches('"a"', None)


def test_cache_control_directives():
    assert cache_directives('public, max-age=5, s-maxage="3", No-Store') == {
        "public": None,
        "max-age": "5",
        "s-maxage": "3",
        "no-store": None,
    }
    assert cache_directives(None) == {}
