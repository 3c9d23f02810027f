"""Concurrent requests on one cart: one line per product, the right quantities and
totals, never more than the stock, one cart per user."""

import asyncio
from decimal import Decimal


def add_concurrently(client, headers, product_ids, quantity):
    """One add request per product id, all at once."""
    return asyncio.gather(
        *(
            client.post(
                "/api/cart/items",
                json={"productId": product_id, "quantity": quantity},
                headers=headers,
            )
            for product_id in product_ids
        )
    )


async def test_twenty_concurrent_adds_of_one_product_make_one_line(
    client, customer, neighbours, db_rows
):
    _, headers = customer
    product_id = neighbours.add_product(price="19.99", stock=100)
    responses = await add_concurrently(client, headers, [product_id] * 20, 2)
    assert [r.status_code for r in responses] == [200] * 20
    lines = await db_rows("SELECT quantity, subtotal FROM cart_items")
    assert lines == [{"quantity": 40, "subtotal": Decimal("799.60")}]
    [cart] = await db_rows("SELECT total_amount, item_count FROM carts")
    assert cart == {"total_amount": Decimal("799.60"), "item_count": 40}
    shown = (await client.get("/api/cart", headers=headers)).json()["cart"]
    assert shown["totalAmount"] == "799.60" and shown["itemCount"] == 40
    # Every answer saw a whole cart: quantities 2, 4, ..., 40, each once.
    seen = sorted(r.json()["cart"]["items"][0]["quantity"] for r in responses)
    assert seen == list(range(2, 41, 2))


async def test_concurrent_adds_of_different_products_keep_the_totals_right(
    client, customer, neighbours, db_rows
):
    _, headers = customer
    prices = ["1.10", "2.20", "3.30", "4.40", "5.50", "6.60", "7.70", "8.80", "9.90", "10.01"]
    product_ids = [neighbours.add_product(price=price) for price in prices]
    responses = await add_concurrently(client, headers, product_ids * 2, 3)
    assert {r.status_code for r in responses} == {200}
    lines = await db_rows("SELECT quantity FROM cart_items")
    assert sorted(line["quantity"] for line in lines) == [6] * 10
    expected = sum(Decimal(price) * 6 for price in prices)
    [cart] = await db_rows("SELECT total_amount, item_count FROM carts")
    assert cart == {"total_amount": expected, "item_count": 60}


async def test_concurrent_adds_never_take_the_cart_over_the_stock(
    client, customer, neighbours, db_rows
):
    _, headers = customer
    product_id = neighbours.add_product(price="10.00", stock=5)
    responses = await add_concurrently(client, headers, [product_id] * 12, 1)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [400] * 7
    refused = [r.json() for r in responses if r.status_code == 400]
    assert all(body == {"error": "Insufficient stock", "available": 5} for body in refused)
    [line] = await db_rows("SELECT quantity FROM cart_items")
    assert line["quantity"] == 5
    [cart] = await db_rows("SELECT total_amount, item_count FROM carts")
    assert cart == {"total_amount": Decimal("50.00"), "item_count": 5}


async def test_concurrent_first_visits_make_one_cart(client, customer, db_rows):
    user_id, headers = customer
    responses = await asyncio.gather(*(client.get("/api/cart", headers=headers) for _ in range(10)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["cart"]["id"] for r in responses}) == 1
    assert len(await db_rows("SELECT id FROM carts WHERE user_id = :u", u=user_id)) == 1


async def test_concurrent_update_and_remove_of_one_line_leave_a_consistent_cart(
    client, customer, neighbours, db_rows
):
    _, headers = customer
    product_id = neighbours.add_product(price="3.00", stock=50)
    other = neighbours.add_product(price="1.00", stock=50)
    item = (
        await client.post(
            "/api/cart/items", json={"productId": product_id, "quantity": 1}, headers=headers
        )
    ).json()["cart"]["items"][0]
    await client.post("/api/cart/items", json={"productId": other, "quantity": 2}, headers=headers)
    path = f"/api/cart/items/{item['id']}"
    responses = await asyncio.gather(
        *(client.put(path, json={"quantity": q}, headers=headers) for q in range(1, 8)),
        client.delete(path, headers=headers),
    )
    assert {r.status_code for r in responses} <= {200, 404}
    lines = await db_rows("SELECT price, quantity, subtotal FROM cart_items")
    [cart] = await db_rows("SELECT total_amount, item_count FROM carts")
    assert cart["total_amount"] == sum(line["subtotal"] for line in lines)
    assert cart["item_count"] == sum(line["quantity"] for line in lines)
