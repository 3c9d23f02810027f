"""Idempotency-Key on POST /api/orders."""

import asyncio

from order_service.state import OrderState
from shared.state import state_of


async def test_the_same_key_returns_the_first_order_and_takes_no_stock_again(
    place, neighbours, rows
):
    product = neighbours.add_product(stock=10)
    first = await place([(product, 2)], headers={"Idempotency-Key": "order-abc-1"})
    again = await place([(product, 2)], headers={"Idempotency-Key": "order-abc-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert neighbours.routes["reserve"].call_count == 1
    assert neighbours.stock(product) == 8
    assert await rows("orders") == 1


async def test_the_same_key_with_another_body_is_a_422(place, neighbours, rows):
    product = neighbours.add_product(stock=10)
    await place([(product, 1)], headers={"Idempotency-Key": "k-1"})
    response = await place([(product, 2)], headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 422
    assert response.json() == {"error": "Idempotency key reused with a different request"}
    assert await rows("orders") == 1
    assert neighbours.stock(product) == 9


async def test_keys_are_per_user(place, neighbours, other_customer, rows):
    product = neighbours.add_product(stock=10)
    mine = await place([(product, 1)], headers={"Idempotency-Key": "same"})
    theirs = await place([(product, 1)], caller=other_customer, headers={"Idempotency-Key": "same"})
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["order"]["id"] != theirs.json()["order"]["id"]
    assert await rows("orders") == 2


async def test_two_concurrent_identical_requests_make_one_order(place, neighbours, rows):
    product = neighbours.add_product(stock=10)
    responses = await asyncio.gather(
        *(place([(product, 1)], headers={"Idempotency-Key": "double-click"}) for _ in range(5))
    )
    assert [r.status_code for r in responses] == [201] * 5
    assert len({r.json()["order"]["id"] for r in responses}) == 1
    assert neighbours.routes["reserve"].call_count == 1
    assert neighbours.stock(product) == 9
    assert await rows("orders") == 1


async def test_a_refused_request_frees_its_key(place, neighbours, rows):
    product = neighbours.add_product(stock=0)
    refused = await place([(product, 1)], headers={"Idempotency-Key": "retry-me"})
    assert refused.status_code == 400
    assert await rows("idempotency_keys") == 0
    neighbours.products[product.id].stock = 3
    retried = await place([(product, 1)], headers={"Idempotency-Key": "retry-me"})
    assert retried.status_code == 201


async def test_a_key_is_forgotten_after_24_hours(place, neighbours, db, rows):
    product = neighbours.add_product(stock=10)
    first = await place([(product, 1)], headers={"Idempotency-Key": "daily"})
    await db("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    second = await place([(product, 1)], headers={"Idempotency-Key": "daily"})
    assert second.status_code == 201
    assert second.json()["order"]["id"] != first.json()["order"]["id"]
    assert await rows("orders") == 2


async def test_the_sweeper_forgets_expired_keys_but_not_their_orders(
    app, place, neighbours, db, rows
):
    from order_service.placement import sweep_abandoned_placements

    product = neighbours.add_product(stock=10)
    await place([(product, 1)], headers={"Idempotency-Key": "old"})
    await place([(product, 1)], headers={"Idempotency-Key": "new"})
    await db(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'"
    )
    await sweep_abandoned_placements(state_of(app, OrderState))
    assert [row[0] for row in await db("SELECT key FROM idempotency_keys")] == ["new"]
    assert await rows("orders") == 2


async def test_an_invalid_key_is_a_400(place, neighbours):
    product = neighbours.add_product()
    response = await place([(product, 1)], headers={"Idempotency-Key": "x" * 256})
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "Idempotency-Key"
