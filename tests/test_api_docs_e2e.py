"""The gateway's API docs against the running services: every public route, at the
gateway's path, and nothing else; every example valid against the schema of what it
shows; each service's own /docs still there."""

import httpx
import pytest
from jsonschema import Draft202012Validator

from scripts.services import MPESA_SIMULATOR

pytestmark = pytest.mark.e2e

PUBLIC_ROUTES = {
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("GET", "/api/auth/profile"),
    ("PUT", "/api/auth/profile"),
    ("POST", "/api/auth/change-password"),
    ("POST", "/api/auth/verify"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/api/auth/admin/users"),
    ("GET", "/api/auth/admin/users/{user_id}"),
    ("PUT", "/api/auth/admin/users/{user_id}"),
    ("GET", "/api/products"),
    ("POST", "/api/products"),
    ("GET", "/api/products/{product_id}"),
    ("PUT", "/api/products/{product_id}"),
    ("DELETE", "/api/products/{product_id}"),
    ("PATCH", "/api/products/{product_id}/stock"),
    ("GET", "/api/cart"),
    ("DELETE", "/api/cart"),
    ("POST", "/api/cart/items"),
    ("PUT", "/api/cart/items/{item_id}"),
    ("DELETE", "/api/cart/items/{item_id}"),
    ("POST", "/api/orders"),
    ("GET", "/api/orders"),
    ("GET", "/api/orders/{order_id}"),
    ("PUT", "/api/orders/{order_id}/cancel"),
    ("GET", "/api/orders/admin/orders"),
    ("GET", "/api/orders/admin/orders/{order_id}"),
    ("GET", "/api/orders/admin/stats"),
    ("PUT", "/api/orders/admin/orders/{order_id}/status"),
    ("POST", "/api/payments/mpesa"),
    ("POST", "/api/payments/stripe"),
    ("GET", "/api/payments/{payment_id}"),
    ("GET", "/api/payments/order/{order_id}"),
    ("POST", "/api/payments/{payment_id}/refund"),
    ("GET", "/api/payments/admin/payments"),
    ("GET", "/api/payments/admin/payments/{payment_id}"),
    ("GET", "/api/payments/admin/stats"),
    ("GET", "/api/payments/admin/reconciliation"),
    ("POST", "/api/payments/webhook/mpesa/{secret}"),
    ("POST", "/api/payments/webhook/stripe"),
}


def operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }


def examples_of(media: dict) -> list:
    values = [media["example"]] if "example" in media else []
    return values + [example["value"] for example in media.get("examples", {}).values()]


def has_idempotency_key(operation: dict) -> bool:
    return any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))


@pytest.fixture(scope="module")
def merged(stack):
    response = httpx.get(f"{stack.gateway}/openapi.json", timeout=30)
    assert response.status_code == 200
    return response.json()


def test_the_gateway_documents_every_public_route_and_nothing_else(merged):
    assert operations(merged) == PUBLIC_ROUTES
    assert [tag["name"] for tag in merged["tags"]] == [
        "Auth",
        "Products",
        "Cart",
        "Orders",
        "Payments",
    ]
    assert "Not shown now" not in merged["info"]["description"]
    assert merged["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, item in merged["paths"].items():
        for method, operation in item.items():
            assert len(operation["tags"]) == 1, (method, path)
            # 422 only where it is this system's own (a reused Idempotency-Key), never
            # FastAPI's validation 422.
            if not has_idempotency_key(operation):
                assert "422" not in operation["responses"], (method, path)
    protected = merged["paths"]["/api/orders/admin/orders"]["get"]
    assert protected["security"] == [{"bearerAuth": []}] and "403" in protected["responses"]
    assert "security" not in merged["paths"]["/api/products"]["get"]


def test_every_example_matches_its_schema(merged):
    components = {"components": merged["components"]}
    checked = 0
    for path, item in merged["paths"].items():
        for method, operation in item.items():
            media = [operation.get("requestBody", {}).get("content", {}).get("application/json")]
            media += [
                response.get("content", {}).get("application/json")
                for response in operation["responses"].values()
            ]
            for entry in filter(None, media):
                validator = Draft202012Validator({**components, **entry.get("schema", {})})
                for example in examples_of(entry):
                    errors = [error.message for error in validator.iter_errors(example)]
                    assert not errors, (method, path, errors)
                    checked += 1
    assert checked > 100
    register = merged["paths"]["/api/auth/register"]["post"]
    refused = register["responses"]["400"]["content"]["application/json"]["examples"]
    assert {"error": "User already exists"} in [example["value"] for example in refused.values()]
    body = register["requestBody"]["content"]["application/json"]["example"]
    assert body["email"] == "john@example.com"  # the README's


def test_docs_pages_of_the_gateway_and_of_each_service(stack):
    docs = httpx.get(f"{stack.gateway}/docs", timeout=10)
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    # Swagger UI from the gateway itself (fastapi-offline), under its own strict policy.
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text
    assert "script-src 'self' 'nonce-" in docs.headers["content-security-policy"]
    for service in stack.ports:
        if service in ("gateway", MPESA_SIMULATOR, "console"):  # the console: pages, no API
            continue
        own = httpx.get(f"{stack.url(service)}/docs", timeout=10)
        assert own.status_code == 200, service
        document = httpx.get(f"{stack.url(service)}/openapi.json", timeout=10).json()
        # Its own document, as it was: its paths, its probes.
        assert "/health" in document["paths"], service


def responses(document: dict, method: str, path: str) -> set[str]:
    return set(document["paths"][path][method.lower()]["responses"])


def test_the_documents_tell_every_status_a_route_answers(stack, merged):
    """Issue 10: 404 on every by-id route, 403 on the M-Pesa webhook, 409 on admin status
    changes, 422 on a reused Idempotency-Key, 401/403 where a token or an admin is needed:
    in the gateway's document and in each service's own, with the error body's schema."""
    for method, path in [
        ("GET", "/api/products/{product_id}"),
        ("PUT", "/api/products/{product_id}"),
        ("DELETE", "/api/products/{product_id}"),
        ("PATCH", "/api/products/{product_id}/stock"),
        ("GET", "/api/orders/{order_id}"),
        ("PUT", "/api/orders/{order_id}/cancel"),
        ("GET", "/api/orders/admin/orders/{order_id}"),
        ("PUT", "/api/orders/admin/orders/{order_id}/status"),
        ("GET", "/api/payments/{payment_id}"),
        ("PUT", "/api/cart/items/{item_id}"),
        ("DELETE", "/api/cart/items/{item_id}"),
        ("PUT", "/api/auth/admin/users/{user_id}"),
    ]:
        assert "404" in responses(merged, method, path), (method, path)
    assert "403" in responses(merged, "POST", "/api/payments/webhook/mpesa/{secret}")
    assert "409" in responses(merged, "PUT", "/api/orders/admin/orders/{order_id}/status")
    assert {"409", "422"} <= responses(merged, "POST", "/api/orders")
    assert {"401", "403"} <= responses(merged, "GET", "/api/payments/admin/payments")
    refused = merged["paths"]["/api/orders/{order_id}"]["get"]["responses"]["404"]
    assert refused["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }

    for service in ("auth", "product", "cart", "order", "payment"):
        own = httpx.get(f"{stack.url(service)}/openapi.json", timeout=10).json()
        assert own["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
        for path, item in own["paths"].items():
            for method, operation in item.items():
                codes = set(operation["responses"])
                assert "503" in codes, (service, method, path)
                if operation.get("parameters") or "requestBody" in operation:
                    assert "400" in codes, (service, method, path)
                if not has_idempotency_key(operation):
                    assert "422" not in codes, (service, method, path)
                if operation.get("security"):
                    assert "401" in codes, (service, method, path)
    order = httpx.get(f"{stack.url('order')}/openapi.json", timeout=10).json()
    assert "/api/internal/orders/{order_id}" in order["paths"]
    assert order["paths"]["/api/admin/orders"]["get"]["security"] == [{"bearerAuth": []}]


def test_the_documents_are_as_strict_as_the_server(merged):
    """Required headers and the bounds the server enforces are in the schemas."""
    stripe = merged["paths"]["/api/payments/webhook/stripe"]["post"]
    signature = next(p for p in stripe["parameters"] if p["name"] == "Stripe-Signature")
    assert signature["in"] == "header" and signature["required"] is True
    for path in ("/api/orders", "/api/payments/mpesa", "/api/payments/stripe"):
        keys = [p for p in merged["paths"][path]["post"]["parameters"] if p["in"] == "header"]
        assert [p["name"] for p in keys] == ["Idempotency-Key"], path
        assert {
            "type": "string",
            "maxLength": 255,
            "minLength": 1,
            "pattern": "^[\\x21-\\x7e]+$",
        } in (keys[0]["schema"]["anyOf"]), path
    schemas = merged["components"]["schemas"]
    assert schemas["AddItemRequest"]["properties"]["quantity"]["minimum"] == 1
    update = schemas["ProductUpdate"]["properties"]
    for field in ("name", "price", "stock", "images", "isActive"):
        assert "null" not in str(update[field]), field  # the server refuses null there
    stock = schemas["StockChange"]
    assert stock["oneOf"] == [{"required": ["delta"]}, {"required": ["stock"]}]
    assert stock["properties"]["stock"]["minimum"] == 0
    assert "ge" not in stock["properties"]["stock"]
    money = schemas["ProductCreate"]["properties"]["price"]["anyOf"]
    assert {"type": "string", "pattern": "^[0-9]{1,10}(\\.[0-9]{1,2})?$"} in money
    phone = schemas["MpesaPaymentRequest"]["properties"]["phoneNumber"]
    assert phone["pattern"].startswith("^") and phone["pattern"].endswith("$")
