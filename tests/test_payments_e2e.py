"""Payments end to end: the real processes (`make run`'s supervisor), M-Pesa against the
local Daraja simulator, everything through the gateway.

Needs the product and order services (their own branches): with only the skeletons of
those, these tests fail at the first order.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import stripe

from scripts.services import ROOT, present_services
from tests.conftest import drop_stack_databases, port_is_open, stack_environment, start_stack

pytestmark = pytest.mark.e2e

ADMIN = {"email": "admin@shop.example.com", "password": "admin-password-123"}
SUCCESS_PHONE = "0708374149"  # Daraja's sandbox number: pays
LOST_CALLBACK_PHONE = "254700000005"
NEVER_ANSWERED_PHONE = "254700000006"


def wait_until(check: Callable[[], object], timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.25)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Shop:
    """A customer and an admin using the shop through the gateway."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        login = client.post("/api/auth/login", json=ADMIN)
        assert login.status_code == 200, login.text
        self.admin = auth(login.json()["token"])
        email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
        registered = client.post(
            "/api/auth/register",
            json={"name": "Buyer", "email": email, "password": "password123"},
        )
        assert registered.status_code == 201, registered.text
        self.customer = auth(registered.json()["token"])

    def order(self, price: str = "1500.00") -> dict:
        product = self.client.post(
            "/api/products",
            json={
                "name": f"Phone {uuid.uuid4().hex[:6]}",
                "description": "A phone",
                "price": price,
                "stock": 10,
                "category": "electronics",
                "sku": f"SKU-{uuid.uuid4().hex[:10]}",
            },
            headers=self.admin,
        )
        assert product.status_code == 201, product.text
        product_id = product.json()["product"]["id"]
        # The port's checkout may take the cart; the original's body names the items too.
        self.client.post(
            "/api/cart/items", json={"productId": product_id, "quantity": 1}, headers=self.customer
        )
        created = self.client.post(
            "/api/orders",
            json={
                "items": [{"productId": product_id, "quantity": 1}],
                "shippingAddress": {
                    "street": "Moi Avenue 1",
                    "city": "Nairobi",
                    "country": "Kenya",
                    "postalCode": "00100",
                },
            },
            headers=self.customer,
        )
        assert created.status_code == 201, created.text
        order = created.json()["order"]
        assert order["totalAmount"] == price
        return order

    def get_order(self, order_id: str) -> dict:
        response = self.client.get(f"/api/orders/{order_id}", headers=self.customer)
        assert response.status_code == 200, response.text
        return response.json()["order"]

    def get_payment(self, payment_id: str) -> dict:
        response = self.client.get(f"/api/payments/{payment_id}", headers=self.customer)
        assert response.status_code == 200, response.text
        return response.json()["payment"]

    def pay_mpesa(self, order_id: str, phone: str) -> dict:
        response = self.client.post(
            "/api/payments/mpesa",
            json={"orderId": order_id, "phoneNumber": phone},
            headers=self.customer,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def payment_settles(self, payment_id: str, timeout: float = 30) -> dict:
        return wait_until(
            lambda: (
                (p := self.get_payment(payment_id))["status"] not in ("pending", "processing") and p
            ),
            timeout,
            "the payment to settle",
        )

    def order_reaches(self, order_id: str, field: str, value: str, timeout: float = 30) -> dict:
        return wait_until(
            lambda: (o := self.get_order(order_id))[field] == value and o,
            timeout,
            f"order {field} {value}",
        )


@pytest.fixture
def shop(gateway):
    return Shop(gateway)


def test_make_run_started_the_simulator_and_said_so(stack):
    output = stack.output()
    assert "using the local M-Pesa simulator" in output
    assert "254700000002  cancelled by the user" in output
    assert port_is_open(stack.ports["mpesa-simulator"])


def test_mpesa_checkout_through_the_simulator_pays_the_order(shop):
    order = shop.order("1500.00")
    started = shop.pay_mpesa(order["id"], SUCCESS_PHONE)
    assert started["message"] == "M-Pesa payment initiated. Please check your phone."
    payment = shop.payment_settles(started["payment"]["id"])
    assert payment["status"] == "completed"
    assert payment["transactionId"] and payment["amount"] == "1500.00"
    paid = shop.order_reaches(order["id"], "status", "paid")
    assert paid["paymentStatus"] == "paid"
    again = shop.client.post(
        "/api/payments/mpesa",
        json={"orderId": order["id"], "phoneNumber": SUCCESS_PHONE},
        headers=shop.customer,
    )
    assert again.status_code == 400
    assert again.json() == {"error": "Order is already paid"}


@pytest.mark.parametrize(
    ("phone", "status"),
    [
        ("254700000001", "failed"),  # insufficient funds
        ("254700000002", "cancelled"),  # cancelled by the user
        ("254700000003", "cancelled"),  # user cannot be reached
        ("254700000004", "failed"),  # wrong PIN
    ],
)
def test_each_failure_leaves_the_order_payable(shop, phone, status):
    order = shop.order("700.00")
    started = shop.pay_mpesa(order["id"], phone)
    payment = shop.payment_settles(started["payment"]["id"])
    assert payment["status"] == status and payment["errorMessage"]
    failed = shop.order_reaches(order["id"], "paymentStatus", "failed")
    assert failed["status"] == "pending"
    retry = shop.pay_mpesa(order["id"], SUCCESS_PHONE)
    assert shop.payment_settles(retry["payment"]["id"])["status"] == "completed"
    shop.order_reaches(order["id"], "status", "paid")


def test_a_lost_callback_is_settled_by_reconciliation(shop):
    order = shop.order("900.00")
    started = shop.pay_mpesa(order["id"], LOST_CALLBACK_PHONE)
    payment = shop.payment_settles(started["payment"]["id"], timeout=40)
    assert payment["status"] == "completed"
    assert payment["metadata"]["settledBy"] == "stk_query"
    shop.order_reaches(order["id"], "status", "paid")


def test_forged_callbacks_through_the_gateway_pay_nothing(shop, stack):
    order = shop.order("1200.00")
    started = shop.pay_mpesa(order["id"], NEVER_ANSWERED_PHONE)
    checkout_id = started["checkoutRequestId"]
    forged = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "forged",
                "CheckoutRequestID": checkout_id,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": 1200},
                        {"Name": "MpesaReceiptNumber", "Value": "FORGED0001"},
                        {"Name": "PhoneNumber", "Value": 254700000006},
                    ]
                },
            }
        }
    }
    client = shop.client
    no_secret = client.post("/api/payments/webhook/mpesa", json=forged)
    assert no_secret.status_code == 403
    wrong = client.post("/api/payments/webhook/mpesa/not-the-secret", json=forged)
    assert wrong.status_code == 403
    path = f"/api/payments/webhook/mpesa/{stack.env['MPESA_CALLBACK_SECRET']}"
    unknown = json.loads(json.dumps(forged))
    unknown["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_unknown"
    assert client.post(path, json=unknown).json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    # With the secret (leaked, say), a success Daraja never reported: STK Query denies it.
    assert client.post(path, json=forged).json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    payment = shop.get_payment(started["payment"]["id"])
    assert payment["status"] == "processing" and payment["transactionId"] is None
    assert shop.get_order(order["id"])["status"] == "pending"


# --- Stripe ----------------------------------------------------------------------------


class FakeStripe(BaseHTTPRequestHandler):
    """The part of Stripe's API the payment service calls (it has no network here)."""

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        path = urlparse(self.path).path
        if path == "/v1/payment_intents":
            intent = f"pi_{uuid.uuid4().hex[:16]}"
            body = {
                "id": intent,
                "object": "payment_intent",
                "amount": int(form["amount"][0]),
                "currency": form["currency"][0],
                "client_secret": f"{intent}_secret_e2e",
                "status": "requires_payment_method",
            }
        else:
            self.send_response(404)
            self.end_headers()
            return
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def fake_stripe(stack):
    port = urlparse(stack.env["STRIPE_API_BASE"]).port
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeStripe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield
    server.shutdown()
    server.server_close()


def stripe_event(event_type: str, intent_id: str, amount: int, **fields) -> str:
    obj = {
        "id": intent_id,
        "object": "payment_intent",
        "amount_received": amount,
        "currency": "kes",
        "latest_charge": f"ch_{uuid.uuid4().hex[:12]}",
        **fields,
    }
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": event_type,
            "data": {"object": obj},
        }
    )


def post_stripe(client, payload: str, secret: str, timestamp: int | None = None):
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return client.post(
        "/api/payments/webhook/stripe",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def test_stripe_webhooks_through_the_gateway(shop, stack, fake_stripe):
    secret = stack.env["STRIPE_WEBHOOK_SECRET"]
    order = shop.order("2500.00")
    started = shop.client.post(
        "/api/payments/stripe", json={"orderId": order["id"]}, headers=shop.customer
    )
    assert started.status_code == 200, started.text
    assert started.json()["clientSecret"].endswith("_secret_e2e")
    intent = started.json()["payment"]["externalReference"]
    payload = stripe_event("payment_intent.succeeded", intent, 250000)

    tampered = payload.replace("250000", "250001")
    assert post_stripe(shop.client, payload, "whsec_wrong").status_code == 400
    stale = post_stripe(shop.client, payload, secret, timestamp=int(time.time()) - 600)
    assert stale.status_code == 400
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    forged = shop.client.post(
        "/api/payments/webhook/stripe", content=tampered, headers={"Stripe-Signature": header}
    )
    assert forged.status_code == 400 and forged.json() == {"error": "Invalid signature"}
    assert shop.get_payment(started.json()["payment"]["id"])["status"] == "processing"

    ok = post_stripe(shop.client, payload, secret)
    assert ok.status_code == 200 and ok.json() == {"received": True}
    assert post_stripe(shop.client, payload, secret).json() == {"received": True}  # again
    assert shop.get_payment(started.json()["payment"]["id"])["status"] == "completed"
    shop.order_reaches(order["id"], "status", "paid")

    other = shop.order("300.00")
    second = shop.client.post(
        "/api/payments/stripe", json={"orderId": other["id"]}, headers=shop.customer
    ).json()
    failed = stripe_event(
        "payment_intent.payment_failed",
        second["payment"]["externalReference"],
        0,
        last_payment_error={"message": "Your card was declined."},
    )
    assert post_stripe(shop.client, failed, secret).status_code == 200
    assert shop.get_payment(second["payment"]["id"])["status"] == "failed"
    assert shop.order_reaches(other["id"], "paymentStatus", "failed")["status"] == "pending"


# --- the order service down while a payment settles ------------------------------------------


def test_order_service_stopped_during_settlement_pays_the_order_once(postgres_url):
    """A stack without its order service (STACK_SKIP): this test runs that one process
    itself, stops it while the payment settles and starts it again."""
    env, ports = stack_environment(
        postgres_url,
        STACK_SKIP="order",
        RATE_LIMIT_ENABLED="false",
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
        USER_STATUS_TTL="1",
        MPESA_SIMULATOR_CALLBACK_DELAY="3",
    )
    order_env = {
        **env,
        **{s.url_env: f"http://127.0.0.1:{ports[s.name]}" for s in present_services()},
        **{s.port_env: str(ports[s.name]) for s in present_services()},
        "PYTHONUNBUFFERED": "1",
    }

    def start_order_service() -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "order_service"],
            cwd=ROOT,
            env=order_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: port_is_open(ports["order"]), 60, "the order service")
        return process

    order_service = None
    stack = None
    try:
        # The stack migrates the order database and starts everything else.
        stack = start_stack(env, ports)
        assert "not starting order (STACK_SKIP)" in stack.output()
        order_service = start_order_service()

        with httpx.Client(base_url=stack.gateway, timeout=30) as client:
            shop = Shop(client)
            order = shop.order("1500.00")
            started = shop.pay_mpesa(order["id"], SUCCESS_PHONE)
            # The customer is entering the PIN: the order service goes down.
            os.killpg(order_service.pid, signal.SIGTERM)
            order_service.wait(timeout=30)
            payment = shop.payment_settles(started["payment"]["id"])
            assert payment["status"] == "completed"
            time.sleep(3)  # the outbox tries, fails, backs off
            order_service = start_order_service()
            paid = shop.order_reaches(order["id"], "status", "paid", timeout=60)
            assert paid["paymentStatus"] == "paid"
            # Exactly once: one paying payment, the order's payments list has it once.
            payments = client.get(f"/api/payments/order/{order['id']}", headers=shop.customer)
            assert [p["status"] for p in payments.json()["payments"]] == ["completed"]
    finally:
        if order_service is not None and order_service.poll() is None:
            os.killpg(order_service.pid, signal.SIGTERM)
            order_service.wait(timeout=30)
        if stack is not None:
            stack.stop()
        drop_stack_databases(env)
