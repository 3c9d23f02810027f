import asyncio
import time

from shared.testing import bearer, refused_port


async def test_a_service_that_is_down_is_503(make_client, make_user):
    _, token = make_user()
    with refused_port() as port:
        client = await make_client(CART_SERVICE_URL=f"http://127.0.0.1:{port}")
        response = await client.get("/api/cart", headers=bearer(token))
    assert response.status_code == 503
    assert response.json() == {"error": "Cart service unavailable"}


async def test_a_service_too_slow_is_504_in_time(make_client, make_user, fake_services):
    _, token = make_user()
    client = await make_client(UPSTREAM_TIMEOUT="0.5")
    started = time.monotonic()
    response = await client.get("/api/orders/slow", headers=bearer(token))
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json() == {"error": "Order service timed out"}
    assert elapsed < fake_services.slow_seconds  # it did not wait for the answer


async def test_the_auth_service_down_is_503_on_protected_routes_only(make_client, make_user):
    _, token = make_user()
    with refused_port() as port:
        client = await make_client(AUTH_SERVICE_URL=f"http://127.0.0.1:{port}")
        protected = await client.get("/api/cart", headers=bearer(token))
    assert protected.status_code == 503
    assert protected.json() == {"error": "Auth service unavailable"}
    public = await client.get("/api/products")
    assert public.status_code == 200


async def test_many_concurrent_requests_all_get_answers(make_client, make_user):
    """Each answer goes to its own request. (All 200 wait for a slot, however slow the
    machine: the bound's refusals are another test's.)"""
    _, token = make_user()
    gateway = await make_client(UPSTREAM_MAX_QUEUE="256", MAX_QUEUE_WAIT="60")
    responses = await asyncio.gather(
        *(gateway.get(f"/api/cart?n={i}", headers=bearer(token)) for i in range(200))
    )
    assert [r.status_code for r in responses] == [200] * 200
    assert sorted(int(r.json()["query"][2:]) for r in responses) == list(range(200))


async def test_beyond_a_services_bound_the_answer_is_503_at_once(
    make_client, make_user, fake_services
):
    """One request holds the order service's only slot; the next is refused at once (it
    does not wait for the slow one), and another service is still served."""
    _, token = make_user()
    fake_services.slow_seconds = 1.0
    client = await make_client(UPSTREAM_MAX_CONCURRENCY="1", UPSTREAM_MAX_QUEUE="0")
    requests = [
        asyncio.create_task(client.get(f"/api/orders/slow?n={n}", headers=bearer(token)))
        for n in range(2)
    ]
    done, pending = await asyncio.wait(requests, return_when=asyncio.FIRST_COMPLETED)
    refused = done.pop().result()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {"error": "Order service busy, please retry shortly"}
    other = await client.get("/api/products")
    assert other.status_code == 200
    served = await pending.pop()
    assert served.status_code == 200
    # The slot is free again.
    fake_services.slow_seconds = 0.0
    assert (await client.get("/api/orders/slow", headers=bearer(token))).status_code == 200
