"""The transition table: every change it allows, and every one it refuses, through the
admin route as well as directly."""

import itertools

import pytest

from order_service.lifecycle import Actor, Status, TransitionRefused, check_transition

# The lifecycle, written out independently of the module it checks.
ALLOWED = {
    ("pending", "paid"): {"payment", "admin"},
    ("paid", "processing"): {"admin"},
    ("processing", "shipped"): {"admin"},
    ("shipped", "delivered"): {"admin"},
    ("pending", "cancelled"): {"customer", "admin", "expiry"},
    ("pending", "failed"): {"admin", "payment"},
    ("paid", "cancelled"): {"admin"},
    ("processing", "cancelled"): {"admin"},
}
STATUSES = [status.value for status in Status]
PAIRS = list(itertools.product(STATUSES, STATUSES))


def test_the_table_allows_exactly_the_lifecycle():
    for (current, target), actor in itertools.product(PAIRS, Actor):
        if actor.value in ALLOWED.get((current, target), set()):
            check_transition(current, target, actor)
            continue
        with pytest.raises(TransitionRefused) as refused:
            check_transition(current, target, actor)
        assert refused.value.status_code == 409
        assert refused.value.message == f"Cannot change order from {current} to {target}"


def test_confirmed_is_not_a_state():
    assert "confirmed" not in STATUSES


@pytest.mark.parametrize("current", STATUSES)
async def test_admin_status_changes_follow_the_table(client, placed, admin, set_status, current):
    payment = "paid" if current in {"paid", "processing", "shipped", "delivered"} else None
    for target in STATUSES:
        order = await placed()
        await set_status(order["id"], current, payment)
        response = await client.put(
            f"/api/admin/orders/{order['id']}/status",
            json={"status": target},
            headers=admin.headers,
        )
        if "admin" in ALLOWED.get((current, target), set()):
            assert response.status_code == 200, (target, response.text)
            body = response.json()
            assert body["message"] == "Order status updated"
            assert body["order"]["status"] == target
            last = body["order"]["history"][-1]
            assert (last["from"], last["to"], last["actor"]) == (current, target, "admin")
        else:
            assert response.status_code == 409, (target, response.text)
            assert response.json() == {"error": f"Cannot change order from {current} to {target}"}


async def test_the_way_to_delivery_records_its_moments(client, placed, admin, neighbours):
    order = await placed()
    for status in ["paid", "processing", "shipped", "delivered"]:
        response = await client.put(
            f"/api/admin/orders/{order['id']}/status",
            json={"status": status},
            headers=admin.headers,
        )
        assert response.status_code == 200
    final = response.json()["order"]
    assert final["paymentStatus"] == "paid"
    assert final["paidAt"] and final["shippedAt"] and final["deliveredAt"]
    assert final["paidAt"] <= final["shippedAt"] <= final["deliveredAt"]
    assert [(h["from"], h["to"]) for h in final["history"]] == [
        (None, "pending"),
        ("pending", "paid"),
        ("paid", "processing"),
        ("processing", "shipped"),
        ("shipped", "delivered"),
    ]
    assert neighbours.routes["release"].call_count == 0


@pytest.mark.parametrize("current", ["paid", "processing"])
async def test_an_admin_cancelling_a_paid_order_owes_a_refund_and_gets_the_stock_back(
    client, place, neighbours, admin, set_status, current
):
    product = neighbours.add_product(stock=5)
    order = (await place([(product, 2)])).json()["order"]
    await set_status(order["id"], current, "paid")
    response = await client.put(
        f"/api/admin/orders/{order['id']}/status",
        json={"status": "cancelled"},
        headers=admin.headers,
    )
    assert response.status_code == 200
    assert response.json()["order"]["status"] == "cancelled"
    assert response.json()["order"]["paymentStatus"] == "refund_pending"
    assert neighbours.stock(product) == 5
    assert neighbours.release_calls(order["id"]) == 1


async def test_an_admin_failing_an_order_gives_its_stock_back(client, place, neighbours, admin):
    product = neighbours.add_product(stock=5)
    order = (await place([(product, 2)])).json()["order"]
    response = await client.put(
        f"/api/admin/orders/{order['id']}/status", json={"status": "failed"}, headers=admin.headers
    )
    assert response.json()["order"]["status"] == "failed"
    assert neighbours.stock(product) == 5


@pytest.mark.parametrize("status", ["confirmed", "reserving", "", None, "PAID"])
async def test_unknown_statuses_are_a_400(client, placed, admin, status):
    order = await placed()
    response = await client.put(
        f"/api/admin/orders/{order['id']}/status", json={"status": status}, headers=admin.headers
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"


async def test_admin_status_of_an_unknown_order_is_a_404(client, admin):
    import uuid

    response = await client.put(
        f"/api/admin/orders/{uuid.uuid4()}/status", json={"status": "paid"}, headers=admin.headers
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Order not found"}
