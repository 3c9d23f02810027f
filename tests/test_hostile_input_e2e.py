"""Each input the fuzzer turned into a 500 (issue 10), through the gateway of the real
stack: now the documented 4xx in the original's error format, and nothing written."""

import http.client
import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e

ADDRESS = {"street": "Moi Avenue 1", "city": "Nairobi", "country": "Kenya", "postalCode": "00100"}
UNSTORABLE = "must not contain a NUL character or an unpaired surrogate"


def validation_field(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "Validation error"
    return body["details"][0]["field"]


def raw_request(stack, method: str, target: str, headers: dict[str, bytes]) -> tuple[int, str]:
    """A request as bytes on the wire: httpx would refuse to send some of these."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports["gateway"], timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.parametrize("escape", ["%00", "%0E", "%1F", "%7F", "%0e%01"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/products/{}",
        "/api/orders/{}",
        "/api/orders/{}/cancel",
        "/api/payments/{}",
        "/api/cart/items/{}",
        "/api/auth/admin/users/{}",
    ],
)
def test_a_control_character_in_a_proxied_path_is_the_services_own_4xx(gateway, shop, path, escape):
    """The gateway forwards the path as sent; the service answers (a 404 for an id that
    names nothing, a 400 where the id must be a UUID), as it does when called directly."""
    method = "PUT" if path.endswith("cancel") or "admin" in path else "GET"
    if path.startswith("/api/cart"):
        method = "DELETE"
    response = gateway.request(method, path.format(escape), headers=shop.admin)
    assert response.status_code in (400, 404), response.text
    assert "error" in response.json()


def test_a_header_that_is_not_ascii_reaches_the_service_and_is_judged_there(stack, shop):
    token = shop.customer["Authorization"].encode()
    status, body = raw_request(
        stack,
        "GET",
        "/api/products?limit=1",
        {"User-Agent": "café".encode(), "Authorization": token},
    )
    assert status == 200, body
    status, body = raw_request(
        stack,
        "POST",
        "/api/orders",
        {
            "Authorization": token,
            "Idempotency-Key": "café".encode(),
            "Content-Length": b"0",
        },
    )
    assert status == 400, body
    assert '"field":"Idempotency-Key"' in body


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"search": "a\x00b"}, "search"),
        ({"category": "\x00"}, "category"),
        ({"maxPrice": "1e26"}, "maxPrice"),
        ({"minPrice": "1e308"}, "minPrice"),
    ],
)
def test_catalogue_queries(gateway, params, field):
    assert validation_field(gateway.get("/api/products", params=params)) == field


def test_a_nul_in_the_accounts_text(gateway, shop):
    email = f"nul-{uuid.uuid4().hex[:8]}@example.com"
    registered = gateway.post(
        "/api/auth/register", json={"name": "a\x00b", "email": email, "password": "password123"}
    )
    assert validation_field(registered) == "name"
    assert registered.json()["details"][0]["message"] == UNSTORABLE
    login = gateway.post("/api/auth/login", json={"email": "a\x00@b.com", "password": "x" * 8})
    assert validation_field(login) == "email"
    profile = gateway.put("/api/auth/profile", json={"name": "\x00"}, headers=shop.customer)
    assert validation_field(profile) == "name"
    # Nothing was written: the account does not exist.
    assert (
        gateway.post(
            "/api/auth/login", json={"email": email, "password": "password123"}
        ).status_code
        == 401
    )


def test_a_nul_or_a_lone_surrogate_in_an_order(gateway, shop):
    before = gateway.get("/api/orders", headers=shop.customer).json()["totalOrders"]
    for body in (
        b'{"shippingAddress": {"street": "a", "city": "b", "country": "c", "postalCode": "1"},'
        b' "notes": "leave at the gate\\u0000"}',
        b'{"shippingAddress": {"street": "\\ud800", "city": "b", "country": "c",'
        b' "postalCode": "1"}}',
    ):
        response = gateway.post(
            "/api/orders",
            content=body,
            headers={**shop.customer, "Content-Type": "application/json"},
        )
        assert validation_field(response) in ("notes", "shippingAddress.street")
    assert gateway.get("/api/orders", headers=shop.customer).json()["totalOrders"] == before


@pytest.mark.parametrize("amount", [1e26, "1e26", 1e308, "1E+400"])
def test_money_too_large_is_a_400(gateway, shop, amount):
    order_id = str(uuid.uuid4())
    for path, body in (
        ("/api/payments/stripe", {"orderId": order_id, "amount": amount}),
        (
            "/api/payments/mpesa",
            {"orderId": order_id, "phoneNumber": "0712345678", "amount": amount},
        ),
    ):
        assert validation_field(gateway.post(path, json=body, headers=shop.customer)) == "amount"
    product = {"name": "Too dear", "price": amount, "stock": 1}
    response = gateway.post("/api/products", json=product, headers=shop.admin)
    assert validation_field(response) == "price"
    refund = gateway.post(
        f"/api/payments/{uuid.uuid4()}/refund", json={"amount": amount}, headers=shop.admin
    )
    assert validation_field(refund) == "amount"


@pytest.mark.parametrize("moment", ["0.5", "1700000000", "2026-01-01T00:00:00", "yesterday"])
def test_a_date_time_query_is_iso_8601_with_a_timezone(gateway, shop, moment):
    for path in ("/api/payments/admin/payments", "/api/payments/admin/reconciliation"):
        response = gateway.get(path, params={"to": moment}, headers=shop.admin)
        assert validation_field(response) == "to"
    fine = gateway.get(
        "/api/payments/admin/payments", params={"to": "2026-01-01T00:00:00Z"}, headers=shop.admin
    )
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize(
    ("path", "allowed", "who"),
    [
        ("/api/cart", "DELETE, GET, HEAD", "customer"),
        ("/api/products", "GET, HEAD, POST", "admin"),
        ("/api/orders", "GET, HEAD, POST", "customer"),
        ("/api/auth/profile", "GET, HEAD, PUT", "customer"),
    ],
)
def test_a_405_names_every_method_of_the_path(gateway, shop, path, allowed, who):
    response = gateway.request("OPTIONS", path, headers=getattr(shop, who))
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.json() == {"error": "Method not allowed"}


def test_a_method_no_route_has_is_405_for_a_customer_too(gateway, shop):
    """PATCH on a product (only its /stock takes PATCH) is no admin route the gateway
    guards: the customer learns the path's methods, as an admin does, not a 403."""
    product_id = shop.order()["items"][0]["productId"]
    for who in ("customer", "admin"):
        response = gateway.patch(
            f"/api/products/{product_id}", json={"price": "1.00"}, headers=getattr(shop, who)
        )
        assert response.status_code == 405, (who, response.text)
        assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"
    # The admin's own routes stay the admin's.
    stock = gateway.patch(
        f"/api/products/{product_id}/stock", json={"delta": 1}, headers=shop.customer
    )
    assert stock.status_code == 403, stock.text


def test_head_is_answered_like_get_without_a_body(gateway, shop):
    for path, headers in (
        ("/api/products?limit=2", {}),
        ("/api/cart", shop.customer),
        ("/health", {}),
    ):
        got = gateway.get(path, headers=headers)
        head = gateway.head(path, headers=headers)
        assert (head.status_code, got.status_code) == (200, 200), path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
    assert gateway.head("/api/orders").status_code == 401
