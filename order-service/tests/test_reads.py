"""GET /api/orders, GET /api/orders/:id and the admin list."""

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

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


async def test_admins_filter_orders_by_payment_status_number_and_dates(
    client, placed, admin, set_status, db
):
    old = await placed()
    new = await placed()
    await set_status(new["id"], "paid", "paid")
    await db(
        "UPDATE orders SET created_at = '2026-01-10T12:00:00Z' WHERE id = :id",
        id=uuid.UUID(old["id"]),
    )

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/api/admin/orders?{query}", headers=admin.headers)
        assert response.status_code == 200, response.text
        return [order["id"] for order in response.json()["orders"]]

    assert await ids("paymentStatus=paid") == [new["id"]]
    assert await ids("paymentStatus=pending") == [old["id"]]
    # The whole number, in any case, with spaces around it.
    number = old["orderNumber"]
    assert await ids(f"orderNumber=%20{number.lower()}%20") == [old["id"]]
    assert await ids(f"orderNumber={number[:-1]}") == []
    assert await ids("from=2026-01-10T00:00:00%2B03:00&to=2026-01-11T00:00:00%2B03:00") == [
        old["id"]
    ]
    assert await ids("to=2026-01-10T12:00:00Z") == []  # `to` is excluded
    assert await ids("from=2026-01-10T12:00:00Z&paymentStatus=paid") == [new["id"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("paymentStatus=owed", "paymentStatus"),
        ("from=2026-01-10", "from"),  # no time zone: which midnight?
        ("to=2026-01-10T00:00:00", "to"),
        ("from=yesterday", "from"),
        ("orderNumber=ORD-1%27%20OR%201=1", "orderNumber"),
        (f"orderNumber={'A' * 41}", "orderNumber"),
    ],
)
async def test_admin_list_filters_are_validated(client, admin, query, field):
    response = await client.get(f"/api/admin/orders?{query}", headers=admin.headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "Validation error"
    assert field in [detail["field"] for detail in body["details"]]


async def test_admin_figures_per_status_and_per_day_in_the_shops_time_zone(
    client, placed, admin, db
):
    orders = [await placed() for _ in range(4)]
    ids = [uuid.UUID(order["id"]) for order in orders]
    nairobi = ZoneInfo("Africa/Nairobi")
    midnight = datetime.combine(datetime.now(nairobi).date(), time(), nairobi)
    scenes = [
        # Placed at 00:30 Nairobi time today (21:30 UTC the day before) and paid at once.
        (midnight + timedelta(minutes=30), midnight + timedelta(minutes=30), "paid", "paid"),
        # Placed two days ago, paid yesterday, shipped since.
        (midnight - timedelta(days=2), midnight - timedelta(hours=20), "shipped", "paid"),
        # Placed and paid today, then cancelled: no revenue.
        (
            midnight + timedelta(minutes=1),
            midnight + timedelta(minutes=1),
            "cancelled",
            "refund_pending",
        ),
        # Placed long ago and still pending: in the counts per status, not in the days.
        (midnight - timedelta(days=30), None, "pending", "pending"),
    ]
    for order_id, (created_at, paid_at, status, payment_status) in zip(ids, scenes, strict=True):
        await db(
            "UPDATE orders SET created_at = :created_at, paid_at = :paid_at, status = :status,"
            " payment_status = :payment_status WHERE id = :id",
            id=order_id,
            created_at=created_at,
            paid_at=paid_at,
            status=status,
            payment_status=payment_status,
        )

    response = await client.get(
        "/api/admin/stats?days=3&timezone=Africa/Nairobi", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["timezone"] == "Africa/Nairobi" and stats["currency"] == "KES"
    assert stats["byStatus"] == {
        "pending": 1,
        "paid": 1,
        "processing": 0,
        "shipped": 1,
        "delivered": 0,
        "cancelled": 1,
        "failed": 0,
    }
    price = orders[0]["totalAmount"]
    days = stats["days"]
    assert [day["orders"] for day in days] == [1, 0, 2]
    assert days[-1]["date"] == midnight.date().isoformat()
    assert [day["paidOrders"] for day in days] == [0, 1, 1]
    assert [day["revenue"] for day in days] == ["0.00", price, price]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("timezone=Mars/Olympus", "timezone"),
        ("timezone=../../etc/passwd", "timezone"),
        ("timezone=/etc/localtime", "timezone"),
        ("timezone=Asia", "timezone"),  # a directory of the database, not a zone
        ("timezone=leapseconds", "timezone"),  # a file of it that is no zone
        ("days=0", "days"),
        ("days=367", "days"),
    ],
)
async def test_admin_figures_validate_their_query(client, admin, query, field):
    response = await client.get(f"/api/admin/stats?{query}", headers=admin.headers)
    assert response.status_code == 400, response.text
    assert field in [detail["field"] for detail in response.json()["details"]]


async def test_customers_cannot_read_the_figures(client, customer):
    response = await client.get("/api/admin/stats", headers=customer.headers)
    assert response.status_code == 403


async def test_the_api_document_lists_every_time_zone_it_accepts(client, admin):
    document = (await client.get("/openapi.json")).json()
    [parameter] = [
        p
        for p in document["paths"]["/api/admin/stats"]["get"]["parameters"]
        if p["name"] == "timezone"
    ]
    zones = parameter["schema"]["enum"]
    assert "Africa/Nairobi" in zones and "UTC" in zones and len(zones) > 300
    for zone in zones[:: len(zones) // 20]:  # a spread of them, each accepted
        response = await client.get(
            f"/api/admin/stats?days=1&timezone={zone}", headers=admin.headers
        )
        assert response.status_code == 200, (zone, response.text)
