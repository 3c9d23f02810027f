"""The internal routes of docs/internal-api.md, for the payment service."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from order_service.state import OrderState
from shared.state import state_of


@pytest.fixture
def internal(client, keys):
    headers = keys.internal_headers("payment", "order")

    async def call(method: str, path: str, **kwargs):
        return await client.request(method, f"/api/internal{path}", headers=headers, **kwargs)

    return call


def event(order_id, **fields):
    return {"orderId": order_id, "eventId": f"evt-{uuid.uuid4()}", **fields}


@pytest.fixture
def notify(internal):
    """The payment service's news about an order, as a new event."""

    async def notify_(order_id, **fields):
        return await internal("POST", "/update-status", json=event(order_id, **fields))

    return notify_


async def test_a_settled_payment_makes_the_order_paid(placed, notify):
    order = await placed()
    response = await notify(order["id"], status="paid", paymentStatus="paid", paymentId="pay-1")
    assert response.status_code == 200
    body = response.json()
    assert body["applied"] is True
    assert body["order"]["status"] == "paid"
    assert body["order"]["paymentStatus"] == "paid"
    assert body["order"]["paymentIds"] == ["pay-1"]
    assert body["order"]["paidAt"] is not None
    last = body["order"]["history"][-1]
    assert (last["from"], last["to"], last["actor"]) == ("pending", "paid", "payment")


async def test_the_same_event_twice_changes_nothing_the_second_time(internal, placed, db):
    order = await placed()
    news = event(order["id"], paymentStatus="paid", paymentId="pay-1")
    first = await internal("POST", "/update-status", json=news)
    history_rows = await db("SELECT count(*) FROM order_status_history")
    updated_at = await db("SELECT updated_at FROM orders")
    again = await internal("POST", "/update-status", json=news)
    assert again.status_code == 200
    assert again.json()["applied"] is False
    assert again.json()["order"] == first.json()["order"]
    assert await db("SELECT count(*) FROM order_status_history") == history_rows
    assert await db("SELECT updated_at FROM orders") == updated_at


async def test_a_replayed_cancel_event_releases_once(internal, place, neighbours):
    product = neighbours.add_product(stock=5)
    order = (await place([(product, 1)])).json()["order"]
    news = event(order["id"], status="failed")
    for _ in range(3):
        assert (await internal("POST", "/update-status", json=news)).status_code == 200
    assert neighbours.release_calls(order["id"]) == 1
    assert neighbours.stock(product) == 5


async def test_a_failed_payment_leaves_the_order_payable(placed, notify):
    order = await placed()
    failed = await notify(order["id"], status="failed", paymentStatus="failed", paymentId="pay-1")
    assert failed.json()["order"]["status"] == "pending"
    assert failed.json()["order"]["paymentStatus"] == "failed"
    assert failed.json()["order"]["history"][-1]["reason"].startswith("Payment failed")

    paid = await notify(order["id"], paymentStatus="paid", paymentId="pay-2")
    assert paid.json()["order"]["status"] == "paid"
    assert paid.json()["order"]["paymentStatus"] == "paid"
    assert paid.json()["order"]["paymentIds"] == ["pay-1", "pay-2"]


async def test_a_failure_notice_does_not_undo_a_settled_payment(placed, notify):
    order = await placed()
    await notify(order["id"], paymentStatus="paid")
    late = await notify(order["id"], paymentStatus="failed")
    assert late.status_code == 200
    assert late.json()["order"]["status"] == "paid"
    assert late.json()["order"]["paymentStatus"] == "paid"


@pytest.mark.parametrize("closed", ["cancelled", "failed"])
async def test_a_payment_settling_on_a_closed_order_does_not_revive_it(
    placed, set_status, closed, notify
):
    order = await placed()
    await set_status(order["id"], closed)
    response = await notify(order["id"], status="paid", paymentStatus="paid", paymentId="pay-late")
    assert response.status_code == 200
    got = response.json()["order"]
    assert got["status"] == closed
    assert got["paymentStatus"] == "refund_pending"
    assert got["paymentIds"] == ["pay-late"]
    assert "refund pending" in got["history"][-1]["reason"]


async def test_an_expired_order_paid_late_stays_cancelled(app, placed, age, notify):
    from order_service.orders import expire_unpaid_orders

    order = await placed()
    await age(order["id"], 3600)
    await expire_unpaid_orders(state_of(app, OrderState))
    response = await notify(order["id"], paymentStatus="paid")
    assert response.json()["order"]["status"] == "cancelled"
    assert response.json()["order"]["paymentStatus"] == "refund_pending"


async def test_a_refund_is_recorded(placed, set_status, notify):
    order = await placed()
    await set_status(order["id"], "cancelled", "refund_pending")
    response = await notify(order["id"], paymentStatus="refunded")
    assert response.json()["order"]["paymentStatus"] == "refunded"
    assert response.json()["order"]["status"] == "cancelled"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": "shipped"}, "Cannot change order from pending to shipped"),
        ({"status": "processing"}, "Cannot change order from pending to processing"),
        ({"paymentStatus": "refunded"}, "Cannot change payment status from pending to refunded"),
    ],
)
async def test_changes_outside_the_table_are_a_409_and_not_remembered(
    internal, placed, fields, message
):
    order = await placed()
    news = event(order["id"], **fields)
    response = await internal("POST", "/update-status", json=news)
    assert response.status_code == 409
    assert response.json() == {"error": message}
    # Refused, so not recorded as processed: the same event is refused again.
    assert (await internal("POST", "/update-status", json=news)).status_code == 409


async def test_update_status_of_an_unknown_order_is_a_404(internal):
    response = await internal(
        "POST", "/update-status", json=event(str(uuid.uuid4()), status="paid")
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Order not found"}


async def test_an_event_id_is_required(internal, placed):
    order = await placed()
    response = await internal(
        "POST", "/update-status", json={"orderId": order["id"], "status": "paid"}
    )
    assert response.status_code == 400
    assert response.json()["details"] == [{"field": "eventId", "message": "Field required"}]


async def test_internal_routes_refuse_a_users_token_and_forged_ones(
    client, placed, customer, admin, keys
):
    order = await placed()
    forged = keys.forged_internal_tokens("payment", "order")
    for headers in (
        customer.headers,
        admin.headers,
        {},
        *({"X-Internal-Token": token} for token in forged.values()),
    ):
        for method, path, body in [
            ("GET", f"/api/internal/orders/{order['id']}", None),
            ("GET", "/api/internal/orders", None),
            ("POST", "/api/internal/update-status", event(order["id"], status="paid")),
        ]:
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path)


async def test_the_payment_service_reads_an_order(internal, placed, customer):
    order = await placed()
    response = await internal("GET", f"/orders/{order['id']}")
    assert response.status_code == 200
    got = response.json()["order"]
    assert got["userId"] == str(customer.id)
    assert got["status"] == "pending" and got["paymentStatus"] == "pending"
    assert got["totalAmount"] == order["totalAmount"] and got["currency"] == "KES"
    assert got["items"] == order["items"]
    missing = await internal("GET", f"/orders/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json() == {"error": "Order not found"}


async def test_orders_for_reconciliation_by_creation_time(internal, placed, db):
    old = await placed()
    new = await placed()
    await db(
        "UPDATE orders SET created_at = now() - interval '2 days' WHERE id = :id",
        id=uuid.UUID(old["id"]),
    )
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    response = await internal("GET", "/orders", params={"from": since})
    body = response.json()
    assert [o["id"] for o in body["orders"]] == [new["id"]]
    assert body["totalOrders"] == 1 and body["currentPage"] == 1 and body["totalPages"] == 1
    assert set(body["orders"][0]) >= {
        "id",
        "userId",
        "status",
        "paymentStatus",
        "totalAmount",
        "currency",
        "paymentIds",
        "createdAt",
    }
    until = await internal("GET", "/orders", params={"to": since, "limit": 1, "page": 1})
    assert [o["id"] for o in until.json()["orders"]] == [old["id"]]
    naive = await internal("GET", "/orders", params={"from": "2026-01-01T00:00:00"})
    assert naive.status_code == 400
