"""Orders end to end: the real auth, product, cart and order services behind the
gateway (started by the `stack` fixture as `make run` starts them)."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = pytest.mark.e2e

ADDRESS = {"street": "123 Main St", "city": "Nairobi", "country": "Kenya", "postalCode": "00100"}
ADMIN = {"email": "admin@shop.example.com", "password": "admin-password-123"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(gateway: httpx.Client) -> str:
    response = gateway.post(
        "/api/auth/register",
        json={
            "name": "John Doe",
            "email": f"john-{uuid.uuid4().hex[:10]}@example.com",
            "password": "password123",
            "phoneNumber": "254712345678",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


def admin_token(gateway: httpx.Client) -> str:
    response = gateway.post("/api/auth/login", json=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def create_product(gateway: httpx.Client, *, stock: int, price: int = 150000, name="iPhone 15 Pro"):
    response = gateway.post(
        "/api/products",
        json={
            "name": name,
            "description": "Latest iPhone",
            "price": price,
            "stock": stock,
            "category": "Electronics",
            "sku": f"SKU-{uuid.uuid4().hex[:12]}",
        },
        headers=auth(admin_token(gateway)),
    )
    assert response.status_code == 201, response.text
    return response.json()["product"]


def stock_of(gateway: httpx.Client, product_id: str) -> int:
    """The stock now: an order's change reaches the gateway's cache of anonymous reads only
    when it expires (up to CATALOGUE_MAX_AGE later), so this asks past it (no-cache)."""
    response = gateway.get(f"/api/products/{product_id}", headers={"Cache-Control": "no-cache"})
    assert response.status_code == 200, response.text
    return response.json()["product"]["stock"]


def order_body(*lines: tuple[dict, int]) -> dict:
    return {
        "items": [
            {"productId": product["id"], "productName": product["name"], "quantity": quantity}
            for product, quantity in lines
        ],
        "shippingAddress": ADDRESS,
    }


def orders_of_product(gateway: httpx.Client, product_id: str) -> list[dict]:
    """Every order holding the product, read through the admin list."""
    found, page = [], 1
    while True:
        response = gateway.get(
            "/api/orders/admin/orders",
            params={"page": page, "limit": 100},
            headers=auth(admin_token(gateway)),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        found += [
            order
            for order in body["orders"]
            if any(item["productId"] == product_id for item in order["items"])
        ]
        if page >= body["totalPages"]:
            return found
        page += 1


def test_the_seed_readmes_order_example_takes_stock(gateway):
    token = register(gateway)
    iphone = create_product(gateway, stock=50)
    assert stock_of(gateway, iphone["id"]) == 50

    response = gateway.post(
        "/api/orders",
        json={
            "items": [{"productId": iphone["id"], "productName": "iPhone 15 Pro", "quantity": 1}],
            "shippingAddress": ADDRESS,
        },
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] == "Order created successfully"
    order = body["order"]
    assert order["status"] == "pending" and order["paymentStatus"] == "pending"
    assert order["totalAmount"] == "150000.00" and order["currency"] == "KES"
    assert order["items"][0]["price"] == "150000.00"
    assert order["orderNumber"].startswith("ORD-")
    assert stock_of(gateway, iphone["id"]) == 49

    mine = gateway.get("/api/orders", headers=auth(token)).json()
    assert [o["id"] for o in mine["orders"]] == [order["id"]] and mine["totalOrders"] == 1
    one = gateway.get(f"/api/orders/{order['id']}", headers=auth(token))
    assert one.json()["order"]["history"][0]["to"] == "pending"
    stranger = gateway.get(f"/api/orders/{order['id']}", headers=auth(register(gateway)))
    assert stranger.status_code == 404

    cancelled = gateway.put(f"/api/orders/{order['id']}/cancel", headers=auth(token))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["message"] == "Order cancelled successfully"
    assert stock_of(gateway, iphone["id"]) == 50
    again = gateway.put(f"/api/orders/{order['id']}/cancel", headers=auth(token))
    assert again.status_code == 400
    assert again.json() == {"error": "Order cannot be cancelled"}
    assert stock_of(gateway, iphone["id"]) == 50


def test_no_oversell_under_50_concurrent_orders(gateway, stack):
    product = create_product(gateway, stock=10, price=1000, name="Limited edition")
    tokens = [register(gateway) for _ in range(50)]

    def order(token: str) -> httpx.Response:
        with httpx.Client(base_url=stack.gateway, timeout=60) as client:
            return client.post("/api/orders", json=order_body((product, 1)), headers=auth(token))

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(order, tokens))

    created = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code == 400]
    assert len(created) == 10, [r.text for r in responses if r.status_code not in (201, 400)]
    assert len(refused) == 40
    for response in refused:
        assert response.json()["error"] == "Some items are out of stock"
    assert stock_of(gateway, product["id"]) == 0

    # Every order of the product is one of the ten answered, one unit each: the stock
    # taken (10) is exactly what the orders hold, so no reservation lacks its order.
    orders = orders_of_product(gateway, product["id"])
    assert sorted(o["id"] for o in orders) == sorted(r.json()["order"]["id"] for r in created)
    assert all(o["items"][0]["quantity"] == 1 and o["status"] == "pending" for o in orders)
    # And every order has its reservation: cancelling each gives back exactly one unit.
    for response, token in zip(responses, tokens, strict=True):
        if response.status_code == 201:
            order_id = response.json()["order"]["id"]
            cancel = gateway.put(f"/api/orders/{order_id}/cancel", headers=auth(token))
            assert cancel.status_code == 200, cancel.text
    assert stock_of(gateway, product["id"]) == 10


def test_an_order_is_all_or_nothing(gateway):
    token = register(gateway)
    plenty = create_product(gateway, stock=5, name="Plenty")
    scarce = create_product(gateway, stock=1, name="Scarce")
    response = gateway.post(
        "/api/orders", json=order_body((plenty, 2), (scarce, 2)), headers=auth(token)
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Some items are out of stock"
    assert [detail["productId"] for detail in body["details"]] == [scarce["id"]]
    assert stock_of(gateway, plenty["id"]) == 5
    assert stock_of(gateway, scarce["id"]) == 1
    assert gateway.get("/api/orders", headers=auth(token)).json()["totalOrders"] == 0


def test_an_order_from_the_cart_empties_the_cart(gateway):
    token = register(gateway)
    phone = create_product(gateway, stock=5, price=150000, name="iPhone 15 Pro")
    case = create_product(gateway, stock=5, price=2500, name="Case")
    for product, quantity in ((phone, 1), (case, 2)):
        added = gateway.post(
            "/api/cart/items",
            json={"productId": product["id"], "quantity": quantity},
            headers=auth(token),
        )
        assert added.status_code == 200, added.text

    response = gateway.post("/api/orders", json={"shippingAddress": ADDRESS}, headers=auth(token))
    assert response.status_code == 201, response.text
    order = response.json()["order"]
    assert sorted((i["productName"], i["quantity"]) for i in order["items"]) == [
        ("Case", 2),
        ("iPhone 15 Pro", 1),
    ]
    assert order["totalAmount"] == "155000.00"
    assert stock_of(gateway, phone["id"]) == 4 and stock_of(gateway, case["id"]) == 3
    cart = gateway.get("/api/cart", headers=auth(token)).json()["cart"]
    assert cart["items"] == []

    empty = gateway.post("/api/orders", json={"shippingAddress": ADDRESS}, headers=auth(token))
    assert empty.status_code == 400
    assert empty.json() == {"error": "Cart is empty"}


def test_an_idempotency_key_through_the_gateway_makes_one_order(gateway):
    token = register(gateway)
    product = create_product(gateway, stock=5)
    headers = {**auth(token), "Idempotency-Key": f"checkout-{uuid.uuid4()}"}
    first = gateway.post("/api/orders", json=order_body((product, 1)), headers=headers)
    again = gateway.post("/api/orders", json=order_body((product, 1)), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert stock_of(gateway, product["id"]) == 4
    other = gateway.post("/api/orders", json=order_body((product, 2)), headers=headers)
    assert other.status_code == 422


def test_an_admin_moves_an_order_along_through_the_gateway(gateway):
    token = register(gateway)
    product = create_product(gateway, stock=5)
    # Cash on delivery: the admin marks it paid (an M-Pesa or card order the payment
    # service pays; the reconciliation report flags one paid by hand without a payment).
    cash = {**order_body((product, 1)), "paymentMethod": "cash_on_delivery"}
    order = gateway.post("/api/orders", json=cash, headers=auth(token))
    order_id = order.json()["order"]["id"]
    admin = auth(admin_token(gateway))
    shipped_too_early = gateway.put(
        f"/api/orders/admin/orders/{order_id}/status", json={"status": "shipped"}, headers=admin
    )
    assert shipped_too_early.status_code == 409
    assert shipped_too_early.json() == {"error": "Cannot change order from pending to shipped"}
    for status in ("paid", "processing", "shipped", "delivered"):
        response = gateway.put(
            f"/api/orders/admin/orders/{order_id}/status", json={"status": status}, headers=admin
        )
        assert response.status_code == 200, response.text
    final = gateway.get(f"/api/orders/{order_id}", headers=auth(token)).json()["order"]
    assert final["status"] == "delivered" and final["deliveredAt"]
    customer_try = gateway.put(
        f"/api/orders/admin/orders/{order_id}/status", json={"status": "paid"}, headers=auth(token)
    )
    assert customer_try.status_code == 403
    assert gateway.post("/api/orders/internal/update-status", json={}).status_code == 404
