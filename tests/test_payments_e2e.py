"""Payments end to end: the real processes (`make run`'s supervisor), M-Pesa against the
local Daraja simulator, everything through the gateway.

Needs the product and order services (their own branches): with only the skeletons of
those, these tests fail at the first order.
"""

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid

import httpx
import pytest
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from scripts.throwaway_stack import drop_stack_databases
from tests.conftest import (
    ADMIN,
    LOST_CALLBACK_PHONE,
    NEVER_ANSWERED_PHONE,
    SUCCESS_PHONE,
    Shop,
    is_ready,
    port_is_open,
    stack_environment,
    start_stack,
    wait_until,
)

pytestmark = pytest.mark.e2e


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

    fake_stripe.succeed(intent)  # the customer paid: Stripe says so, and sends its event
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


def failed_outbox_deliveries(env: dict[str, str]) -> int:
    """Attempts of the payment service's outbox that failed (its own database)."""

    async def count() -> int:
        engine = create_async_engine(env["PAYMENT_DATABASE_URL"])
        try:
            async with engine.connect() as connection:
                query = "SELECT count(*) FROM outbox_messages WHERE last_error IS NOT NULL"
                return (await connection.execute(text(query))).scalar_one()
        finally:
            await engine.dispose()

    return asyncio.run(count())


def test_order_service_stopped_during_settlement_pays_the_order_once(postgres_url):
    """A stack without its order service (STACK_SKIP): this test runs that one process
    itself, stops it while the payment settles and starts it again."""
    environment = stack_environment(
        postgres_url,
        STACK_SKIP="order",
        RATE_LIMIT_ENABLED="false",
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
        USER_STATUS_TTL="1",
        MPESA_SIMULATOR_CALLBACK_DELAY="3",
    )

    def start_order_service() -> subprocess.Popen:
        """On the order port this test holds (refused while the service is down)."""
        process = environment.start_service(
            "order",
            environment.service_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: is_ready(environment.url("order")), 60, "the order service")
        return process

    order_service = None
    stack = None
    try:
        # The stack migrates the order database and starts everything else.
        stack = start_stack(environment)
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
            # The outbox tries to tell the order service, fails, backs off.
            wait_until(
                lambda: failed_outbox_deliveries(environment.env) > 0,
                60,
                "a failed delivery to the order service",
            )
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
        environment.close()
        drop_stack_databases(environment.env)
