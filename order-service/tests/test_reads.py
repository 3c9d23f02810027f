"""GET /api/orders, GET /api/orders/:id and the admin list."""

import uuid

import pytest


async def test_my_orders_newest_first_in_the_originals_envelope(client, placed, customer, db):
    ids = [(await placed())["id"] for _ in range(3)]
    for age, order_id in enumerate(reversed(ids)):
        await db(
            "UPDATE orders SET created_at = now() - make_interval(mins => :age) WHERE id = :id",
            age=age,
            id=uuid.UUID(order_id),
        )
    response = await client.get("/api/orders", headers=customer.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"orders", "totalPages", "currentPage", "totalOrders"}
    assert [o["id"] for o in body["orders"]] == list(reversed(ids))
    assert body["totalOrders"] == 3 and body["totalPages"] == 1 and body["currentPage"] == 1
    assert body["orders"][0]["items"][0]["quantity"] == 1


async def test_pages(client, placed, customer):
    for _ in range(3):
        await placed()
    response = await client.get("/api/orders?page=2&limit=2", headers=customer.headers)
    body = response.json()
    assert len(body["orders"]) == 1
    assert body["totalPages"] == 2 and body["currentPage"] == 2 and body["totalOrders"] == 3


@pytest.mark.parametrize("query", ["page=0", "limit=101", "limit=0", "status=confirmed", "page=x"])
async def test_bad_list_parameters_are_a_400(client, customer, query):
    response = await client.get(f"/api/orders?{query}", headers=customer.headers)
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"


async def test_status_filter(client, placed, customer, set_status):
    pending = await placed()
    paid = await placed()
    await set_status(paid["id"], "paid", "paid")
    response = await client.get("/api/orders?status=paid", headers=customer.headers)
    assert [o["id"] for o in response.json()["orders"]] == [paid["id"]]
    response = await client.get("/api/orders?status=pending", headers=customer.headers)
    assert [o["id"] for o in response.json()["orders"]] == [pending["id"]]


async def test_only_my_orders_are_listed(client, placed, customer, other_customer):
    await placed(other_customer)
    mine = await placed(customer)
    response = await client.get("/api/orders", headers=customer.headers)
    assert [o["id"] for o in response.json()["orders"]] == [mine["id"]]


async def test_one_order_with_items_and_history(client, placed, customer):
    order = await placed()
    response = await client.get(f"/api/orders/{order['id']}", headers=customer.headers)
    assert response.status_code == 200
    got = response.json()["order"]
    assert got["id"] == order["id"] and got["items"] == order["items"]
    [placed_entry] = got["history"]
    assert placed_entry["from"] is None and placed_entry["to"] == "pending"
    assert placed_entry["reason"] == "Order placed" and placed_entry["at"].endswith("Z")


async def test_another_users_order_is_not_found_to_read_or_cancel(
    client, placed, customer, other_customer, neighbours, db
):
    theirs = await placed(other_customer)
    for method, path in [
        ("GET", f"/api/orders/{theirs['id']}"),
        ("PUT", f"/api/orders/{theirs['id']}/cancel"),
    ]:
        response = await client.request(method, path, headers=customer.headers)
        assert response.status_code == 404
        assert response.json() == {"error": "Order not found"}
    assert neighbours.routes["release"].call_count == 0
    assert await db("SELECT status FROM orders") == [("pending",)]


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid", "1 OR 1=1"])
async def test_unknown_orders_are_not_found(client, customer, order_id):
    response = await client.get(f"/api/orders/{order_id}", headers=customer.headers)
    assert response.status_code == 404
    assert response.json() == {"error": "Order not found"}


async def test_an_order_still_being_placed_is_invisible(client, placed, customer, db, set_status):
    order = await placed()
    await set_status(order["id"], "reserving")
    assert (
        await client.get(f"/api/orders/{order['id']}", headers=customer.headers)
    ).status_code == 404
    assert (await client.get("/api/orders", headers=customer.headers)).json()["totalOrders"] == 0


async def test_admins_list_every_order_with_filters(
    client, placed, admin, customer, other_customer, set_status
):
    a = await placed(customer)
    b = await placed(other_customer)
    await set_status(b["id"], "paid", "paid")
    everything = (await client.get("/api/admin/orders", headers=admin.headers)).json()
    assert everything["totalOrders"] == 2
    by_user = await client.get(f"/api/admin/orders?userId={customer.id}", headers=admin.headers)
    assert [o["id"] for o in by_user.json()["orders"]] == [a["id"]]
    by_status = await client.get("/api/admin/orders?status=paid", headers=admin.headers)
    assert [o["id"] for o in by_status.json()["orders"]] == [b["id"]]
    one = await client.get(f"/api/admin/orders/{a['id']}", headers=admin.headers)
    assert one.json()["order"]["userId"] == str(customer.id)


async def test_customers_cannot_use_admin_routes(client, placed, customer):
    order = await placed()
    for method, path, body in [
        ("GET", "/api/admin/orders", None),
        ("GET", f"/api/admin/orders/{order['id']}", None),
        ("PUT", f"/api/admin/orders/{order['id']}/status", {"status": "paid"}),
    ]:
        response = await client.request(method, path, json=body, headers=customer.headers)
        assert response.status_code == 403
        assert response.json() == {"error": "Access denied. Admin only."}
