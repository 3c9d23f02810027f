"""The background jobs, run directly (WORKERS_ENABLED=false in tests)."""

import asyncio
import json
import uuid

import httpx

from order_service.orders import expire_unpaid_orders
from order_service.outbox import deliver_outbox
from order_service.placement import sweep_abandoned_placements
from order_service.state import OrderState
from shared.state import state_of


async def test_an_unpaid_order_expires_and_its_stock_comes_back_once(
    app, place, neighbours, age, db
):
    product = neighbours.add_product(stock=10)
    order = (await place([(product, 3)])).json()["order"]
    await age(order["id"], 1801)

    results = await asyncio.gather(
        expire_unpaid_orders(state_of(app, OrderState)),
        expire_unpaid_orders(state_of(app, OrderState)),
    )
    assert sorted(results) == [0, 1]
    assert await expire_unpaid_orders(state_of(app, OrderState)) == 0
    await db("UPDATE outbox_messages SET available_at = now()")
    await deliver_outbox(state_of(app, OrderState))

    assert neighbours.release_calls(order["id"]) == 1
    assert neighbours.stock(product) == 10
    [(status, reason, actor)] = await db(
        "SELECT o.status, h.reason, h.actor FROM orders o JOIN order_status_history h"
        " ON h.order_id = o.id AND h.to_status = 'cancelled'"
    )
    assert (status, actor) == ("cancelled", "expiry")
    assert "1800 seconds" in reason


async def test_young_paid_and_cash_on_delivery_orders_do_not_expire(
    app, place, neighbours, age, set_status, db
):
    product = neighbours.add_product(stock=10)
    young = (await place([(product, 1)])).json()["order"]
    await age(young["id"], 1700)
    paid = (await place([(product, 1)])).json()["order"]
    await set_status(paid["id"], "paid", "paid")
    await age(paid["id"], 7200)
    cash = (await place([(product, 1)], paymentMethod="cash_on_delivery")).json()["order"]
    await age(cash["id"], 7200)

    assert await expire_unpaid_orders(state_of(app, OrderState)) == 0
    assert sorted(row[0] for row in await db("SELECT status FROM orders")) == [
        "paid",
        "pending",
        "pending",
    ]
    assert neighbours.routes["release"].call_count == 0


async def test_the_timeout_is_a_setting(app_with, place, neighbours, age):
    product = neighbours.add_product()
    async with app_with(ORDER_PAYMENT_TIMEOUT="60") as (app, client):
        order = (await place([(product, 1)], via=client)).json()["order"]
        await age(order["id"], 59)
        assert await expire_unpaid_orders(state_of(app, OrderState)) == 0
        await age(order["id"], 61)
        assert await expire_unpaid_orders(state_of(app, OrderState)) == 1


async def test_the_sweeper_repairs_an_order_left_mid_placement(app, neighbours, db, rows):
    """The process died after reserving: a `reserving` row, and stock held for it."""
    product = neighbours.add_product(stock=10)
    order_id = uuid.uuid4()
    await db(
        "INSERT INTO orders (id, user_id, order_number, status, currency, shipping_address,"
        " created_at) VALUES (:id, :user, 'ORD-1-CRASHED00', 'reserving', 'KES', '{}',"
        " now() - interval '10 minutes')",
        id=order_id,
        user=uuid.uuid4(),
    )
    neighbours.reserve(
        _request(
            {"orderId": str(order_id), "items": [{"productId": str(product.id), "quantity": 4}]}
        )
    )
    assert neighbours.stock(product) == 6

    assert await sweep_abandoned_placements(state_of(app, OrderState)) == 1
    assert await rows("orders") == 0
    assert neighbours.release_calls(order_id) == 1
    assert neighbours.stock(product) == 10
    assert await sweep_abandoned_placements(state_of(app, OrderState)) == 0


async def test_the_sweeper_leaves_placements_in_progress_alone(app, neighbours, db, rows):
    await db(
        "INSERT INTO orders (id, user_id, order_number, status, currency, shipping_address)"
        " VALUES (:id, :user, 'ORD-1-INFLIGHT0', 'reserving', 'KES', '{}')",
        id=uuid.uuid4(),
        user=uuid.uuid4(),
    )
    assert await sweep_abandoned_placements(state_of(app, OrderState)) == 0
    assert await rows("orders") == 1
    assert neighbours.routes["release"].call_count == 0


async def test_a_placement_that_outlived_the_sweeper_gives_its_stock_back(
    place, neighbours, db, rows
):
    """The sweeper removed the row while the reservation was still being answered."""
    product = neighbours.add_product(stock=10)

    async def reserve_while_the_sweeper_runs(request):
        answer = neighbours.reserve(request)
        order_id = json.loads(request.content)["orderId"]
        await db("DELETE FROM orders WHERE id = :id", id=uuid.UUID(order_id))
        return answer

    neighbours.routes["reserve"].side_effect = reserve_while_the_sweeper_runs
    response = await place([(product, 2)])
    assert response.status_code == 503
    assert await rows("orders") == 0
    assert neighbours.stock(product) == 10


def _request(body):
    return httpx.Request(
        "POST", "http://product.test/api/internal/reserve", content=json.dumps(body)
    )


async def test_the_workers_run_in_the_service(app_with, place, neighbours, age, db):
    """With WORKERS_ENABLED (the default outside tests) the service expires orders, sweeps
    placements and delivers its outbox by itself."""
    product = neighbours.add_product(stock=10)
    fast = {
        "WORKERS_ENABLED": "true",
        "ORDER_EXPIRY_INTERVAL": "0.05",
        "ORDER_SWEEP_INTERVAL": "0.05",
        "ORDER_OUTBOX_INTERVAL": "0.05",
    }
    async with app_with(**fast) as (_, client):
        order = (await place([(product, 2)], via=client)).json()["order"]
        neighbours.routes["release"].side_effect = httpx.ConnectError("product service down")
        await age(order["id"], 3600)
        for _ in range(200):
            if await db("SELECT status FROM orders") == [("cancelled",)]:
                break
            await asyncio.sleep(0.05)
        assert await db("SELECT status FROM orders") == [("cancelled",)]
        neighbours.routes["release"].side_effect = neighbours.release
        await db("UPDATE outbox_messages SET available_at = now()")
        for _ in range(200):
            if neighbours.stock(product) == 10:
                break
            await asyncio.sleep(0.05)
    assert neighbours.stock(product) == 10
