"""The order service's figures on /metrics: orders created and cancelled (by who), counted
once committed; the outbox backlog read at scrape time."""

import asyncio

import httpx

from order_service.orders import expire_unpaid_orders
from order_service.state import OrderState
from shared.metrics import Samples, moved, read_samples, sample
from shared.state import state_of


async def scrape(client: httpx.AsyncClient) -> Samples:
    return read_samples((await client.get("/metrics")).text)


async def test_orders_created_and_cancelled_by_customer_admin_and_expiry(
    app, client, place, placed, neighbours, customer, admin, age
):
    before = await scrape(client)
    for reason in ("customer", "admin", "expiry"):
        assert ("orders_cancelled_total", frozenset({("reason", reason)})) in before

    by_customer, by_admin, expired, kept = [await placed() for _ in range(4)]
    short = neighbours.add_product(stock=1)
    refused = await place([(short, 2)])
    assert refused.status_code == 400  # out of stock: no order, nothing counted

    # Two cancels at once are one cancellation.
    cancels = await asyncio.gather(
        *(
            client.put(f"/api/orders/{by_customer['id']}/cancel", headers=customer.headers)
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in cancels) == [200, 400]
    cancelled = await client.put(
        f"/api/admin/orders/{by_admin['id']}/status",
        json={"status": "cancelled"},
        headers=admin.headers,
    )
    assert cancelled.status_code == 200
    not_allowed = await client.put(
        f"/api/admin/orders/{kept['id']}/status", json={"status": "shipped"}, headers=admin.headers
    )
    assert not_allowed.status_code == 409
    await age(expired["id"], 3600)
    assert await expire_unpaid_orders(state_of(app, OrderState)) == 1

    after = await scrape(client)
    assert moved(before, after, "orders_created_total") == 4
    assert moved(before, after, "orders_cancelled_total", reason="customer") == 1
    assert moved(before, after, "orders_cancelled_total", reason="admin") == 1
    assert moved(before, after, "orders_cancelled_total", reason="expiry") == 1


async def test_a_cancellation_that_fails_to_commit_is_not_counted(
    app, client, placed, customer, db
):
    order = await placed()
    before = await scrape(client)
    # The status history refuses the row the cancellation writes: the transaction fails.
    await db(
        "ALTER TABLE order_status_history ADD CONSTRAINT no_cancel CHECK (to_status <> 'cancelled')"
        " NOT VALID"
    )
    try:
        response = await client.put(f"/api/orders/{order['id']}/cancel", headers=customer.headers)
    finally:
        await db("ALTER TABLE order_status_history DROP CONSTRAINT no_cancel")
    assert response.status_code == 400  # an integrity error, rolled back
    assert await db("SELECT status FROM orders") == [("pending",)]
    after = await scrape(client)
    assert moved(before, after, "orders_cancelled_total", reason="customer") == 0


async def test_the_outbox_backlog_and_the_age_of_its_oldest_message(
    client, placed, neighbours, customer, db
):
    assert sample(await scrape(client), "outbox_backlog") == 0
    assert sample(await scrape(client), "outbox_oldest_age_seconds") == 0
    order = await placed()
    neighbours.routes["release"].side_effect = httpx.ConnectError("product service down")
    response = await client.put(f"/api/orders/{order['id']}/cancel", headers=customer.headers)
    assert response.status_code == 200
    await db("UPDATE outbox_messages SET created_at = now() - interval '90 seconds'")

    figures = await scrape(client)
    assert sample(figures, "outbox_backlog") == 1
    assert 90 <= sample(figures, "outbox_oldest_age_seconds") < 120
