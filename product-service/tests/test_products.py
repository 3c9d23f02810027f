"""Create, read, update and soft-delete products: the original's routes and bodies, the
validation that names the field, and who may write."""

import re
import uuid

import pytest
from sqlalchemy import text

from shared.testing import bearer
from shared.user_status import UserStatus

from .conftest import IPHONE

PRODUCT_FIELDS = {
    "id",
    "name",
    "description",
    "price",
    "stock",
    "category",
    "imageUrl",
    "images",
    "sku",
    "weight",
    "dimensions",
    "isActive",
    "createdAt",
    "updatedAt",
}


async def test_an_admin_creates_the_seed_readmes_iphone(client, admin_headers, engine):
    response = await client.post("/api/products", json=IPHONE, headers=admin_headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] == "Product created successfully"
    product = body["product"]
    assert set(product) == PRODUCT_FIELDS
    assert product["name"] == "iPhone 15 Pro"
    assert product["price"] == "150000.00"
    assert product["stock"] == 50
    assert product["category"] == "Electronics"
    assert product["sku"] == "IP15PRO-001"
    assert product["imageUrl"] == "https://example.com/iphone.jpg"
    assert product["images"] == []
    assert product["isActive"] is True
    assert product["weight"] is None and product["dimensions"] is None
    assert product["createdAt"].endswith("Z") and product["updatedAt"].endswith("Z")
    uuid.UUID(product["id"])
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT price::text, stock, is_active FROM products WHERE id = :id"),
                {"id": product["id"]},
            )
        ).one()
    assert tuple(row) == ("150000.00", 50, True)


async def test_every_field_is_kept_and_answered(client, admin_headers):
    body = {
        "name": "  Desk lamp  ",
        "description": "LED, warm white",
        "price": "1999.5",
        "stock": 3,
        "category": "Home",
        "imageUrl": "https://cdn.example.com/lamp.jpg",
        "images": ["https://cdn.example.com/lamp-1.jpg", "http://cdn.example.com/lamp-2.png"],
        "sku": "LAMP-1",
        "weight": 1.25,
        "dimensions": {"length": 30, "width": 12.5, "height": 45, "unit": "cm"},
        "isActive": False,
    }
    response = await client.post("/api/products", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    product = response.json()["product"]
    assert product["name"] == "Desk lamp"
    assert product["price"] == "1999.50"
    assert product["weight"] == "1.250"
    assert product["images"] == body["images"]
    assert product["dimensions"] == body["dimensions"]
    assert product["isActive"] is False
    fetched = await client.get(f"/api/products/{product['id']}", headers=admin_headers)
    assert fetched.json()["product"] == product


@pytest.mark.parametrize(
    ("price", "stored"),
    [
        (150000, "150000.00"),
        ("150000", "150000.00"),
        (19.99, "19.99"),
        ("0", "0.00"),
        (0.1, "0.10"),
    ],
)
async def test_price_as_number_or_string(create_product, price, stored):
    product = await create_product(price=price)
    assert product["price"] == stored


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": None}, "name"),
        ({"price": -1}, "price"),
        ({"price": "12.345"}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": None}, "price"),
        ({"price": True}, "price"),
        ({"price": "NaN"}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": 1.5}, "stock"),
        ({"stock": "many"}, "stock"),
        ({"stock": True}, "stock"),
        ({"stock": 2**31}, "stock"),
        ({"imageUrl": "not a url"}, "imageUrl"),
        ({"imageUrl": "javascript:alert(1)"}, "imageUrl"),
        ({"imageUrl": "ftp://example.com/a.jpg"}, "imageUrl"),
        ({"images": ["https://example.com/a.jpg", "nope"]}, "images.1"),
        ({"images": "https://example.com/a.jpg"}, "images"),
        ({"weight": -0.5}, "weight"),
        ({"weight": "0.0001"}, "weight"),
        ({"dimensions": [1, 2, 3]}, "dimensions"),
        ({"dimensions": {"length": {"nested": 1}}}, "dimensions"),
        ({"sku": ""}, "sku"),
        ({"category": "c" * 101}, "category"),
        ({"isActive": "maybe"}, "isActive"),
        ({"colour": "red"}, "colour"),
        ({"image_url": "https://example.com/a.jpg"}, "image_url"),
        ({"id": str(uuid.uuid4())}, "id"),
    ],
)
async def test_create_validation_names_the_field(client, admin_headers, count_rows, change, field):
    body = {**IPHONE, **change}
    response = await client.post("/api/products", json=body, headers=admin_headers)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["error"] == "Validation error"
    assert field in [detail["field"] for detail in payload["details"]], payload
    assert await count_rows("products") == 0


# Each URL with what the server does with it, which must be what the document's pattern says
# (a generated client and the server agree on what an image URL is).
IMAGE_URLS = [
    ("https://cdn.example.com/lamp.jpg", True),
    ("http://localhost:8080/a.png", True),
    ("https://img.example.co.ke/p/1.jpg?w=400&h=300#top", True),
    ("http://a.example/046*", True),
    ("https://example.com/a%20b.jpg", True),
    ("https://example.com/a b.jpg", False),
    (" https://example.com/a.jpg", False),
    ("https://example.com/a.jpg\n", False),
    ("https://exa_mple.com/a.jpg", False),
    ("https://example.com/<script>", False),
    ("ftp://example.com/a.jpg", False),
    ("https://", False),
]


async def test_the_server_takes_exactly_the_image_urls_its_document_describes(
    client, admin_headers
):
    document = (await client.get("/openapi.json")).json()
    schema = document["components"]["schemas"]["ProductCreate"]["properties"]["imageUrl"]
    pattern = next(option for option in schema["anyOf"] if "pattern" in option)["pattern"]
    without_sku = {key: value for key, value in IPHONE.items() if key != "sku"}
    for url, valid in IMAGE_URLS:
        assert (re.search(pattern, url) is not None and "\n" not in url) is valid, url
        response = await client.post(
            "/api/products",
            json={**without_sku, "imageUrl": url, "images": [url]},
            headers=admin_headers,
        )
        assert response.status_code == (201 if valid else 400), (url, response.text)
        if valid:
            assert response.json()["product"]["images"] == [url]
        else:
            fields = {detail["field"] for detail in response.json()["details"]}
            assert fields == {"imageUrl", "images.0"}, response.text


async def test_name_and_price_are_required(client, admin_headers):
    response = await client.post("/api/products", json={"stock": 1}, headers=admin_headers)
    assert response.status_code == 400
    fields = {detail["field"] for detail in response.json()["details"]}
    assert {"name", "price"} <= fields


async def test_a_body_that_is_not_json_is_a_400(client, admin_headers):
    response = await client.post(
        "/api/products",
        content=b"{not json",
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"


async def test_a_taken_sku_is_the_originals_400(client, admin_headers, create_product, count_rows):
    await create_product(sku="IP15PRO-001")
    response = await client.post("/api/products", json=IPHONE, headers=admin_headers)
    assert response.status_code == 400
    assert response.json() == {"error": "Resource already exists"}
    assert await count_rows("products") == 1


async def test_products_without_sku_do_not_collide(create_product):
    first = await create_product(sku=None)
    second = await create_product(sku=None)
    assert first["sku"] is None and second["sku"] is None and first["id"] != second["id"]


async def test_get_a_product_and_the_originals_404(client, create_product):
    product = await create_product()
    response = await client.get(f"/api/products/{product['id']}")
    assert response.status_code == 200
    assert response.json() == {"product": product}
    missing = await client.get(f"/api/products/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Product not found"}


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "%20", "00000000-0000-0000-0000"])
async def test_an_id_that_is_no_uuid_is_a_404_on_every_route(client, admin_headers, bad_id):
    for method, extra in (
        ("GET", {}),
        ("PUT", {"json": {"name": "x"}}),
        ("DELETE", {}),
    ):
        response = await client.request(
            method, f"/api/products/{bad_id}", headers=admin_headers, **extra
        )
        assert response.status_code == 404, (method, response.text)
        assert response.json() == {"error": "Product not found"}
    patch = await client.patch(
        f"/api/products/{bad_id}/stock", json={"delta": 1}, headers=admin_headers
    )
    assert patch.status_code == 404


async def test_put_changes_only_the_fields_sent(client, admin_headers, create_product):
    product = await create_product(
        description="Old", images=["https://example.com/1.jpg"], weight="0.187"
    )
    response = await client.put(
        f"/api/products/{product['id']}",
        json={"price": "139999.99", "stock": 45},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Product updated successfully"
    updated = body["product"]
    assert updated["price"] == "139999.99" and updated["stock"] == 45
    unchanged = {k: v for k, v in product.items() if k not in {"price", "stock", "updatedAt"}}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert updated["updatedAt"] >= product["updatedAt"]


async def test_put_clears_optional_fields_with_null_and_changes_the_sku(
    client, admin_headers, create_product
):
    product = await create_product(sku="OLD-1", description="d", weight=1, category="Phones")
    response = await client.put(
        f"/api/products/{product['id']}",
        json={"description": None, "weight": None, "category": None, "sku": "NEW-1"},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    updated = response.json()["product"]
    assert updated["description"] is None and updated["weight"] is None
    assert updated["category"] is None and updated["sku"] == "NEW-1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"price": None}, "price"),
        ({"stock": None}, "stock"),
        ({"images": None}, "images"),
        ({"isActive": None}, "isActive"),
        ({"price": "-5"}, "price"),
        ({"stock": -3}, "stock"),
        ({"imageUrl": "nope"}, "imageUrl"),
        ({"createdAt": "2020-01-01T00:00:00Z"}, "createdAt"),
        ({"unknown": 1}, "unknown"),
    ],
)
async def test_put_validation_names_the_field_and_changes_nothing(
    client, admin_headers, create_product, change, field
):
    product = await create_product()
    response = await client.put(
        f"/api/products/{product['id']}", json={"name": "Renamed", **change}, headers=admin_headers
    )
    assert response.status_code == 400, response.text
    assert field in [d["field"] for d in response.json()["details"]]
    after = await client.get(f"/api/products/{product['id']}")
    assert after.json()["product"] == product


async def test_put_to_a_taken_sku_is_refused_and_changes_nothing(
    client, admin_headers, create_product
):
    await create_product(sku="TAKEN")
    product = await create_product(sku="MINE")
    response = await client.put(
        f"/api/products/{product['id']}",
        json={"sku": "TAKEN", "name": "Renamed"},
        headers=admin_headers,
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Resource already exists"}
    after = (await client.get(f"/api/products/{product['id']}")).json()["product"]
    assert after["sku"] == "MINE" and after["name"] == product["name"]


async def test_put_unknown_product_is_404(client, admin_headers):
    response = await client.put(
        f"/api/products/{uuid.uuid4()}", json={"name": "x"}, headers=admin_headers
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Product not found"}


async def test_delete_is_a_soft_delete(client, admin_headers, create_product, engine):
    product = await create_product()
    response = await client.delete(f"/api/products/{product['id']}", headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {"message": "Product deleted successfully"}
    async with engine.connect() as connection:
        is_active = await connection.scalar(
            text("SELECT is_active FROM products WHERE id = :id"), {"id": product["id"]}
        )
    assert is_active is False
    # Gone for the public, still there for admins; deleting again changes nothing.
    assert (await client.get(f"/api/products/{product['id']}")).status_code == 404
    as_admin = await client.get(f"/api/products/{product['id']}", headers=admin_headers)
    assert as_admin.status_code == 200 and as_admin.json()["product"]["isActive"] is False
    again = await client.delete(f"/api/products/{product['id']}", headers=admin_headers)
    assert again.status_code == 200
    missing = await client.delete(f"/api/products/{uuid.uuid4()}", headers=admin_headers)
    assert missing.status_code == 404


async def test_an_admin_reactivates_a_deleted_product_with_put(
    client, admin_headers, create_product
):
    product = await create_product()
    await client.delete(f"/api/products/{product['id']}", headers=admin_headers)
    response = await client.put(
        f"/api/products/{product['id']}", json={"isActive": True}, headers=admin_headers
    )
    assert response.status_code == 200
    assert (await client.get(f"/api/products/{product['id']}")).status_code == 200


async def test_an_inactive_product_is_404_to_customers_too(
    client, create_product, customer_headers
):
    product = await create_product(isActive=False)
    response = await client.get(f"/api/products/{product['id']}", headers=customer_headers)
    assert response.status_code == 404
    assert response.json() == {"error": "Product not found"}


def _write_requests(product_id: str) -> list[tuple[str, str, dict]]:
    return [
        ("POST", "/api/products", IPHONE),
        ("PUT", f"/api/products/{product_id}", {"name": "Hacked"}),
        ("DELETE", f"/api/products/{product_id}", {}),
        ("PATCH", f"/api/products/{product_id}/stock", {"delta": 100}),
    ]


async def test_anonymous_writes_are_401(client, create_product):
    product = await create_product(sku="ORIGINAL")
    for method, path, body in _write_requests(product["id"]):
        response = await client.request(method, path, json=body or None)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": "No token provided"}
    after = (await client.get(f"/api/products/{product['id']}")).json()["product"]
    assert after == product


async def test_customer_writes_are_403(client, create_product, customer_headers, count_rows):
    product = await create_product(sku="ORIGINAL")
    for method, path, body in _write_requests(product["id"]):
        response = await client.request(method, path, json=body or None, headers=customer_headers)
        assert response.status_code == 403, (method, path)
        assert response.json() == {"error": "Access denied. Admin only."}
    assert (await client.get(f"/api/products/{product['id']}")).json()["product"] == product
    assert await count_rows("products") == 1


async def test_bad_revoked_or_deactivated_tokens_are_401(client, create_product, make_token):
    product = await create_product()
    forged = make_token("admin").rsplit(".", 1)[0] + ".forged"
    deactivated_admin = make_token("admin", active=False)
    for token in (forged, deactivated_admin, "garbage"):
        response = await client.put(
            f"/api/products/{product['id']}", json={"name": "x"}, headers=bearer(token)
        )
        assert response.status_code == 401, token
    # A token that still says "admin" for a user the auth service now knows as a customer.
    demoted = make_token("admin", status=UserStatus(role="customer", is_active=True))
    response = await client.delete(f"/api/products/{product['id']}", headers=bearer(demoted))
    assert response.status_code == 403
    assert (await client.get(f"/api/products/{product['id']}")).status_code == 200
