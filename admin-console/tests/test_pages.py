"""The pages against a fake API: what they show, the forms' CSRF check, the API's refusals
shown on the page they came from, and the headers every page carries."""

import re
from pathlib import Path

import pytest

from admin_console.formatting import Formats
from admin_console.main import STATIC
from admin_console.views import ORDER_ACTIONS

TEMPLATES = Path(STATIC).parent / "templates"
ORDER_ID = "b90d2122-0f9c-4d8a-b025-735cc0f000ed"


def order(status: str = "paid", payment_status: str = "paid") -> dict:
    return {
        "id": ORDER_ID,
        "userId": "59da573d-8bd9-4115-9e20-e593953cce41",
        "orderNumber": "ORD-1764109325990-7K2M9QX4P",
        "status": status,
        "paymentStatus": payment_status,
        "totalAmount": "150000.00",
        "currency": "KES",
        "shippingAddress": {"street": "Moi Avenue 1", "city": "Nairobi", "country": "Kenya"},
        "paymentMethod": "mpesa",
        "notes": None,
        "createdAt": "2026-12-04T21:30:00Z",
        "items": [
            {
                "productId": "f3675b8b-6256-4c9c-9839-003ec751c3ec",
                "productName": "iPhone 15 Pro",
                "quantity": 1,
                "price": "150000.00",
                "subtotal": "150000.00",
            }
        ],
        "history": [
            {
                "from": None,
                "to": "pending",
                "at": "2026-12-04T21:30:00Z",
                "actor": "customer",
                "reason": "Order placed",
                "paymentStatus": "pending",
            },
            {
                "from": "pending",
                "to": "paid",
                "at": "2026-12-04T21:31:00Z",
                "actor": "payment",
                "reason": None,
                "paymentStatus": "paid",
            },
        ],
    }


PAYMENT = {
    "id": "41728e00-d9e2-4d96-9d5a-94d3eee545ef",
    "orderId": ORDER_ID,
    "provider": "mpesa",
    "amount": "150000.00",
    "currency": "KES",
    "status": "completed",
    "transactionId": "QKX7Y2ZABC",
    "externalReference": "ws_CO_26112026012206903091279517",
    "phoneNumber": "254708374149",
    "metadata": {"merchantRequestId": "29115-34620561-1"},
    "refundedAmount": "0.00",
    "createdAt": "2026-12-04T21:30:30Z",
}


@pytest.fixture
def an_order(fake_gateway):
    def show(status="paid", payment_status="paid"):
        fake_gateway.answer(
            "GET", f"/api/orders/admin/orders/{ORDER_ID}", {"order": order(status, payment_status)}
        )
        fake_gateway.answer("GET", "/api/payments/admin/payments", {"payments": [PAYMENT]})
        fake_gateway.answer(
            "GET",
            "/api/auth/admin/users/59da573d-8bd9-4115-9e20-e593953cce41",
            {"user": {"name": "John Doe", "email": "john@example.com", "phoneNumber": None}},
        )

    return show


def test_money_and_time_as_the_shop_shows_them():
    from zoneinfo import ZoneInfo

    fmt = Formats(locale="en_KE", zone=ZoneInfo("Africa/Nairobi"), currency="KES")
    assert fmt.money("150000.00") == "Ksh150,000.00"
    assert fmt.money("1500.5", "USD") == "US$1,500.50"
    assert fmt.money(None) == "-"
    # 21:30 UTC is half past midnight the next day in Nairobi.
    assert fmt.moment("2026-12-04T21:30:00Z") == "5 Dec 2026, 00:30"
    assert fmt.local_date("2026-12-04T21:30:00Z") == "2026-12-05"


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        ("pending", ["Cancel the order"]),
        ("paid", ["Mark processing", "Cancel the order"]),
        ("processing", ["Mark shipped", "Cancel the order"]),
        ("shipped", ["Mark delivered"]),
        ("delivered", []),
        ("cancelled", []),
    ],
)
async def test_an_order_offers_only_what_its_lifecycle_allows(signed_in, an_order, status, buttons):
    console, _ = signed_in
    an_order(status)
    page = await console.get(f"/admin/orders/{ORDER_ID}")
    assert page.status_code == 200
    actions = page.text.split('id="actions-title"')[1].split("</section>")[0] if buttons else ""
    assert re.findall(r'<button type="submit"[^>]*>([^<]+)</button>', actions) == buttons
    assert [name for _, name in ORDER_ACTIONS.get(status, ())] == buttons
    assert "Ksh150,000.00" in page.text
    assert "5 Dec 2026, 00:30" in page.text  # placed, in Nairobi time
    assert "QKX7Y2ZABC" in page.text and "John Doe" in page.text


async def test_a_refused_change_is_shown_with_the_apis_message(signed_in, an_order, fake_gateway):
    console, csrf = signed_in
    an_order("shipped")
    fake_gateway.answer(
        "PUT",
        f"/api/orders/admin/orders/{ORDER_ID}/status",
        (409, {"error": "Cannot change order from shipped to cancelled"}),
    )
    response = await console.post(
        f"/admin/orders/{ORDER_ID}/status", data={"csrf_token": csrf, "status": "cancelled"}
    )
    assert response.status_code == 409
    assert 'role="alert">Cannot change order from shipped to cancelled<' in response.text


async def test_a_refund_sends_what_the_admin_chose(signed_in, an_order, fake_gateway):
    console, csrf = signed_in
    an_order()
    fake_gateway.answer("POST", f"/api/payments/{PAYMENT['id']}/refund", {"message": "ok"})
    missing = await console.post(
        f"/admin/orders/{ORDER_ID}/refund",
        data={"csrf_token": csrf, "payment_id": PAYMENT["id"], "provider": "mpesa"},
    )
    assert missing.status_code == 400
    assert "Say why the money goes back." in missing.text
    assert "The M-Pesa portal&#39;s reference of the reversal." in missing.text
    done = await console.post(
        f"/admin/orders/{ORDER_ID}/refund",
        data={
            "csrf_token": csrf,
            "payment_id": PAYMENT["id"],
            "provider": "mpesa",
            "amount": "75000",
            "reason": "Half returned",
            "reference": "QKR9REFUND",
        },
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/orders/{ORDER_ID}?notice=refunded"
    sent = fake_gateway.last(f"/api/payments/{PAYMENT['id']}/refund")
    assert sent.read() == (
        b'{"reason":"Half returned","amount":"75000","manual":true,"reference":"QKR9REFUND"}'
    )


async def test_product_errors_are_next_to_their_fields(signed_in, fake_gateway):
    console, csrf = signed_in
    fake_gateway.answer(
        "POST",
        "/api/products",
        (
            400,
            {
                "error": "Validation error",
                "details": [
                    {"field": "price", "message": "must have at most 2 decimal places"},
                    {"field": "imageUrl", "message": "Input should be a valid URL"},
                ],
            },
        ),
    )
    response = await console.post(
        "/admin/products/new",
        data={"csrf_token": csrf, "name": "Kettle", "price": "1.234", "imageUrl": "nope"},
    )
    assert response.status_code == 400
    assert 'aria-describedby="price-error"' in response.text
    assert '<p class="field-error" id="price-error">must have at most 2 decimal places</p>' in (
        response.text
    )
    assert 'id="imageUrl-error">Input should be a valid URL<' in response.text
    assert 'value="Kettle"' in response.text  # what was typed stays


async def test_a_form_without_its_csrf_token_is_refused(signed_in, fake_gateway):
    console, csrf = signed_in
    for data in ({"name": "x"}, {"name": "x", "csrf_token": "another-" + csrf}):
        response = await console.post("/admin/products/new", data=data)
        assert response.status_code == 403
        assert "Form refused" in response.text
    assert fake_gateway.requests == []  # nothing reached the API
    # Signing in needs it too (no logging a browser in to someone else's account).
    assert (await console.post("/admin/login", data={"email": "a@b.c"})).status_code == 403


async def test_the_overview_draws_the_revenue_and_says_what_failed(signed_in, fake_gateway):
    console, _ = signed_in
    days = [
        {"date": f"2026-12-0{day}", "orders": day, "paidOrders": 1, "revenue": f"{day}000.00"}
        for day in range(1, 8)
    ]
    fake_gateway.answer(
        "GET",
        "/api/orders/admin/stats",
        {"timezone": "Africa/Nairobi", "currency": "KES", "byStatus": {"pending": 2}, "days": days},
    )
    fake_gateway.answer("GET", "/api/payments/admin/stats", {"groups": []})
    fake_gateway.answer("GET", "/api/products", {"products": [], "totalProducts": 0})
    fake_gateway.answer(
        "GET", "/api/payments/admin/reconciliation", (503, {"error": "Order service unavailable"})
    )
    page = await console.get("/admin/")
    assert page.status_code == 200
    assert page.text.count('<rect class="bar"') == 7
    assert "Ksh7,000.00" in page.text  # today
    assert "Ksh28,000.00" in page.text  # the week
    assert "The report could not be made: Order service unavailable" in page.text
    asked = fake_gateway.last("/api/orders/admin/stats").url.params
    assert asked["timezone"] == "Africa/Nairobi" and asked["days"] == "7"
    low = fake_gateway.last("/api/products").url.params
    assert low["maxStock"] == "5" and low["sort"] == "stock_asc"


async def test_orders_by_customer_email(signed_in, fake_gateway):
    console, _ = signed_in
    fake_gateway.answer(
        "GET",
        "/api/auth/admin/users",
        {"users": [{"id": "u-9", "name": "Wanjiru", "email": "wanjiru@example.com"}]},
    )
    fake_gateway.answer(
        "GET",
        "/api/orders/admin/orders",
        {"orders": [], "totalOrders": 0, "totalPages": 0, "currentPage": 1},
    )
    page = await console.get(
        "/admin/orders", params={"q": "Wanjiru@Example.com", "from": "2026-12-01", "to": "bad"}
    )
    assert "Orders of Wanjiru (wanjiru@example.com)" in page.text
    asked = fake_gateway.last("/api/orders/admin/orders").url.params
    assert asked["userId"] == "u-9"
    assert asked["from"] == "2026-12-01T00:00:00+03:00" and "to" not in asked
    unknown = await console.get("/admin/orders", params={"q": "nobody@example.com"})
    assert "No customer has the email nobody@example.com." in unknown.text


async def test_the_last_admin_is_protected_with_the_apis_message(signed_in, fake_gateway):
    console, csrf = signed_in
    fake_gateway.answer(
        "GET",
        "/api/auth/admin/users",
        {"users": [], "totalUsers": 0, "totalPages": 0, "currentPage": 1},
    )
    user_id = "59da573d-8bd9-4115-9e20-e593953cce41"
    fake_gateway.answer(
        "PUT", f"/api/auth/admin/users/{user_id}", (400, {"error": "Cannot demote the last admin"})
    )
    response = await console.post(
        f"/admin/users/{user_id}",
        data={"csrf_token": csrf, "change": "demote", "back": "search=adm&page=2"},
    )
    assert response.status_code == 400
    assert 'role="alert">Cannot demote the last admin<' in response.text
    assert fake_gateway.last("/api/auth/admin/users").url.params["search"] == "adm"


async def test_every_page_has_the_strict_policy_and_no_inline_script(signed_in, fake_gateway):
    console, _ = signed_in
    for path in ("/admin/login", "/admin/static/console.css", "/admin/nowhere"):
        response = await console.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    missing = await console.get("/admin/nowhere")
    assert missing.status_code == 404 and "There is no such page" in missing.text
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name
        assert " style=" not in text, template.name


async def test_an_unexpected_failure_is_a_page_with_a_reference(signed_in, fake_gateway):
    console, _ = signed_in
    fake_gateway.answer("GET", "/api/payments/admin/payments", {"unexpected": "shape"})
    response = await console.get("/admin/payments")
    assert response.status_code == 500
    assert "Something went wrong" in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] in response.text


async def test_health_and_readiness(make_console, fake_gateway):
    console = await make_console()
    health = await console.get("/health")
    assert health.status_code == 200 and health.json()["service"] == "Admin Console"
    # Ready only when the API it is made of answers.
    assert (await console.get("/ready")).status_code == 503
    fake_gateway.answer("GET", "/health", {"status": "OK"})
    assert (await console.get("/ready")).json() == {"status": "ready", "service": "Admin Console"}
    assert "http_requests" in (await console.get("/metrics")).text


async def test_an_id_that_is_no_id_is_a_missing_page_and_odd_input_a_400(signed_in, fake_gateway):
    console, csrf = signed_in
    for path in ("/admin/orders/not-an-id", "/admin/payments/1%3Fx=1", "/admin/products/%2e%2e"):
        response = await console.get(path)
        assert response.status_code == 404, path
        assert "There is no such page in the console." in response.text
    assert fake_gateway.requests == []
    product_id = "f3675b8b-6256-4c9c-9839-003ec751c3ec"
    fake_gateway.answer(
        "GET",
        f"/api/products/{product_id}",
        {
            "product": {
                "id": product_id,
                "name": "Kettle",
                "price": "10.00",
                "stock": 3,
                "isActive": True,
                "updatedAt": "2026-12-04T21:30:00Z",
            }
        },
    )
    fake_gateway.answer(
        "PATCH",
        f"/api/products/{product_id}/stock",
        (400, {"error": "Validation error", "details": [{"field": "delta", "message": "bad"}]}),
    )
    odd = await console.post(
        f"/admin/products/{product_id}/stock", data={"csrf_token": csrf, "delta": "--5"}
    )
    assert odd.status_code == 400 and 'id="delta-error">bad<' in odd.text
    assert fake_gateway.last(f"/api/products/{product_id}/stock").read() == b'{"delta":"--5"}'
    too_long = await console.post(
        f"/admin/products/{product_id}/stock", data={"csrf_token": csrf, "delta": "9" * 30}
    )
    assert too_long.status_code == 400 and "These fields are not as expected: delta." in (
        too_long.text
    )
