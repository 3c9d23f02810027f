"""The original's routes, bodies, messages and envelopes, and what the database then holds."""

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

CART_FIELDS = {
    "id",
    "userId",
    "totalAmount",
    "itemCount",
    "expiresAt",
    "items",
    "pricesRefreshed",
    "createdAt",
    "updatedAt",
}
ITEM_FIELDS = {
    "id",
    "cartId",
    "productId",
    "productName",
    "price",
    "quantity",
    "subtotal",
    "imageUrl",
    "priceChanged",
    "previousPrice",
    "unavailable",
    "createdAt",
    "updatedAt",
}


async def test_first_get_creates_an_empty_cart_and_later_gets_return_it(client, customer, db_rows):
    user_id, headers = customer
    first = await client.get("/api/cart", headers=headers)
    assert first.status_code == 200
    cart = first.json()["cart"]
    assert set(cart) == CART_FIELDS
    assert cart["userId"] == user_id
    assert cart["items"] == [] and cart["totalAmount"] == "0.00" and cart["itemCount"] == 0
    assert cart["pricesRefreshed"] is True
    assert cart["expiresAt"].endswith("Z") and cart["createdAt"].endswith("Z")

    again = (await client.get("/api/cart", headers=headers)).json()["cart"]
    assert again["id"] == cart["id"]
    rows = await db_rows("SELECT id, user_id FROM carts")
    assert [(str(r["id"]), str(r["user_id"])) for r in rows] == [(cart["id"], user_id)]


async def test_add_takes_name_price_and_image_from_the_catalogue_not_the_client(
    add_to_cart, client, customer, neighbours, db_rows
):
    _, headers = customer
    product_id = neighbours.add_product(name="Phone", price="19.99", stock=5)
    response = await add_to_cart(
        headers,
        product_id,
        3,
        productName="Free phone",
        price="0.01",
        imageUrl="https://evil.example.com/x.png",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Item added to cart"
    cart = body["cart"]
    [item] = cart["items"]
    assert set(item) == ITEM_FIELDS
    assert item["cartId"] == cart["id"] and item["productId"] == product_id
    assert item["productName"] == "Phone"
    assert item["price"] == "19.99" and item["quantity"] == 3 and item["subtotal"] == "59.97"
    assert item["imageUrl"] == "https://img.example.com/p.jpg"
    assert item["priceChanged"] is False and item["unavailable"] is False
    assert cart["totalAmount"] == "59.97" and cart["itemCount"] == 3

    [line] = await db_rows("SELECT product_name, price, quantity, subtotal FROM cart_items")
    assert line == {
        "product_name": "Phone",
        "price": Decimal("19.99"),
        "quantity": 3,
        "subtotal": Decimal("59.97"),
    }
    [stored] = await db_rows("SELECT total_amount, item_count FROM carts")
    assert stored == {"total_amount": Decimal("59.97"), "item_count": 3}


async def test_quantity_defaults_to_one(add_to_cart, client, customer, neighbours):
    _, headers = customer
    product_id = neighbours.add_product(price="10.00")
    response = await add_to_cart(headers, product_id)
    assert response.json()["cart"]["items"][0]["quantity"] == 1


async def test_adding_a_product_already_in_the_cart_adds_to_its_quantity(
    add_to_cart, client, customer, neighbours, db_rows
):
    _, headers = customer
    phone = neighbours.add_product(name="Phone", price="100.50", stock=10)
    case = neighbours.add_product(name="Case", price="5.25", stock=10)
    await add_to_cart(headers, phone, 2)
    await add_to_cart(headers, case, 1)
    response = await add_to_cart(headers, phone, 3)
    cart = response.json()["cart"]
    assert [(i["productName"], i["quantity"]) for i in cart["items"]] == [("Phone", 5), ("Case", 1)]
    assert cart["items"][0]["subtotal"] == "502.50"
    assert cart["totalAmount"] == "507.75" and cart["itemCount"] == 6
    assert len(await db_rows("SELECT id FROM cart_items")) == 2
    [stored] = await db_rows("SELECT total_amount, item_count FROM carts")
    assert stored == {"total_amount": Decimal("507.75"), "item_count": 6}


async def test_unknown_or_inactive_product_is_not_found(
    add_to_cart, client, customer, neighbours, db_rows
):
    _, headers = customer
    inactive = neighbours.add_product(is_active=False)
    for product_id in (str(uuid.uuid4()), inactive):
        response = await add_to_cart(headers, product_id, 1)
        assert response.status_code == 404
        assert response.json() == {"error": "Product not found"}
    assert await db_rows("SELECT id FROM cart_items") == []


async def test_more_than_the_stock_is_insufficient_stock_with_what_is_available(
    add_to_cart, client, customer, neighbours, db_rows
):
    _, headers = customer
    product_id = neighbours.add_product(stock=5)
    response = await add_to_cart(headers, product_id, 6)
    assert response.status_code == 400
    assert response.json() == {"error": "Insufficient stock", "available": 5}

    assert (await add_to_cart(headers, product_id, 4)).status_code == 200
    # 4 in the cart + 2 more would be 6 of a stock of 5.
    response = await add_to_cart(headers, product_id, 2)
    assert response.status_code == 400
    assert response.json() == {"error": "Insufficient stock", "available": 5}
    [line] = await db_rows("SELECT quantity FROM cart_items")
    assert line["quantity"] == 4


@pytest.mark.parametrize(
    ("quantity", "error"),
    [
        (0, "Quantity must be at least 1"),
        (-3, "Quantity must be at least 1"),
        (1001, "Quantity must be at most 1000"),
    ],
)
async def test_add_quantity_out_of_range(
    add_to_cart, client, customer, neighbours, quantity, error
):
    _, headers = customer
    product_id = neighbours.add_product(stock=5000)
    response = await add_to_cart(headers, product_id, quantity)
    assert response.status_code == 400
    assert response.json() == {"error": error}


async def test_a_line_never_holds_more_than_1000(add_to_cart, client, customer, neighbours):
    _, headers = customer
    product_id = neighbours.add_product(stock=5000)
    assert (await add_to_cart(headers, product_id, 1000)).status_code == 200
    response = await add_to_cart(headers, product_id, 1)
    assert response.status_code == 400
    assert response.json() == {"error": "Quantity must be at most 1000"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 1}, "productId"),
        ({"productId": "not-a-uuid", "quantity": 1}, "productId"),
        ({"productId": "PRODUCT", "quantity": 1.5}, "quantity"),
        ({"productId": "PRODUCT", "quantity": "two"}, "quantity"),
        ({"productId": "PRODUCT", "quantity": True}, "quantity"),
        ({"productId": "PRODUCT", "quantity": None}, "quantity"),
    ],
)
async def test_add_validation_errors_name_the_field(client, customer, neighbours, body, field):
    _, headers = customer
    product_id = neighbours.add_product()
    body = {k: (product_id if v == "PRODUCT" else v) for k, v in body.items()}
    response = await client.post("/api/cart/items", json=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"
    assert [d["field"] for d in response.json()["details"]] == [field]


async def test_add_accepts_an_integer_written_as_a_string(
    add_to_cart, client, customer, neighbours
):
    _, headers = customer
    product_id = neighbours.add_product()
    response = await add_to_cart(headers, product_id, "2")
    assert response.status_code == 200
    assert response.json()["cart"]["itemCount"] == 2


async def test_a_cart_holds_at_most_100_different_products(
    add_to_cart, client, customer, neighbours, engine
):
    _, headers = customer
    product_ids = [neighbours.add_product(price="1.00") for _ in range(101)]
    first = await add_to_cart(headers, product_ids[0], 1)
    cart_id = first.json()["cart"]["id"]
    # 99 more lines, written straight to the database (adding them one by one is slow).
    async with engine.begin() as connection:
        for product_id in product_ids[1:100]:
            await connection.execute(
                text(
                    "INSERT INTO cart_items (id, cart_id, product_id, product_name, price, "
                    "quantity, subtotal) VALUES (:id, :cart, :product, 'P', 1.00, 1, 1.00)"
                ),
                {"id": uuid.uuid4(), "cart": cart_id, "product": product_id},
            )
        await connection.execute(text("UPDATE carts SET total_amount = 100, item_count = 100"))

    response = await add_to_cart(headers, product_ids[100], 1)
    assert response.status_code == 400
    assert response.json() == {"error": "A cart holds at most 100 different products"}
    # More of a product already there is still fine; the whole cart is one lookup call.
    neighbours.lookups.clear()
    response = await add_to_cart(headers, product_ids[0], 1)
    assert response.status_code == 200
    cart = response.json()["cart"]
    assert len(cart["items"]) == 100
    assert cart["itemCount"] == 101 and cart["totalAmount"] == "101.00"
    assert len(neighbours.lookups) == 1 and len(neighbours.lookups[0]) == 100


async def test_update_sets_the_quantity_and_refreshes_the_price(
    add_to_cart, client, customer, neighbours, db_rows
):
    _, headers = customer
    product_id = neighbours.add_product(name="Phone", price="100.00", stock=10)
    item = (await add_to_cart(headers, product_id, 1)).json()["cart"]["items"][0]
    neighbours.products[product_id].update(price="120.00", name="Phone (2025)")

    response = await client.put(
        f"/api/cart/items/{item['id']}", json={"quantity": 3}, headers=headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Cart item updated"
    [updated] = body["cart"]["items"]
    assert updated["id"] == item["id"] and updated["quantity"] == 3
    assert updated["price"] == "120.00" and updated["productName"] == "Phone (2025)"
    assert updated["subtotal"] == "360.00" and updated["priceChanged"] is False
    assert body["cart"]["totalAmount"] == "360.00" and body["cart"]["itemCount"] == 3
    [line] = await db_rows("SELECT price, quantity, subtotal, product_name FROM cart_items")
    assert line == {
        "price": Decimal("120.00"),
        "quantity": 3,
        "subtotal": Decimal("360.00"),
        "product_name": "Phone (2025)",
    }
    [stored] = await db_rows("SELECT total_amount, item_count FROM carts")
    assert stored == {"total_amount": Decimal("360.00"), "item_count": 3}


@pytest.mark.parametrize(
    ("quantity", "status", "body"),
    [
        (0, 400, {"error": "Quantity must be at least 1"}),
        (-1, 400, {"error": "Quantity must be at least 1"}),
        (1001, 400, {"error": "Quantity must be at most 1000"}),
        (11, 400, {"error": "Insufficient stock", "available": 10}),
    ],
)
async def test_update_refuses_a_quantity_out_of_range_or_over_the_stock(
    add_to_cart, client, customer, neighbours, db_rows, quantity, status, body
):
    _, headers = customer
    product_id = neighbours.add_product(stock=10)
    item = (await add_to_cart(headers, product_id, 2)).json()["cart"]["items"][0]
    response = await client.put(
        f"/api/cart/items/{item['id']}", json={"quantity": quantity}, headers=headers
    )
    assert response.status_code == status
    assert response.json() == body
    [line] = await db_rows("SELECT quantity FROM cart_items")
    assert line["quantity"] == 2


async def test_update_validation_errors(add_to_cart, client, customer, neighbours):
    _, headers = customer
    product_id = neighbours.add_product()
    item = (await add_to_cart(headers, product_id, 2)).json()["cart"]["items"][0]
    for body in ({}, {"quantity": "x"}, {"quantity": 2.5}):
        response = await client.put(f"/api/cart/items/{item['id']}", json=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["error"] == "Validation error"
        assert response.json()["details"][0]["field"] == "quantity"


async def test_update_of_a_line_whose_product_became_inactive_is_product_not_found(
    add_to_cart, client, customer, neighbours
):
    _, headers = customer
    product_id = neighbours.add_product()
    item = (await add_to_cart(headers, product_id, 2)).json()["cart"]["items"][0]
    neighbours.products[product_id]["isActive"] = False
    response = await client.put(
        f"/api/cart/items/{item['id']}", json={"quantity": 1}, headers=headers
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Product not found"}


async def test_remove_deletes_the_line_and_recomputes_the_totals(
    fill_cart, client, customer, db_rows
):
    _, headers = customer
    await fill_cart(headers, ("Phone", "100.00", 1), ("Case", "7.50", 2))
    items = (await client.get("/api/cart", headers=headers)).json()["cart"]["items"]
    response = await client.delete(f"/api/cart/items/{items[0]['id']}", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Item removed from cart"
    assert [i["productName"] for i in body["cart"]["items"]] == ["Case"]
    assert body["cart"]["totalAmount"] == "15.00" and body["cart"]["itemCount"] == 2
    assert len(await db_rows("SELECT id FROM cart_items")) == 1
    [stored] = await db_rows("SELECT total_amount, item_count FROM carts")
    assert stored == {"total_amount": Decimal("15.00"), "item_count": 2}

    again = await client.delete(f"/api/cart/items/{items[0]['id']}", headers=headers)
    assert again.status_code == 404
    assert again.json() == {"error": "Item not found in cart"}


async def test_clear_empties_the_cart(add_to_cart, client, customer, neighbours, db_rows):
    _, headers = customer
    await add_to_cart(headers, neighbours.add_product(price="3.00"), 2)
    await add_to_cart(headers, neighbours.add_product(price="4.00"), 1)
    response = await client.delete("/api/cart", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Cart cleared"
    assert body["cart"]["items"] == []
    assert body["cart"]["totalAmount"] == "0.00" and body["cart"]["itemCount"] == 0
    assert await db_rows("SELECT id FROM cart_items") == []
    [stored] = await db_rows("SELECT total_amount, item_count FROM carts")
    assert stored == {"total_amount": Decimal("0.00"), "item_count": 0}


async def test_clear_of_a_first_time_user_answers_an_empty_cart(client, make_user):
    _, headers = make_user()
    response = await client.delete("/api/cart", headers=headers)
    assert response.status_code == 200
    assert response.json()["cart"]["items"] == []


@pytest.mark.parametrize("item_id", ["not-a-uuid", "1", "' OR 1=1 --"])
async def test_a_non_uuid_item_id_is_item_not_found(client, customer, item_id):
    _, headers = customer
    update = await client.put(f"/api/cart/items/{item_id}", json={"quantity": 1}, headers=headers)
    remove = await client.delete(f"/api/cart/items/{item_id}", headers=headers)
    for response in (update, remove):
        assert response.status_code == 404
        assert response.json() == {"error": "Item not found in cart"}


async def test_an_unknown_item_id_is_item_not_found(client, customer):
    _, headers = customer
    unknown = uuid.uuid4()
    update = await client.put(f"/api/cart/items/{unknown}", json={"quantity": 1}, headers=headers)
    remove = await client.delete(f"/api/cart/items/{unknown}", headers=headers)
    for response in (update, remove):
        assert response.status_code == 404
        assert response.json() == {"error": "Item not found in cart"}


async def test_another_users_item_is_not_found_and_stays_untouched(
    add_to_cart, client, make_user, neighbours, db_rows
):
    _, alice = make_user()
    _, mallory = make_user()
    product_id = neighbours.add_product(stock=10)
    item = (await add_to_cart(alice, product_id, 2)).json()["cart"]["items"][0]

    update = await client.put(
        f"/api/cart/items/{item['id']}", json={"quantity": 9}, headers=mallory
    )
    remove = await client.delete(f"/api/cart/items/{item['id']}", headers=mallory)
    for response in (update, remove):
        assert response.status_code == 404
        assert response.json() == {"error": "Item not found in cart"}
    [line] = await db_rows("SELECT quantity FROM cart_items")
    assert line["quantity"] == 2
    # Mallory's own cart is empty; Alice's still holds her line.
    assert (await client.get("/api/cart", headers=mallory)).json()["cart"]["items"] == []
    alice_cart = (await client.get("/api/cart", headers=alice)).json()["cart"]
    assert [i["id"] for i in alice_cart["items"]] == [item["id"]]


async def test_every_route_needs_a_user_token(client):
    item = uuid.uuid4()
    calls = [
        ("GET", "/api/cart", None),
        ("POST", "/api/cart/items", {"productId": str(uuid.uuid4())}),
        ("PUT", f"/api/cart/items/{item}", {"quantity": 1}),
        ("DELETE", f"/api/cart/items/{item}", None),
        ("DELETE", "/api/cart", None),
    ]
    for method, path, body in calls:
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status_code == 401
        assert anonymous.json() == {"error": "No token provided"}
        forged = await client.request(
            method, path, json=body, headers={"Authorization": "Bearer not.a.token"}
        )
        assert forged.status_code == 401
        assert forged.json() == {"error": "Invalid token"}


async def test_a_deactivated_user_is_refused(client, customer, neighbours):
    user_id, headers = customer
    neighbours.users[user_id]["isActive"] = False
    response = await client.get("/api/cart", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "Account is deactivated"}
