"""POST /api/orders without items: the caller's cart is the order, then it is emptied."""

import httpx

from order_service.outbox import deliver_outbox
from order_service.state import OrderState
from shared.state import state_of


async def test_an_order_from_the_cart_empties_the_cart(place, neighbours, customer, rows):
    phone = neighbours.add_product(stock=5, price="150000.00", name="iPhone 15 Pro")
    case = neighbours.add_product(stock=5, price="2500.50", name="Case")
    neighbours.put_in_cart(customer, phone, 1)
    neighbours.put_in_cart(customer, case, 2)

    response = await place()
    assert response.status_code == 201, response.text
    order = response.json()["order"]
    assert [(i["productName"], i["quantity"], i["price"]) for i in order["items"]] == [
        ("iPhone 15 Pro", 1, "150000.00"),
        ("Case", 2, "2500.50"),
    ]
    assert order["totalAmount"] == "155001.00"
    assert neighbours.stock(phone) == 4 and neighbours.stock(case) == 3
    assert neighbours.calls("checkout") == [{"userId": str(customer.id)}]
    assert neighbours.calls("clear") == [{"userId": str(customer.id)}]
    assert str(customer.id) not in neighbours.carts
    assert await rows("outbox_messages WHERE delivered_at IS NULL") == 0


async def test_an_empty_cart_and_no_items_is_a_400(place, neighbours, rows):
    response = await place()
    assert response.status_code == 400
    assert response.json() == {"error": "Cart is empty"}
    assert neighbours.routes["reserve"].call_count == 0
    assert await rows("orders") == 0


async def test_the_cart_service_down_is_a_503(place, neighbours, customer, rows):
    neighbours.put_in_cart(customer, neighbours.add_product())
    neighbours.routes["checkout"].side_effect = httpx.ConnectError("refused")
    response = await place()
    assert response.status_code == 503
    assert response.json() == {"error": "Cart service unavailable"}
    assert await rows("orders") == 0


async def test_out_of_stock_from_the_cart_leaves_the_cart_alone(place, neighbours, customer):
    product = neighbours.add_product(stock=1)
    neighbours.put_in_cart(customer, product, 3)
    response = await place()
    assert response.status_code == 400
    assert response.json()["error"] == "Some items are out of stock"
    assert neighbours.routes["clear"].call_count == 0
    assert neighbours.carts[str(customer.id)]


async def test_the_order_stands_when_clearing_the_cart_fails_and_the_clear_is_retried(
    app, place, neighbours, customer, db
):
    product = neighbours.add_product(stock=5)
    neighbours.put_in_cart(customer, product, 1)
    neighbours.routes["clear"].side_effect = httpx.ConnectError("cart service down")

    response = await place()
    assert response.status_code == 201
    assert (await db("SELECT status FROM orders")) == [("pending",)]
    [(attempts, last_error)] = await db(
        "SELECT attempts, last_error FROM outbox_messages WHERE topic = 'cart.clear'"
        " AND delivered_at IS NULL"
    )
    assert attempts == 1 and "ConnectError" in last_error

    neighbours.routes["clear"].side_effect = neighbours.clear
    await db("UPDATE outbox_messages SET available_at = now()")
    await deliver_outbox(state_of(app, OrderState))
    assert str(customer.id) not in neighbours.carts
    assert (await db("SELECT count(*) FROM outbox_messages WHERE delivered_at IS NULL")) == [(0,)]


async def test_duplicate_cart_lines_are_merged(place, neighbours, customer):
    product = neighbours.add_product(stock=5)
    neighbours.put_in_cart(customer, product, 1)
    neighbours.put_in_cart(customer, product, 2)
    response = await place()
    [item] = response.json()["order"]["items"]
    assert item["quantity"] == 3
