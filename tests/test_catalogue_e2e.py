"""The catalogue through the gateway, the real processes started as `make run` starts them:
an admin creates, updates, lists, searches, restocks and soft-deletes products as the seed
README shows; a customer cannot write; anyone can browse."""

import uuid

import pytest

pytestmark = pytest.mark.e2e

ADMIN = {"email": "admin@shop.example.com", "password": "admin-password-123"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_token(gateway) -> str:
    response = gateway.post("/api/auth/login", json=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["role"] == "admin"
    return response.json()["token"]


@pytest.fixture
def customer_token(gateway) -> str:
    response = gateway.post(
        "/api/auth/register",
        json={
            "name": "John Doe",
            "email": f"john-{uuid.uuid4().hex[:8]}@example.com",
            "password": "password123",
            "phoneNumber": "254712345678",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


def seed_readme_iphone(tag: str) -> dict:
    """The seed README's "Create Product (Admin)" body. The stack is shared by the session's
    end-to-end tests, so its sku gets a tag (skus are unique)."""
    return {
        "name": "iPhone 15 Pro",
        "description": "Latest iPhone",
        "price": 150000,
        "stock": 50,
        "category": "Electronics",
        "sku": f"IP15PRO-001-{tag}",
    }


def test_an_admin_manages_the_catalogue_through_the_gateway(gateway, admin_token):
    tag = uuid.uuid4().hex[:8]
    created = gateway.post("/api/products", json=seed_readme_iphone(tag), headers=auth(admin_token))
    assert created.status_code == 201, created.text
    assert created.json()["message"] == "Product created successfully"
    product = created.json()["product"]
    assert product["price"] == "150000.00" and product["stock"] == 50
    assert product["isActive"] is True
    product_id = product["id"]

    # Anyone reads it.
    fetched = gateway.get(f"/api/products/{product_id}")
    assert fetched.status_code == 200
    assert fetched.json() == {"product": product}

    # PUT changes only what it is sent.
    updated = gateway.put(
        f"/api/products/{product_id}",
        json={"price": "139999.99", "description": f"Latest iPhone {tag}"},
        headers=auth(admin_token),
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["message"] == "Product updated successfully"
    assert updated.json()["product"]["price"] == "139999.99"
    assert updated.json()["product"]["stock"] == 50
    assert updated.json()["product"]["name"] == "iPhone 15 Pro"

    # Listed, as the Postman collection asks (page=1&limit=10), and found by search.
    listed = gateway.get("/api/products", params={"page": 1, "limit": 10})
    assert listed.status_code == 200
    assert set(listed.json()) == {"products", "totalPages", "currentPage", "totalProducts"}
    assert product_id in [p["id"] for p in listed.json()["products"]]  # newest first
    found = gateway.get("/api/products", params={"search": tag.upper()})
    assert [p["id"] for p in found.json()["products"]] == [product_id]
    in_range = gateway.get(
        "/api/products",
        params={"category": "Electronics", "minPrice": "139999.99", "maxPrice": 140000},
    )
    assert product_id in [p["id"] for p in in_range.json()["products"]]

    # Restock through the gateway.
    restocked = gateway.patch(
        f"/api/products/{product_id}/stock", json={"delta": 5}, headers=auth(admin_token)
    )
    assert restocked.status_code == 200, restocked.text
    assert restocked.json()["product"]["stock"] == 55
    too_many = gateway.patch(
        f"/api/products/{product_id}/stock", json={"delta": -56}, headers=auth(admin_token)
    )
    assert too_many.status_code == 400
    assert too_many.json() == {"error": "Insufficient stock"}

    # A second product with the same sku: the original's answer.
    duplicate = gateway.post(
        "/api/products", json=seed_readme_iphone(tag), headers=auth(admin_token)
    )
    assert duplicate.status_code == 400
    assert duplicate.json() == {"error": "Resource already exists"}

    # Soft delete: gone for the public, still there for the admin.
    deleted = gateway.delete(f"/api/products/{product_id}", headers=auth(admin_token))
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Product deleted successfully"}
    assert gateway.get(f"/api/products/{product_id}").status_code == 404
    assert gateway.get(f"/api/products/{product_id}").json() == {"error": "Product not found"}
    assert gateway.get("/api/products", params={"search": tag}).json()["totalProducts"] == 0
    as_admin = gateway.get(f"/api/products/{product_id}", headers=auth(admin_token))
    assert as_admin.status_code == 200 and as_admin.json()["product"]["isActive"] is False
    everything = gateway.get(
        "/api/products",
        params={"search": tag, "includeInactive": "true"},
        headers=auth(admin_token),
    )
    assert [p["id"] for p in everything.json()["products"]] == [product_id]


def test_a_customer_cannot_write_and_anonymous_can_browse(gateway, admin_token, customer_token):
    tag = uuid.uuid4().hex[:8]
    body = {**seed_readme_iphone(tag), "description": f"Latest iPhone {tag}"}
    refused = gateway.post("/api/products", json=body, headers=auth(customer_token))
    assert refused.status_code == 403
    assert refused.json() == {"error": "Access denied. Admin only."}
    anonymous = gateway.post("/api/products", json=body)
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "No token provided"}
    assert gateway.get("/api/products", params={"search": tag}).json()["totalProducts"] == 0

    product = gateway.post("/api/products", json=body, headers=auth(admin_token)).json()["product"]
    path = f"/api/products/{product['id']}"
    for method, target, extra in (
        ("PUT", path, {"json": {"price": 1}}),
        ("DELETE", path, {}),
        ("PATCH", f"{path}/stock", {"json": {"stock": 0}}),
    ):
        as_customer = gateway.request(method, target, headers=auth(customer_token), **extra)
        assert as_customer.status_code == 403, method
        assert gateway.request(method, target, **extra).status_code == 401, method
    after = gateway.get(path).json()["product"]
    assert after == product

    browsed = gateway.get("/api/products", params={"search": tag})
    assert browsed.status_code == 200
    assert [p["id"] for p in browsed.json()["products"]] == [product["id"]]
    assert gateway.get("/api/products", params={"limit": 1000}).status_code == 400
    assert gateway.get("/api/products/not-a-uuid").status_code == 404


def test_the_gateway_never_reaches_the_internal_stock_routes(gateway, admin_token):
    for path in ("/api/products/internal/reserve", "/api/internal/reserve"):
        response = gateway.post(
            path,
            json={"orderId": str(uuid.uuid4()), "items": []},
            headers=auth(admin_token),
        )
        assert response.status_code == 404


def test_anonymous_reads_are_cached_by_the_gateway_and_writes_are_seen_at_once(
    gateway, admin_token
):
    """The product service marks anonymous reads public for a second; the gateway answers
    the next ones itself (`Age`: the service never sends one) until a write through it."""
    tag = uuid.uuid4().hex[:8]
    body = {**seed_readme_iphone(tag), "description": f"Latest iPhone {tag}"}
    created = gateway.post("/api/products", json=body, headers=auth(admin_token))
    product_id = created.json()["product"]["id"]
    path = f"/api/products/{product_id}"
    first = gateway.get(path)
    assert first.headers["cache-control"] == "public, max-age=1"
    etag = first.headers["etag"]
    second = gateway.get(path)
    assert "age" in second.headers  # from the gateway's cache
    assert second.headers["etag"] == etag and second.content == first.content
    not_modified = gateway.get(path, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""

    # An admin's read is never the cached one, nor cached: it names inactive products too.
    as_admin = gateway.get(path, headers=auth(admin_token))
    assert "age" not in as_admin.headers
    assert as_admin.headers["cache-control"] == "private, no-store"

    updated = gateway.put(path, json={"stock": 7}, headers=auth(admin_token))
    assert updated.status_code == 200, updated.text
    after = gateway.get(path)
    assert "age" not in after.headers
    assert after.json()["product"]["stock"] == 7
    assert after.headers["etag"] != etag
    listed = gateway.get("/api/products", params={"search": tag})
    assert listed.json()["products"][0]["stock"] == 7
    assert gateway.get(path, headers={"If-None-Match": etag}).status_code == 200

    deleted = gateway.delete(path, headers=auth(admin_token))
    assert deleted.status_code == 200
    assert gateway.get(path).status_code == 404
    assert gateway.get("/api/products", params={"search": tag}).json()["totalProducts"] == 0
