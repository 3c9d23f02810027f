import re
import uuid
from decimal import Decimal

import httpx
import pytest

from shared.testing import bearer

from_address = {"street": "123 Main St", "city": "Nairobi", "country": "Kenya"}


async def test_the_originals_order_example(place, neighbours, customer, db):
    iphone = neighbours.add_product(stock=50, price="150000.00", name="iPhone 15 Pro")
    response = await place(
        None,
        items=[{"productId": str(iphone.id), "productName": "Cheap thing", "quantity": 1}],
        notes="Please call before delivery",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] == "Order created successfully"
    order = body["order"]
    assert order["userId"] == str(customer.id)
    assert order["status"] == "pending" and order["paymentStatus"] == "pending"
    assert order["totalAmount"] == "150000.00"
    assert order["currency"] == "KES"
    assert order["notes"] == "Please call before delivery"
    assert order["shippingAddress"] == {
        "street": "123 Main St",
        "city": "Nairobi",
        "country": "Kenya",
        "postalCode": "00100",
    }
    assert re.fullmatch(r"ORD-\d{13}-[0-9A-Z]{9}", order["orderNumber"])
    [item] = order["items"]
    # The catalogue's name and price, never the client's.
    assert item["productName"] == "iPhone 15 Pro"
    assert item["price"] == "150000.00" and item["subtotal"] == "150000.00"
    assert item["quantity"] == 1 and item["orderId"] == order["id"]
    assert order["history"][0]["from"] is None and order["history"][0]["to"] == "pending"
    assert order["createdAt"].endswith("Z")
    assert neighbours.stock(iphone) == 49
    assert neighbours.calls("reserve") == [
        {"orderId": order["id"], "items": [{"productId": str(iphone.id), "quantity": 1}]}
    ]
    stored = await db("SELECT status, total_amount FROM orders")
    assert stored == [("pending", Decimal("150000.00"))]


async def test_totals_are_exact_decimals(place, neighbours):
    a = neighbours.add_product(price="19.99")
    b = neighbours.add_product(price="0.10")
    response = await place([(a, 3), (b, 7)])
    order = response.json()["order"]
    assert [item["subtotal"] for item in order["items"]] == ["59.97", "0.70"]
    assert order["totalAmount"] == "60.67"


async def test_duplicate_lines_are_merged(place, neighbours):
    product = neighbours.add_product(stock=10)
    response = await place([(product, 2), (product, 3)])
    assert response.status_code == 201
    [item] = response.json()["order"]["items"]
    assert item["quantity"] == 5
    assert neighbours.calls("reserve")[0]["items"] == [
        {"productId": str(product.id), "quantity": 5}
    ]
    assert neighbours.stock(product) == 5


async def test_the_currency_is_the_stores(app_with, place, neighbours):
    product = neighbours.add_product()
    async with app_with(STORE_CURRENCY="USD") as (_, client):
        response = await place([(product, 1)], via=client)
    assert response.json()["order"]["currency"] == "USD"


async def test_payment_method_is_kept(place, neighbours):
    product = neighbours.add_product()
    response = await place([(product, 1)], paymentMethod="mpesa")
    assert response.json()["order"]["paymentMethod"] == "mpesa"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [{"productId": "not-a-uuid", "quantity": 1}]}, "items.0.productId"),
        ({"items": [{"productId": str(uuid.uuid4()), "quantity": 0}]}, "items.0.quantity"),
        ({"items": [{"productId": str(uuid.uuid4()), "quantity": 1001}]}, "items.0.quantity"),
        ({"items": [{"productId": str(uuid.uuid4()), "quantity": 1.5}]}, "items.0.quantity"),
        ({"items": [{"productId": str(uuid.uuid4()), "quantity": "2"}]}, "items.0.quantity"),
        ({"items": [{"productId": str(uuid.uuid4())}]}, "items.0.quantity"),
        (
            {"items": [{"productId": str(uuid.uuid4()), "quantity": 1} for _ in range(101)]},
            "items",
        ),
        ({"shippingAddress": None}, "shippingAddress"),
        ({"shippingAddress": {"city": "Nairobi", "country": "Kenya"}}, "shippingAddress.street"),
        (
            {"shippingAddress": {"street": " ", "city": "Nairobi", "country": "Kenya"}},
            "shippingAddress.street",
        ),
        ({"shippingAddress": {"street": "1 A St", "country": "Kenya"}}, "shippingAddress.city"),
        ({"shippingAddress": {"street": "1 A St", "city": "X"}}, "shippingAddress.country"),
        ({"notes": "x" * 501}, "notes"),
        ({"paymentMethod": "paypal"}, "paymentMethod"),
    ],
)
async def test_invalid_orders_are_a_400_and_touch_nothing(
    client, customer, neighbours, rows, change, field
):
    body = {
        "items": [{"productId": str(uuid.uuid4()), "quantity": 1}],
        "shippingAddress": from_address,
        **change,
    }
    response = await client.post("/api/orders", json=body, headers=customer.headers)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["error"] == "Validation error"
    assert field in [detail["field"] for detail in payload["details"]]
    assert neighbours.routes["reserve"].call_count == 0
    assert await rows("orders") == 0


async def test_merged_duplicates_over_1000_are_refused(client, customer, neighbours):
    product_id = str(uuid.uuid4())
    body = {
        "items": [
            {"productId": product_id, "quantity": 600},
            {"productId": product_id, "quantity": 401},
        ],
        "shippingAddress": from_address,
    }
    response = await client.post("/api/orders", json=body, headers=customer.headers)
    assert response.status_code == 400
    assert "more than 1000" in response.json()["details"][0]["message"]


async def test_notes_of_500_characters_are_accepted(place, neighbours):
    product = neighbours.add_product()
    assert (await place([(product, 1)], notes="x" * 500)).status_code == 201


async def test_without_a_token_is_a_401(client):
    response = await client.post("/api/orders", json={"shippingAddress": from_address})
    assert response.status_code == 401
    assert response.json() == {"error": "No token provided"}


async def test_out_of_stock_is_the_originals_400_and_leaves_nothing(place, neighbours, rows):
    product = neighbours.add_product(stock=2)
    response = await place([(product, 3)])
    assert response.status_code == 400
    assert response.json() == {
        "error": "Some items are out of stock",
        "details": [{"productId": str(product.id), "requested": 3, "available": 2}],
    }
    assert neighbours.stock(product) == 2
    assert await rows("orders") == 0
    assert await rows("outbox_messages") == 0


async def test_an_order_whose_second_line_is_short_takes_nothing_of_the_first(
    place, neighbours, rows
):
    plenty = neighbours.add_product(stock=10)
    scarce = neighbours.add_product(stock=1)
    response = await place([(plenty, 2), (scarce, 5)])
    assert response.status_code == 400
    assert [d["productId"] for d in response.json()["details"]] == [str(scarce.id)]
    assert neighbours.stock(plenty) == 10 and neighbours.stock(scarce) == 1
    assert await rows("orders") == 0


async def test_an_unknown_product_is_out_of_stock(place, neighbours):
    ghost = neighbours.add_product()
    del neighbours.products[ghost.id]
    response = await place([(ghost, 1)])
    assert response.status_code == 400
    assert response.json()["details"][0]["available"] == 0


async def test_product_service_down_is_a_503_and_nothing_is_written(place, neighbours, rows):
    product = neighbours.add_product(stock=5)
    neighbours.routes["reserve"].side_effect = httpx.ConnectError("connection refused")
    response = await place([(product, 1)])
    assert response.status_code == 503
    assert response.json() == {"error": "Product service unavailable"}
    assert neighbours.stock(product) == 5
    for table in ("orders", "order_items", "order_status_history", "outbox_messages"):
        assert await rows(table) == 0, table


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("too slow"), httpx.Response(500, json={"error": "Internal server error"})],
    ids=["timeout", "500"],
)
async def test_an_unknown_reservation_outcome_is_released(place, neighbours, rows, failure):
    """The product service may have taken the stock before failing to answer: no order is
    left, and the order id's reservation is released (the product service refuses a
    reservation that arrives after its release)."""
    product = neighbours.add_product(stock=5)
    answer = neighbours.reserve

    def take_then_fail(request):
        answer(request)
        if isinstance(failure, Exception):
            raise failure
        return failure

    neighbours.routes["reserve"].side_effect = take_then_fail
    response = await place([(product, 1)])
    assert response.status_code == 503
    assert response.json() == {"error": "Product service unavailable"}
    assert await rows("orders") == 0
    [reserved] = neighbours.calls("reserve")
    assert neighbours.calls("release") == [{"orderId": reserved["orderId"]}]
    assert neighbours.stock(product) == 5
    assert await rows("outbox_messages WHERE delivered_at IS NULL") == 0


async def test_a_reservation_refused_for_another_reason_is_a_503(place, neighbours, rows):
    product = neighbours.add_product(stock=5)
    neighbours.routes["reserve"].side_effect = lambda request: httpx.Response(
        409, json={"error": "Reservation already released"}
    )
    response = await place([(product, 1)])
    assert response.status_code == 503
    assert response.json() == {"error": "Product service unavailable"}
    assert await rows("orders") == 0
    assert neighbours.routes["release"].call_count == 0


async def test_a_database_failure_after_the_reservation_releases_it(place, neighbours, db, rows):
    product = neighbours.add_product(stock=5)
    await db(
        "CREATE FUNCTION refuse_items() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
    )
    await db(
        "CREATE TRIGGER refuse_items BEFORE INSERT ON order_items"
        " FOR EACH ROW EXECUTE FUNCTION refuse_items()"
    )
    try:
        response = await place([(product, 2)])
    finally:
        await db("DROP TRIGGER refuse_items ON order_items")
        await db("DROP FUNCTION refuse_items")
    assert response.status_code == 500
    assert response.json()["error"] == "Internal server error"
    assert "disk full" not in response.text
    [reserved] = neighbours.calls("reserve")
    assert neighbours.calls("release") == [{"orderId": reserved["orderId"]}]
    assert neighbours.stock(product) == 5
    assert await rows("orders") == 0


async def test_a_total_beyond_the_money_column_is_refused_and_released(place, neighbours, rows):
    product = neighbours.add_product(stock=1000, price="99999999.99")
    response = await place([(product, 1000)])
    assert response.status_code == 400
    assert response.json() == {"error": "Order total is too large"}
    assert neighbours.stock(product) == 1000
    assert await rows("orders") == 0


async def test_a_reservation_that_does_not_match_the_request_is_released(place, neighbours, rows):
    product = neighbours.add_product(stock=5)
    neighbours.routes["reserve"].side_effect = lambda request: httpx.Response(
        200, json={"orderId": "x", "items": []}
    )
    response = await place([(product, 1)])
    assert response.status_code == 503
    assert await rows("orders") == 0
    assert await rows("outbox_messages") == 1


async def test_order_numbers_are_unique_under_concurrency(place, neighbours, users):
    import asyncio

    product = neighbours.add_product(stock=100)
    # More than a batch of sequence values (order_numbers.BATCH): refilled under load.
    callers = [users.make() for _ in range(60)]
    responses = await asyncio.gather(*(place([(product, 1)], caller=c) for c in callers))
    assert {response.status_code for response in responses} == {201}
    numbers = {response.json()["order"]["orderNumber"] for response in responses}
    assert len(numbers) == 60


async def test_an_admin_token_is_not_needed_but_works(client, admin, neighbours):
    product = neighbours.add_product()
    response = await client.post(
        "/api/orders",
        json={
            "items": [{"productId": str(product.id), "quantity": 1}],
            "shippingAddress": from_address,
        },
        headers=admin.headers,
    )
    assert response.status_code == 201


async def test_a_bad_token_is_a_401(client):
    response = await client.get("/api/orders", headers=bearer("not.a.token"))
    assert response.status_code == 401
