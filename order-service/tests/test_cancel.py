"""PUT /api/orders/:id/cancel: the owner's cancel, stock given back exactly once."""

import asyncio

import httpx
import pytest

from order_service.outbox import deliver_outbox
from order_service.state import OrderState
from shared.state import state_of


async def test_cancel_gives_the_stock_back(client, place, neighbours, customer, db):
    product = neighbours.add_product(stock=10)
    order = (await place([(product, 3)])).json()["order"]
    assert neighbours.stock(product) == 7

    response = await client.put(f"/api/orders/{order['id']}/cancel", headers=customer.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Order cancelled successfully"
    assert body["order"]["status"] == "cancelled"
    assert body["order"]["cancelledAt"] is not None
    assert [(h["from"], h["to"], h["actor"]) for h in body["order"]["history"]] == [
        (None, "pending", "customer"),
        ("pending", "cancelled", "customer"),
    ]
    assert neighbours.stock(product) == 10
    assert neighbours.calls("release") == [{"orderId": order["id"]}]
    assert await db("SELECT count(*) FROM outbox_messages WHERE delivered_at IS NULL") == [(0,)]


async def test_two_cancels_at_once_release_once(app, client, place, neighbours, customer):
    product = neighbours.add_product(stock=10)
    order = (await place([(product, 2)])).json()["order"]
    responses = await asyncio.gather(
        *(
            client.put(f"/api/orders/{order['id']}/cancel", headers=customer.headers)
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 400]
    await deliver_outbox(state_of(app, OrderState))
    assert neighbours.release_calls(order["id"]) == 1
    assert neighbours.stock(product) == 10


@pytest.mark.parametrize(
    "status", ["paid", "processing", "shipped", "delivered", "cancelled", "failed"]
)
async def test_only_a_pending_order_can_be_cancelled(client, placed, customer, set_status, status):
    order = await placed()
    await set_status(order["id"], status)
    response = await client.put(f"/api/orders/{order['id']}/cancel", headers=customer.headers)
    assert response.status_code == 400
    assert response.json() == {"error": "Order cannot be cancelled"}


async def test_a_cancel_while_the_product_service_is_down_is_kept_and_the_release_retried(
    app, client, place, neighbours, customer, db
):
    product = neighbours.add_product(stock=10)
    order = (await place([(product, 4)])).json()["order"]
    neighbours.routes["release"].side_effect = httpx.ConnectError("product service down")

    response = await client.put(f"/api/orders/{order['id']}/cancel", headers=customer.headers)
    assert response.status_code == 200
    assert await db("SELECT status FROM orders") == [("cancelled",)]
    assert neighbours.stock(product) == 6

    await db("UPDATE outbox_messages SET available_at = now()")
    await deliver_outbox(state_of(app, OrderState))  # still down: kept for later
    assert neighbours.stock(product) == 6
    neighbours.routes["release"].side_effect = neighbours.release
    await db("UPDATE outbox_messages SET available_at = now()")
    await deliver_outbox(state_of(app, OrderState))
    assert neighbours.stock(product) == 10
    await db("UPDATE outbox_messages SET available_at = now()")
    await deliver_outbox(state_of(app, OrderState))
    assert neighbours.calls("release")[-1] == {"orderId": order["id"]}
    assert await db("SELECT count(*) FROM outbox_messages WHERE delivered_at IS NULL") == [(0,)]
