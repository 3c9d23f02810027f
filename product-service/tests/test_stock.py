"""Stock outside reservations: the original's check-stock and update-stock, the cart's
lookup, and the admin's restock. Internal routes take an internal token and nothing else."""

import asyncio
import uuid

import pytest

from shared.testing import bearer

INTERNAL_ROUTES = [
    ("/api/internal/check-stock", {"items": [{"productId": str(uuid.uuid4()), "quantity": 1}]}),
    ("/api/internal/products/lookup", {"productIds": [str(uuid.uuid4())]}),
    (
        "/api/internal/reserve",
        {"orderId": str(uuid.uuid4()), "items": [{"productId": str(uuid.uuid4()), "quantity": 1}]},
    ),
    ("/api/internal/release", {"orderId": str(uuid.uuid4())}),
    ("/api/internal/update-stock", {"productId": str(uuid.uuid4()), "quantity": 5}),
]


@pytest.mark.parametrize(("path", "body"), INTERNAL_ROUTES, ids=lambda v: str(v)[:30])
async def test_internal_routes_refuse_anyone_but_a_service(
    client, admin_headers, customer_headers, keys, count_rows, path, body
):
    forged = keys.forged_internal_tokens("order", "product")
    for headers in (
        {},
        admin_headers,
        customer_headers,
        *({"X-Internal-Token": token} for token in forged.values()),
    ):
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.json() == {"error": response.json()["error"]}
    assert await count_rows("stock_reservations") == 0


async def test_check_stock_is_the_originals(client, internal_headers, create_product):
    plenty = await create_product(stock=10, price="99.50")
    few = await create_product(stock=1)
    hidden = await create_product(stock=10, isActive=False)
    unknown = str(uuid.uuid4())
    response = await client.post(
        "/api/internal/check-stock",
        json={
            "items": [
                {"productId": plenty["id"], "quantity": 10},
                {"productId": few["id"], "quantity": 2},
                {"productId": hidden["id"], "quantity": 1},
                {"productId": unknown, "quantity": 1},
            ]
        },
        headers=internal_headers,
    )
    assert response.status_code == 200
    assert response.json() == {
        "available": False,
        "items": [
            {"productId": plenty["id"], "available": True, "stock": 10, "price": "99.50"},
            {"productId": few["id"], "available": False, "error": "Insufficient stock"},
            {"productId": hidden["id"], "available": False, "error": "Product not found"},
            {"productId": unknown, "available": False, "error": "Product not found"},
        ],
    }
    only_plenty = await client.post(
        "/api/internal/check-stock",
        json={"items": [{"productId": plenty["id"], "quantity": 3}]},
        headers=internal_headers,
    )
    assert only_plenty.json()["available"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        {"items": [{"productId": "nope", "quantity": 1}]},
        {"items": [{"productId": str(uuid.uuid4()), "quantity": 0}]},
        {"items": [{"productId": str(uuid.uuid4()), "quantity": 1.5}]},
        {},
    ],
)
async def test_check_stock_validates(client, internal_headers, body):
    response = await client.post("/api/internal/check-stock", json=body, headers=internal_headers)
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"


async def test_lookup_answers_known_products_inactive_included(
    client, cart_headers, create_product
):
    shown = await create_product(price="10.00", imageUrl="https://example.com/a.jpg")
    hidden = await create_product(isActive=False)
    response = await client.post(
        "/api/internal/products/lookup",
        json={"productIds": [shown["id"], hidden["id"], str(uuid.uuid4()), shown["id"]]},
        headers=cart_headers,
    )
    assert response.status_code == 200
    products = {p["id"]: p for p in response.json()["products"]}
    assert set(products) == {shown["id"], hidden["id"]}
    assert products[shown["id"]] == {
        "id": shown["id"],
        "name": shown["name"],
        "price": "10.00",
        "stock": shown["stock"],
        "imageUrl": "https://example.com/a.jpg",
        "isActive": True,
    }
    assert products[hidden["id"]]["isActive"] is False


async def test_lookup_takes_at_most_100_ids(client, cart_headers):
    ids = [str(uuid.uuid4()) for _ in range(101)]
    response = await client.post(
        "/api/internal/products/lookup", json={"productIds": ids}, headers=cart_headers
    )
    assert response.status_code == 400
    ok = await client.post(
        "/api/internal/products/lookup", json={"productIds": ids[:100]}, headers=cart_headers
    )
    assert ok.status_code == 200 and ok.json() == {"products": []}


async def test_update_stock_adds_and_takes_never_below_zero(
    client, internal_headers, create_product, stock_of
):
    product = await create_product(stock=5)
    added = await client.post(
        "/api/internal/update-stock",
        json={"productId": product["id"], "quantity": 3},
        headers=internal_headers,
    )
    assert added.status_code == 200
    assert added.json()["message"] == "Stock updated"
    assert added.json()["product"]["stock"] == 8
    taken = await client.post(
        "/api/internal/update-stock",
        json={"productId": product["id"], "quantity": -8},
        headers=internal_headers,
    )
    assert taken.json()["product"]["stock"] == 0
    refused = await client.post(
        "/api/internal/update-stock",
        json={"productId": product["id"], "quantity": -1},
        headers=internal_headers,
    )
    assert refused.status_code == 400
    assert refused.json() == {"error": "Insufficient stock"}
    assert await stock_of(product["id"]) == 0
    missing = await client.post(
        "/api/internal/update-stock",
        json={"productId": str(uuid.uuid4()), "quantity": 1},
        headers=internal_headers,
    )
    assert missing.status_code == 404
    assert missing.json() == {"error": "Product not found"}


async def test_concurrent_takes_never_go_below_zero(
    client, internal_headers, create_product, stock_of
):
    product = await create_product(stock=10)

    async def take():
        return await client.post(
            "/api/internal/update-stock",
            json={"productId": product["id"], "quantity": -3},
            headers=internal_headers,
        )

    responses = await asyncio.gather(*(take() for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200] + [400] * 5
    assert await stock_of(product["id"]) == 1


async def test_an_admin_restocks_by_delta_or_sets_the_stock(
    client, admin_headers, create_product, stock_of
):
    product = await create_product(stock=5)
    path = f"/api/products/{product['id']}/stock"
    more = await client.patch(path, json={"delta": 20}, headers=admin_headers)
    assert more.status_code == 200, more.text
    assert more.json()["message"] == "Stock updated"
    assert more.json()["product"]["stock"] == 25
    fewer = await client.patch(path, json={"delta": -24}, headers=admin_headers)
    assert fewer.json()["product"]["stock"] == 1
    too_many = await client.patch(path, json={"delta": -2}, headers=admin_headers)
    assert too_many.status_code == 400
    assert too_many.json() == {"error": "Insufficient stock"}
    assert await stock_of(product["id"]) == 1
    exact = await client.patch(path, json={"stock": 40}, headers=admin_headers)
    assert exact.json()["product"]["stock"] == 40
    zero = await client.patch(path, json={"stock": 0}, headers=admin_headers)
    assert zero.json()["product"]["stock"] == 0
    assert zero.json()["product"]["updatedAt"] >= product["updatedAt"]


async def test_a_restock_past_the_largest_stock_is_refused_and_changes_nothing(
    client, admin_headers, create_product, stock_of
):
    """The stock column holds at most 2,147,483,647: a delta that would pass it is a 400
    (a fuzzer's sum once overflowed the column: a 500)."""
    product = await create_product(stock=2_000_000_000)
    path = f"/api/products/{product['id']}/stock"
    too_much = await client.patch(path, json={"delta": 748_960_137}, headers=admin_headers)
    assert too_much.status_code == 400, too_much.text
    assert too_much.json() == {"error": "Stock would exceed 2147483647"}
    assert await stock_of(product["id"]) == 2_000_000_000
    to_the_limit = await client.patch(path, json={"delta": 147_483_647}, headers=admin_headers)
    assert to_the_limit.json()["product"]["stock"] == 2_147_483_647


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"delta": 1, "stock": 1},
        {"stock": -1},
        {"stock": 1.5},
        {"delta": "lots"},
        {"delta": None},
        {"quantity": 5},
    ],
)
async def test_restock_validates_and_changes_nothing(
    client, admin_headers, create_product, stock_of, body
):
    product = await create_product(stock=5)
    response = await client.patch(
        f"/api/products/{product['id']}/stock", json=body, headers=admin_headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "Validation error"
    assert await stock_of(product["id"]) == 5


async def test_restock_of_an_unknown_product_is_404(client, admin_headers):
    response = await client.patch(
        f"/api/products/{uuid.uuid4()}/stock", json={"delta": 1}, headers=admin_headers
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Product not found"}


async def test_restock_is_for_admins_only(client, customer_headers, create_product, stock_of):
    product = await create_product(stock=5)
    path = f"/api/products/{product['id']}/stock"
    assert (await client.patch(path, json={"delta": 1})).status_code == 401
    as_customer = await client.patch(path, json={"delta": 1}, headers=customer_headers)
    assert as_customer.status_code == 403
    expired = bearer("a.b.c")
    assert (await client.patch(path, json={"delta": 1}, headers=expired)).status_code == 401
    assert await stock_of(product["id"]) == 5
