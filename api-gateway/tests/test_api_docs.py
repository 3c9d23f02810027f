"""The gateway's /docs and /openapi.json: the services' documents merged, at the gateway's
paths, internal routes and probes left out, tagged per service, with the bearer scheme and
the README's examples; a service that is down never breaks them."""

import asyncio
import re

import pytest

from api_gateway.api_docs import ApiDocs
from api_gateway.openapi_merge import gateway_path, merge_documents
from shared.testing import refused_port


def operation(summary: str, *, body: str | None = None, response: str | None = None) -> dict:
    op: dict = {
        "summary": summary,
        "operationId": summary.lower().replace(" ", "_"),
        "responses": {
            "200": {
                "description": "Successful Response",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{response}"} if response else {}
                    }
                },
            },
            "422": {"description": "Validation Error"},
        },
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


def document(paths: dict, schemas: dict) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "A Service", "version": "0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


HEALTH = {"/health": {"get": operation("Health")}, "/ready": {"get": operation("Ready")}}
AUTH = document(
    {
        **HEALTH,
        "/api/login": {"post": operation("Login", body="LoginRequest", response="AuthResponse")},
        "/api/profile": {"get": operation("Get Profile", response="UserEnvelope")},
        # The service reads the token itself: its own document says so.
        "/api/verify": {"post": {**operation("Verify"), "security": [{"bearerAuth": []}]}},
        "/api/admin/users": {"get": operation("List Users")},
        "/api/internal/users/{user_id}": {"get": operation("User Status")},
    },
    {
        "LoginRequest": {"type": "object", "properties": {"email": {"type": "string"}}},
        "AuthResponse": {
            "type": "object",
            "properties": {"user": {"$ref": "#/components/schemas/UserOut"}},
        },
        "UserEnvelope": {
            "type": "object",
            "properties": {"user": {"$ref": "#/components/schemas/UserOut"}},
        },
        "UserOut": {"type": "object", "properties": {"id": {"type": "string"}}},
        "Message": {"type": "object", "properties": {"message": {"type": "string"}}},
        "UserStatusOut": {"type": "object"},
        "HTTPValidationError": {"type": "object"},
    },
)
ORDERS = document(
    {
        **HEALTH,
        "/api/orders": {"post": operation("Create Order", body="CreateOrderRequest")},
        "/api/orders/{order_id}/cancel": {"put": operation("Cancel", response="Message")},
        "/api/admin/orders/{order_id}/status": {"put": operation("Change Status")},
        "/api/internal/update-status": {"post": operation("Update Status")},
    },
    {
        "CreateOrderRequest": {"type": "object"},
        # The same name as the auth service's, another schema: renamed.
        "Message": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
)


def test_service_paths_become_the_gateways():
    assert gateway_path("auth", "/api/login") == "/api/auth/login"
    assert gateway_path("auth", "/api/admin/users/{user_id}") == "/api/auth/admin/users/{user_id}"
    assert gateway_path("order", "/api/orders/{order_id}") == "/api/orders/{order_id}"
    assert gateway_path("order", "/api/admin/orders") == "/api/orders/admin/orders"
    assert gateway_path("payment", "/api/webhook/stripe") == "/api/payments/webhook/stripe"
    assert gateway_path("payment", "/api/admin/payments") == "/api/payments/admin/payments"
    assert gateway_path("payment", "/api/payments/{payment_id}") == "/api/payments/{payment_id}"
    assert gateway_path("product", "/api/products/{product_id}/stock") == (
        "/api/products/{product_id}/stock"
    )
    assert gateway_path("cart", "/api/cart/items/{item_id}") == "/api/cart/items/{item_id}"
    for service, path in [
        ("auth", "/health"),
        ("auth", "/metrics"),
        ("auth", "/api/internal/users/{user_id}"),
        ("product", "/api/internal/reserve"),
        ("cart", "/api/internal/cart/checkout"),
        ("order", "/api/internal/orders"),
        # A path the gateway would send elsewhere is not reachable.
        ("order", "/api/orders/admin"),
        ("product", "/api/cart"),
    ]:
        assert gateway_path(service, path) is None, (service, path)


def test_merged_document_has_the_public_routes_tagged_secured_and_with_examples():
    merged = merge_documents({"auth": AUTH, "order": ORDERS})
    assert merged["openapi"] == "3.1.0"
    assert sorted(merged["paths"]) == [
        "/api/auth/admin/users",
        "/api/auth/login",
        "/api/auth/profile",
        "/api/auth/verify",
        "/api/orders",
        "/api/orders/admin/orders/{order_id}/status",
        "/api/orders/{order_id}/cancel",
    ]
    assert [tag["name"] for tag in merged["tags"]] == ["Auth", "Orders"]
    login = merged["paths"]["/api/auth/login"]["post"]
    assert login["tags"] == ["Auth"] and "security" not in login
    assert login["operationId"] == "auth_login"
    # FastAPI's 422 is not what this system answers: 400 {"error": "Validation error"}.
    assert "422" not in login["responses"]
    invalid = login["responses"]["400"]["content"]["application/json"]
    assert invalid["example"]["error"] == "Validation error"
    assert invalid["schema"] == {"$ref": "#/components/schemas/Error"}
    assert login["requestBody"]["content"]["application/json"]["example"] == {
        "email": "john@example.com",
        "password": "password123",
    }
    answer = login["responses"]["200"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/AuthResponse"}
    assert answer["example"]["message"] == "Login successful"
    assert login["responses"]["401"]["content"]["application/json"]["example"] == {
        "error": "Invalid credentials"
    }

    profile = merged["paths"]["/api/auth/profile"]["get"]
    assert profile["security"] == [{"bearerAuth": []}]
    assert profile["responses"]["401"]["content"]["application/json"]["example"] == {
        "error": "No token provided"
    }
    assert "403" not in profile["responses"]
    users = merged["paths"]["/api/auth/admin/users"]["get"]
    assert users["security"] == [{"bearerAuth": []}]
    assert users["description"].startswith("**Admin only.**")
    assert users["responses"]["403"]["content"]["application/json"]["example"] == {
        "error": "Access denied. Admin only."
    }
    status = merged["paths"]["/api/orders/admin/orders/{order_id}/status"]["put"]
    assert status["tags"] == ["Orders"] and "403" in status["responses"]
    assert status["responses"]["503"]["content"]["application/json"]["example"] == {
        "error": "Order service unavailable"
    }
    # The verify route is public at the gateway but reads the token itself.
    assert merged["paths"]["/api/auth/verify"]["post"]["security"] == [{"bearerAuth": []}]

    schemes = merged["components"]["securitySchemes"]
    assert schemes == {"bearerAuth": {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}}
    schemas = merged["components"]["schemas"]
    # Only what the public routes use; a clash of names renamed, its references too.
    assert sorted(schemas) == [
        "AuthResponse",
        "CreateOrderRequest",
        "Error",
        "LoginRequest",
        "Orders.Message",
        "UserEnvelope",
        "UserOut",
    ]
    cancel = merged["paths"]["/api/orders/{order_id}/cancel"]["put"]
    assert cancel["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Orders.Message"
    }


def test_a_missing_service_is_said_and_the_rest_shown():
    merged = merge_documents({"auth": AUTH})
    assert "Orders" in merged["info"]["description"]
    assert "Not shown now" in merged["info"]["description"]
    assert all(path.startswith("/api/auth/") for path in merged["paths"])
    assert (
        "Not shown now"
        not in merge_documents(
            {"auth": AUTH, "order": ORDERS, "product": AUTH, "cart": AUTH, "payment": AUTH}
        )["info"]["description"]
    )


async def test_documents_are_cached_and_a_failing_service_is_retried_later(monkeypatch):
    fetched: list[str] = []
    down = {"http://order"}

    async def fetch(url: str) -> dict:
        base = url.removesuffix("/openapi.json")
        fetched.append(base)
        if base in down:
            raise ConnectionError("refused")
        return AUTH if base == "http://auth" else ORDERS

    clock = [1000.0]
    monkeypatch.setattr("api_gateway.api_docs.time.monotonic", lambda: clock[0])
    docs = ApiDocs({"auth": "http://auth", "order": "http://order"}, fetch, ttl=30)

    first = await asyncio.gather(*(docs.document() for _ in range(5)))
    assert sorted(fetched) == ["http://auth", "http://order"]  # one refresh for five readers
    assert all("/api/auth/login" in merged["paths"] for merged in first)
    assert "/api/orders" not in first[0]["paths"]

    clock[0] += 3  # within the retry delay: nobody is asked
    await docs.document()
    assert len(fetched) == 2
    clock[0] += 3  # the failed service is asked again; the other is still fresh
    down.clear()
    merged = await docs.document()
    assert fetched[2:] == ["http://order"]
    assert "/api/orders" in merged["paths"]

    clock[0] += 31  # both stale; the order service goes down again: its last one stays
    down.add("http://order")
    merged = await docs.document()
    assert sorted(fetched[3:]) == ["http://auth", "http://order"]
    assert "/api/orders" in merged["paths"]
    assert "Orders" not in merged["info"]["description"].partition("Not shown now")[2]


@pytest.fixture
def openapi_of(fake_services):
    def serve(**documents: dict) -> None:
        fake_services.openapi.update(documents)

    return serve


async def test_the_gateway_serves_the_merged_document_and_the_docs_pages(
    make_client, openapi_of, fake_services
):
    openapi_of(auth=AUTH, order=ORDERS)  # product, cart and payment answer 503
    client = await make_client()
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    merged = response.json()
    assert "/api/auth/login" in merged["paths"] and "/api/orders" in merged["paths"]
    assert "Products, Cart, Payments" in merged["info"]["description"]
    assert sorted(set(fake_services.openapi_requests)) == [
        "auth",
        "cart",
        "order",
        "payment",
        "product",
    ]

    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text and "/openapi.json" in docs.text
    redoc = await client.get("/redoc")
    assert redoc.status_code == 200 and "/openapi.json" in redoc.text
    # The gateway's other security headers apply to the docs pages too.
    assert docs.headers["x-frame-options"] == redoc.headers["x-frame-options"] == "SAMEORIGIN"
    assert "content-security-policy" in (await client.get("/health")).headers
    # The gateway's own routes (the proxy) are not in the document.
    assert "/api/{path}" not in merged["paths"]


async def test_the_docs_pages_load_everything_from_the_gateway_under_a_strict_policy(
    make_client, openapi_of
):
    openapi_of(auth=AUTH)
    client = await make_client()
    for page in ("/docs", "/redoc"):
        response = await client.get(page)
        assert response.status_code == 200
        # Every script and style the page names is the gateway's own, and is served.
        urls = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert urls, page
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            asset = await client.get(url)
            assert asset.status_code == 200 and asset.content, url
        policy = response.headers["content-security-policy"]
        assert "script-src 'self' 'nonce-" in policy and "http" not in policy
        # An inline script runs only with this response's nonce.
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        inline = re.findall(r"<script(?![^>]*src=)([^>]*)>", response.text)
        assert all(f'nonce="{nonce}"' in attributes for attributes in inline), inline
    again = await client.get("/docs")
    assert (
        again.headers["content-security-policy"]
        != (await client.get("/docs")).headers["content-security-policy"]
    )  # a new nonce per response


async def test_every_service_down_still_answers_a_document(make_client):
    with refused_port() as port:
        nowhere = f"http://127.0.0.1:{port}"
        client = await make_client(AUTH_SERVICE_URL=nowhere, PAYMENT_SERVICE_URL=nowhere)
        response = await client.get("/openapi.json")
        docs = await client.get("/docs")
    assert response.status_code == 200
    assert response.json()["paths"] == {}
    assert docs.status_code == 200
