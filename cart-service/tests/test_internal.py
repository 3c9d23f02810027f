"""The order service's routes: the cart it orders from, and clearing it afterwards."""

import uuid
from decimal import Decimal

import httpx
import jwt
import pytest

from shared.testing import bearer

# A phone and two cases: 119.98.
LINES = (("Phone", "100.00", 1), ("Case", "9.99", 2))


@pytest.fixture
def internal(keys):
    return keys.internal_headers("order", "cart")


async def test_checkout_answers_the_users_cart_at_current_prices(
    fill_cart, client, customer, neighbours, internal
):
    user_id, headers = customer
    phone, _ = await fill_cart(headers, *LINES)
    neighbours.products[phone]["price"] = "95.00"
    response = await client.post(
        "/api/internal/cart/checkout", json={"userId": user_id}, headers=internal
    )
    assert response.status_code == 200
    cart = response.json()["cart"]
    assert cart["userId"] == user_id
    assert [(i["productName"], i["quantity"], i["price"]) for i in cart["items"]] == [
        ("Phone", 1, "95.00"),
        ("Case", 2, "9.99"),
    ]
    assert cart["items"][0]["priceChanged"] is True
    assert cart["totalAmount"] == "114.98" and cart["itemCount"] == 3
    assert cart["pricesRefreshed"] is True


async def test_checkout_of_an_empty_or_missing_cart_is_cart_is_empty(
    client, customer, internal, db_rows
):
    user_id, headers = customer
    missing = await client.post(
        "/api/internal/cart/checkout", json={"userId": str(uuid.uuid4())}, headers=internal
    )
    assert missing.status_code == 404 and missing.json() == {"error": "Cart is empty"}
    await client.get("/api/cart", headers=headers)
    empty = await client.post(
        "/api/internal/cart/checkout", json={"userId": user_id}, headers=internal
    )
    assert empty.status_code == 404 and empty.json() == {"error": "Cart is empty"}
    # Checkout never creates a cart.
    assert len(await db_rows("SELECT id FROM carts")) == 1


async def test_checkout_still_answers_when_the_product_service_is_down(
    fill_cart, client, customer, neighbours, internal
):
    user_id, headers = customer
    await fill_cart(headers, *LINES)
    neighbours.product_service_fails(httpx.ConnectError("refused"))
    response = await client.post(
        "/api/internal/cart/checkout", json={"userId": user_id}, headers=internal
    )
    assert response.status_code == 200
    assert response.json()["cart"]["pricesRefreshed"] is False
    assert response.json()["cart"]["totalAmount"] == "119.98"


async def test_clear_after_an_order_empties_the_users_cart(
    fill_cart, client, customer, make_user, neighbours, internal, db_rows
):
    user_id, headers = customer
    other_id, other_headers = make_user()
    await fill_cart(headers, *LINES)
    await fill_cart(other_headers, *LINES)
    response = await client.post(
        "/api/internal/cart/clear", json={"userId": user_id}, headers=internal
    )
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Cart cleared"
    assert body["cart"]["userId"] == user_id and body["cart"]["items"] == []
    assert body["cart"]["totalAmount"] == "0.00" and body["cart"]["itemCount"] == 0
    carts = await db_rows("SELECT user_id, total_amount, item_count FROM carts")
    by_user = {str(c["user_id"]): (c["total_amount"], c["item_count"]) for c in carts}
    assert by_user == {user_id: (Decimal("0.00"), 0), other_id: (Decimal("119.98"), 3)}
    lines = await db_rows(
        "SELECT c.user_id FROM cart_items i JOIN carts c ON c.id = i.cart_id GROUP BY c.user_id"
    )
    assert [str(row["user_id"]) for row in lines] == [other_id]


@pytest.mark.parametrize("body", [{}, {"userId": "not-a-uuid"}])
async def test_internal_bodies_are_validated(client, internal, body):
    for path in ("/api/internal/cart/checkout", "/api/internal/cart/clear"):
        response = await client.post(path, json=body, headers=internal)
        assert response.status_code == 400
        assert response.json()["error"] == "Validation error"


async def test_internal_routes_refuse_anonymous_user_and_forged_tokens(
    fill_cart, client, customer, make_user, keys, neighbours
):
    user_id, headers = customer
    await fill_cart(headers, *LINES)
    _, admin_headers = make_user(role="admin")
    user_token = headers["Authorization"].removeprefix("Bearer ")
    refused = [
        {},
        headers,
        admin_headers,
        {"X-Internal-Token": user_token},  # a user token in the internal header
        *(
            {"X-Internal-Token": token}
            for token in keys.forged_internal_tokens("order", "cart").values()
        ),
        # A user token signed with the order service's own key.
        bearer(
            jwt.encode(
                {"id": user_id, "email": "x@example.com", "role": "admin", "iat": 1, "exp": 2**40},
                keys.internal_keys["order"],
                algorithm="EdDSA",
            )
        ),
    ]
    for path in ("/api/internal/cart/checkout", "/api/internal/cart/clear"):
        for attempt in refused:
            response = await client.post(path, json={"userId": user_id}, headers=attempt)
            assert response.status_code == 401, (path, attempt)
    cart = (await client.get("/api/cart", headers=headers)).json()["cart"]
    assert cart["itemCount"] == 3
