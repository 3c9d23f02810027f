"""The gateway's cache of anonymous reads (api_gateway/response_cache.py), against the fake
services over real HTTP: what the service marked public is answered from memory within
its max-age (the service is not called: `fake_services.received` counts what reached it),
never for a token's or a cookie's holder; writes through the gateway drop it; the clock
is a FakeClock, moved instead of slept."""

import asyncio
from urllib.parse import quote

import pytest
from starlette.responses import Response

from api_gateway.response_cache import ResponseCache
from shared.testing import FakeClock, bearer

PUBLIC = "public, max-age=1"
ETAG = '"v1"'


def cacheable(path: str = "/api/products", cc: str = PUBLIC, **params: str) -> str:
    query = {"cc": cc, "etag": ETAG, **params}
    return path + "?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())


def reached(fake_services, path: str) -> int:
    return sum(1 for r in fake_services.received if r["path"] == path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cached_gateway(make_client, clock):
    return await make_client(clock=clock)


async def test_a_second_anonymous_read_within_max_age_is_answered_by_the_gateway(
    cached_gateway, fake_services, clock
):
    url = cacheable("/api/products/p1")
    first = await cached_gateway.get(url)
    assert first.status_code == 200
    assert "age" not in first.headers  # from the service
    clock.advance(0.5)
    second = await cached_gateway.get(url)
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["etag"] == ETAG
    assert second.headers["cache-control"] == PUBLIC
    assert second.headers["content-type"] == "application/json"
    assert second.headers["content-length"] == str(len(first.content))
    assert second.headers["age"] == "0"
    # The gateway's own headers are still added to an answer from the cache.
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert second.headers["x-content-type-options"] == "nosniff"
    assert reached(fake_services, "/api/products/p1") == 1


async def test_a_stored_answer_expires_after_max_age(cached_gateway, fake_services, clock):
    url = cacheable("/api/products", cc="public, max-age=2")
    await cached_gateway.get(url)
    clock.advance(1.5)
    aged = await cached_gateway.get(url)
    assert aged.headers["age"] == "1"
    assert reached(fake_services, "/api/products") == 1
    clock.advance(0.5)  # 2 s old: stale
    assert "age" not in (await cached_gateway.get(url)).headers
    assert reached(fake_services, "/api/products") == 2


async def test_if_none_match_is_answered_304_from_the_cache(cached_gateway, fake_services):
    url = cacheable("/api/products/p2")
    await cached_gateway.get(url)
    for if_none_match in (ETAG, f"W/{ETAG}", f'"x", {ETAG}'):
        response = await cached_gateway.get(url, headers={"If-None-Match": if_none_match})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == ETAG
        assert response.headers["cache-control"] == PUBLIC
        assert "age" in response.headers
        assert "content-type" not in response.headers
    other = await cached_gateway.get(url, headers={"If-None-Match": '"v0"'})
    assert other.status_code == 200 and other.headers["etag"] == ETAG
    assert reached(fake_services, "/api/products/p2") == 1


async def test_head_is_answered_from_the_cache_without_a_body(cached_gateway, fake_services):
    url = cacheable("/api/products/p3")
    got = await cached_gateway.get(url)
    head = await cached_gateway.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["etag"] == ETAG
    assert reached(fake_services, "/api/products/p3") == 1
    # A HEAD that misses is forwarded (as a GET) and fills the cache for the next GET.
    url = cacheable("/api/products/p4")
    assert (await cached_gateway.head(url)).content == b""
    assert (await cached_gateway.get(url)).json()["path"] == "/api/products/p4"
    assert reached(fake_services, "/api/products/p4") == 1


async def test_a_token_holder_is_never_served_from_the_cache_nor_stored(
    cached_gateway, fake_services, make_user
):
    _, token = make_user(role="admin")
    url = cacheable("/api/products/p5")
    await cached_gateway.get(url)
    response = await cached_gateway.get(url, headers=bearer(token))
    assert response.json()["headers"]["authorization"] == f"Bearer {token}"
    assert reached(fake_services, "/api/products/p5") == 2

    # What a token's holder got is not kept for anyone, even when marked public.
    url = cacheable("/api/products/p6")
    for _ in range(2):
        await cached_gateway.get(url, headers=bearer(token))
    anonymous = await cached_gateway.get(url)
    assert "authorization" not in anonymous.json()["headers"]
    assert reached(fake_services, "/api/products/p6") == 3


async def test_a_request_with_a_cookie_is_never_served_from_the_cache_nor_stored(
    cached_gateway, fake_services
):
    url = cacheable("/api/products/p7")
    await cached_gateway.get(url, headers={"Cookie": "session=abc"})
    await cached_gateway.get(url)
    await cached_gateway.get(url, headers={"Cookie": "session=abc"})
    assert reached(fake_services, "/api/products/p7") == 3


async def test_an_admins_write_through_the_gateway_is_seen_by_the_next_read(
    cached_gateway, fake_services, make_user
):
    _, token = make_user(role="admin")
    one, listing, search = (
        cacheable("/api/products/p8"),
        cacheable("/api/products"),
        cacheable("/api/products", search="phone"),
    )
    for url in (one, listing, search):
        await cached_gateway.get(url)
        await cached_gateway.get(url)
    assert len(fake_services.received) == 3
    for method in ("PUT", "DELETE", "POST"):
        path = "/api/products" if method == "POST" else "/api/products/p8"
        written = await cached_gateway.request(method, path, headers=bearer(token), json={})
        assert written.status_code == 200
        before = len(fake_services.received)
        for url in (one, listing, search):
            await cached_gateway.get(url)
        assert len(fake_services.received) == before + 3, method
    # A refused write (no token) changes nothing and drops nothing.
    before = len(fake_services.received)
    assert (await cached_gateway.put("/api/products/p8", json={})).status_code == 401
    await cached_gateway.get(one)
    assert len(fake_services.received) == before


async def test_a_write_to_another_service_keeps_the_catalogue(
    cached_gateway, fake_services, make_user
):
    _, token = make_user()
    url = cacheable("/api/products/p9")
    await cached_gateway.get(url)
    await cached_gateway.post("/api/cart/items", headers=bearer(token), json={})
    await cached_gateway.get(url)
    assert reached(fake_services, "/api/products/p9") == 1


@pytest.mark.parametrize(
    ("cc", "params"),
    [
        ("no-store", {}),
        ("private, max-age=1", {}),
        ("public, no-cache, max-age=1", {}),
        ("public, max-age=0", {}),
        ("max-age=1", {}),  # not marked public
        ("public, max-age=60", {}),  # longer than the ceiling (GATEWAY_CACHE_MAX_AGE, 5)
        (PUBLIC, {"vary": "Origin"}),
        (PUBLIC, {"vary": "*"}),
    ],
)
async def test_answers_not_marked_for_a_shared_cache_are_not_stored(
    cached_gateway, fake_services, cc, params
):
    url = cacheable("/api/products/p10", cc=cc, **params)
    for _ in range(2):
        assert (await cached_gateway.get(url)).status_code == 200
    assert reached(fake_services, "/api/products/p10") == 2


async def test_set_cookie_streamed_and_error_answers_are_not_stored(cached_gateway, fake_services):
    for path in ("/api/products/set-cookie", "/api/products/big"):
        for _ in range(2):
            await cached_gateway.get(cacheable(path))
        assert reached(fake_services, path) == 2
    for _ in range(2):
        assert (await cached_gateway.get(cacheable("/api/cart"))).status_code == 401


async def test_an_answer_varying_on_accept_encoding_is_kept_for_that_encoding(
    cached_gateway, fake_services
):
    url = cacheable("/api/products/p11", vary="Accept-Encoding, Authorization")
    gzip, identity = {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "identity"}
    await cached_gateway.get(url, headers=gzip)
    await cached_gateway.get(url, headers=gzip)
    assert reached(fake_services, "/api/products/p11") == 1
    await cached_gateway.get(url, headers=identity)
    assert reached(fake_services, "/api/products/p11") == 2


async def test_a_reload_goes_to_the_service(cached_gateway, fake_services):
    url = cacheable("/api/products/p12")
    await cached_gateway.get(url)
    await cached_gateway.get(url, headers={"Cache-Control": "no-cache"})
    await cached_gateway.get(url)  # the reload's fresh answer was stored
    assert reached(fake_services, "/api/products/p12") == 2


async def test_the_cache_can_be_turned_off(make_client, fake_services):
    gateway = await make_client(GATEWAY_CACHE_ENABLED="false")
    url = cacheable("/api/products/p13")
    for _ in range(2):
        await gateway.get(url)
    assert reached(fake_services, "/api/products/p13") == 2


async def test_the_rate_limit_applies_to_answers_from_the_cache(make_client, fake_services):
    gateway = await make_client(RATE_LIMIT_ENABLED="true", RATE_LIMIT_DEFAULT="2/minute")
    url = cacheable("/api/products/p14")
    statuses = [(await gateway.get(url)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert reached(fake_services, "/api/products/p14") == 1


async def test_answers_from_the_cache_need_no_slot_of_the_services_bound(
    make_client, fake_services
):
    gateway = await make_client(UPSTREAM_MAX_CONCURRENCY="1", UPSTREAM_MAX_QUEUE="0")
    url = cacheable("/api/products/p15")
    await gateway.get(url)
    fake_services.slow_seconds = 1.0
    slow = asyncio.create_task(gateway.get("/api/products/slow"))
    deadline = asyncio.get_running_loop().time() + 10
    while reached(fake_services, "/api/products/slow") == 0:
        assert asyncio.get_running_loop().time() < deadline, "the slow read never arrived"
        await asyncio.sleep(0.01)
    # The product service's one slot is taken: a read it would have to answer is refused,
    # one the cache answers is not.
    refused = await gateway.get("/api/products/p16")
    assert refused.status_code == 503
    assert (await gateway.get(url)).status_code == 200
    assert (await slow).status_code == 200


async def test_when_an_answer_expires_one_request_fetches_it_for_all(
    cached_gateway, fake_services, clock
):
    url = cacheable("/api/products/slow")
    fake_services.slow_seconds = 0.3
    await cached_gateway.get(url)
    clock.advance(1)  # stale: every client asks again at once
    answers = await asyncio.gather(*(cached_gateway.get(url) for _ in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.content for a in answers}) == 1
    assert reached(fake_services, "/api/products/slow") == 2
    # What was never stored is not waited for: each request goes to the service.
    uncached = cacheable("/api/products/slow", cc="no-store")
    await asyncio.gather(*(cached_gateway.get(uncached) for _ in range(3)))
    assert reached(fake_services, "/api/products/slow") == 5


def _answer(body: bytes, cc: str = PUBLIC) -> Response:
    response = Response(body)
    response.raw_headers = [
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", cc.encode()),
    ]
    return response


def _scope(path: str, method: str = "GET") -> dict:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
    }


def test_the_cache_is_bounded_in_entries_least_recently_used_out_first():
    cache = ResponseCache(max_entries=2, max_bytes=1000, max_age=5, clock=FakeClock())
    for name in ("a", "b"):
        scope = _scope(f"/api/products/{name}")
        cache.end(scope, _answer(name.encode()), cache.begin(scope))
    assert cache.answer(_scope("/api/products/a")) is not None  # a used: b is the oldest
    scope = _scope("/api/products/c")
    cache.end(scope, _answer(b"c"), cache.begin(scope))
    assert len(cache) == 2
    assert cache.answer(_scope("/api/products/b")) is None
    assert cache.answer(_scope("/api/products/a")) is not None


def test_the_cache_is_bounded_in_bytes():
    cache = ResponseCache(max_entries=100, max_bytes=10, max_age=5, clock=FakeClock())
    for name, body in (("a", b"123456"), ("b", b"1234"), ("c", b"12"), ("d", b"x" * 11)):
        scope = _scope(f"/api/products/{name}")
        cache.end(scope, _answer(body), cache.begin(scope))
    assert cache.bytes <= 10
    assert cache.answer(_scope("/api/products/a")) is None  # out for c
    assert cache.answer(_scope("/api/products/d")) is None  # larger than the whole cache
    assert [cache.answer(_scope(f"/api/products/{n}")) is not None for n in "bc"] == [True] * 2


def test_a_read_answered_while_a_write_was_under_way_is_not_stored():
    cache = ResponseCache(max_entries=10, max_bytes=1000, max_age=5, clock=FakeClock())
    read = _scope("/api/products/a")
    generation = cache.begin(read)
    write = _scope("/api/products/a", method="PUT")
    cache.begin(write)  # the write is sent while the read is with the service
    cache.end(read, _answer(b"old"), generation)
    assert cache.answer(read) is None
    # A write that failed (503/504) still drops what was stored: it may have been applied.
    cache.end(read, _answer(b"new"), cache.begin(read))
    assert cache.answer(read) is not None
    cache.end(write, None, cache.begin(write))
    assert cache.answer(read) is None
