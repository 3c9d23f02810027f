"""The cart through the gateway, with the real auth, product and cart services: an admin
fills the catalogue, a customer fills, changes and clears a cart at the catalogue's
prices, and sees a price change and a product withdrawn."""

import uuid

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.e2e

ADMIN = {"email": "admin@shop.example.com", "password": "admin-password-123"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(gateway, credentials: dict[str, str]) -> str:
    response = gateway.post("/api/auth/login", json=credentials)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def register(gateway) -> str:
    email = f"shopper-{uuid.uuid4().hex[:8]}@example.com"
    response = gateway.post(
        "/api/auth/register",
        json={"name": "Jane Shopper", "email": email, "password": "password123"},
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


def create_product(gateway, admin: dict[str, str], **fields) -> dict:
    body = {"description": "e2e", "category": "Electronics", **fields}
    response = gateway.post("/api/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["product"]


def test_a_customer_fills_changes_and_clears_a_cart_at_catalogue_prices(gateway):
    admin = auth(login(gateway, ADMIN))
    phone = create_product(
        gateway,
        admin,
        name="Samsung Galaxy S24",
        price="150000.00",
        stock=10,
        imageUrl="https://img.example.com/s24.jpg",
    )
    case = create_product(gateway, admin, name="Phone case", price="1500.50", stock=3)
    customer = auth(register(gateway))

    # First visit: an empty cart.
    empty = gateway.get("/api/cart", headers=customer)
    assert empty.status_code == 200, empty.text
    assert empty.json()["cart"]["items"] == [] and empty.json()["cart"]["totalAmount"] == "0.00"

    # Fill: name, price and image come from the catalogue, whatever the client says.
    added = gateway.post(
        "/api/cart/items",
        json={"productId": phone["id"], "quantity": 1, "price": "1.00", "productName": "Free"},
        headers=customer,
    )
    assert added.status_code == 200, added.text
    assert added.json()["message"] == "Item added to cart"
    gateway.post("/api/cart/items", json={"productId": case["id"], "quantity": 2}, headers=customer)
    again = gateway.post("/api/cart/items", json={"productId": phone["id"]}, headers=customer)
    cart = again.json()["cart"]
    assert [(i["productName"], i["price"], i["quantity"]) for i in cart["items"]] == [
        ("Samsung Galaxy S24", "150000.00", 2),
        ("Phone case", "1500.50", 2),
    ]
    assert cart["items"][0]["imageUrl"] == "https://img.example.com/s24.jpg"
    assert cart["totalAmount"] == "303001.00" and cart["itemCount"] == 4

    # No more than the stock; no unknown product.
    too_many = gateway.post(
        "/api/cart/items", json={"productId": case["id"], "quantity": 2}, headers=customer
    )
    assert too_many.status_code == 400
    assert too_many.json() == {"error": "Insufficient stock", "available": 3}
    unknown = gateway.post(
        "/api/cart/items", json={"productId": str(uuid.uuid4())}, headers=customer
    )
    assert unknown.status_code == 404 and unknown.json() == {"error": "Product not found"}

    # Change a quantity.
    phone_line, case_line = cart["items"]
    changed = gateway.put(
        f"/api/cart/items/{phone_line['id']}", json={"quantity": 3}, headers=customer
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["message"] == "Cart item updated"
    assert changed.json()["cart"]["totalAmount"] == "453001.00"
    below_one = gateway.put(
        f"/api/cart/items/{phone_line['id']}", json={"quantity": 0}, headers=customer
    )
    assert below_one.status_code == 400
    assert below_one.json() == {"error": "Quantity must be at least 1"}

    # The admin lowers the phone's price: the cart shows it (once the price the cart
    # service remembers is CART_PRICE_MAX_AGE old, 1 s) and says so.
    repriced = gateway.put(
        f"/api/products/{phone['id']}", json={"price": "140000.00"}, headers=admin
    )
    assert repriced.status_code == 200, repriced.text

    def repriced_cart():
        cart = gateway.get("/api/cart", headers=customer).json()["cart"]
        return cart if cart["items"][0]["price"] == "140000.00" else None

    cart = wait_until(repriced_cart, timeout=5, what="the new price in the cart")
    phone_now = cart["items"][0]
    assert phone_now["price"] == "140000.00" and phone_now["priceChanged"] is True
    assert phone_now["previousPrice"] == "150000.00" and phone_now["subtotal"] == "420000.00"
    assert cart["items"][1]["priceChanged"] is False
    assert cart["totalAmount"] == "423001.00" and cart["pricesRefreshed"] is True

    # The admin withdraws the case: its line is unavailable and out of the totals.
    withdrawn = gateway.delete(f"/api/products/{case['id']}", headers=admin)
    assert withdrawn.status_code == 200, withdrawn.text

    def withdrawn_cart():
        cart = gateway.get("/api/cart", headers=customer).json()["cart"]
        return cart if cart["items"][1]["unavailable"] else None

    cart = wait_until(withdrawn_cart, timeout=5, what="the withdrawn line in the cart")
    assert cart["totalAmount"] == "420000.00" and cart["itemCount"] == 3

    # Remove it, then clear the cart.
    removed = gateway.delete(f"/api/cart/items/{case_line['id']}", headers=customer)
    assert removed.status_code == 200
    assert removed.json()["message"] == "Item removed from cart"
    assert [i["productName"] for i in removed.json()["cart"]["items"]] == ["Samsung Galaxy S24"]
    cleared = gateway.delete("/api/cart", headers=customer)
    assert cleared.status_code == 200
    assert cleared.json()["message"] == "Cart cleared"
    assert cleared.json()["cart"]["items"] == [] and cleared.json()["cart"]["itemCount"] == 0
    assert gateway.get("/api/cart", headers=customer).json()["cart"]["items"] == []


def test_carts_are_private_and_internal_routes_are_not_proxied(gateway):
    admin = auth(login(gateway, ADMIN))
    product = create_product(gateway, admin, name="Charger", price="2500.00", stock=5)
    alice, mallory = auth(register(gateway)), auth(register(gateway))
    cart = gateway.post(
        "/api/cart/items", json={"productId": product["id"], "quantity": 1}, headers=alice
    ).json()["cart"]
    item_id = cart["items"][0]["id"]

    stolen = gateway.put(f"/api/cart/items/{item_id}", json={"quantity": 5}, headers=mallory)
    assert stolen.status_code == 404 and stolen.json() == {"error": "Item not found in cart"}
    assert gateway.get("/api/cart").status_code == 401
    assert gateway.get("/api/cart", headers=alice).json()["cart"]["items"][0]["quantity"] == 1

    for path in ("/api/internal/cart/checkout", "/api/cart/internal/cart/checkout"):
        response = gateway.post(path, json={"userId": cart["userId"]}, headers=alice)
        assert response.status_code == 404
        assert response.json() == {"error": "Route not found"}
