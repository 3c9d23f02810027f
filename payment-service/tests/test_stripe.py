"""Stripe: PaymentIntents in the currency's minor unit, and webhooks believed only with a
valid signature, once per event, for the payment's amount and currency."""

import json
import logging
import time
import uuid
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import stripe

from payment_service.models import OutboxMessage, Payment, ProviderEvent
from payment_service.stripe_client import UnrepresentableAmount, from_minor_units, to_minor_units


def signed(payload: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def intent_event(event_type: str, payment, **fields) -> str:
    obj = {
        "id": payment.external_reference,
        "object": "payment_intent",
        "amount": to_minor_units(payment.amount, payment.currency),
        "amount_received": to_minor_units(payment.amount, payment.currency),
        "currency": payment.currency.lower(),
        "latest_charge": f"ch_{uuid.uuid4().hex[:12]}",
        "metadata": {"paymentId": str(payment.id)},
        **fields,
    }
    event = {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": event_type,
        "data": {"object": obj},
    }
    return json.dumps(event)


@pytest.fixture
async def stripe_payment(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="2500.50")
    response = await api.pay_stripe(headers, order_id)
    assert response.status_code == 200, response.text
    return order_id, await api.payment(response.json()["payment"]["id"])


async def post_event(api, payload: str, headers: dict[str, str]):
    return await api.client.post("/api/webhook/stripe", content=payload, headers=headers)


async def test_a_payment_intent_for_the_order_total_in_minor_units(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="2500.50")
    response = await api.pay_stripe(headers, order_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Stripe payment initiated"
    assert body["clientSecret"].startswith(body["payment"]["externalReference"])
    assert body["payment"]["status"] == "processing" and body["payment"]["provider"] == "stripe"

    [request] = world.stripe_requests
    form = parse_qs(request.content.decode())
    assert form["amount"] == ["250050"] and form["currency"] == ["kes"]
    assert form["automatic_payment_methods[enabled]"] == ["true"]
    assert form["metadata[orderId]"] == [order_id]
    assert form["metadata[userId]"] == [str(user_id)]
    assert form["metadata[paymentId]"] == [body["payment"]["id"]]
    assert request.headers["Idempotency-Key"] == f"payment-{body['payment']['id']}"
    assert request.headers["Authorization"] == "Bearer sk_test_123"


async def test_payment_method_types_replace_automatic_ones(make_settings, world, login):
    import httpx

    from payment_service.main import create_app
    from shared.testing import started

    app = create_app(make_settings(STRIPE_PAYMENT_METHOD_TYPES="card,link"))
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://payment") as client:
            user_id, headers = login()
            response = await client.post(
                "/api/payments/stripe", json={"orderId": world.add_order(user_id)}, headers=headers
            )
    assert response.status_code == 200, response.text
    form = parse_qs(world.stripe_requests[0].content.decode())
    assert form["payment_method_types[0]"] == ["card"] and form["payment_method_types[1]"] == [
        "link"
    ]
    assert "automatic_payment_methods[enabled]" not in form


async def test_the_originals_usd_example_is_refused_by_a_kes_store(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="100.00")
    response = await api.pay_stripe(headers, order_id, amount=100, currency="USD")
    assert response.status_code == 400
    assert response.json() == {"error": "Currency must be KES", "details": {"expected": "KES"}}
    assert world.stripe_requests == []
    ok = await api.pay_stripe(headers, order_id, amount=100, currency="kes")
    assert ok.status_code == 200


async def test_without_a_secret_key_stripe_is_503(make_settings, world, login):
    import httpx

    from payment_service.main import create_app
    from shared.testing import started

    app = create_app(make_settings(STRIPE_SECRET_KEY=None))
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://payment") as client:
            user_id, headers = login()
            response = await client.post(
                "/api/payments/stripe", json={"orderId": world.add_order(user_id)}, headers=headers
            )
    assert response.status_code == 503
    assert response.json() == {"error": "Stripe is not configured"}


PROVIDER_TEXT = "No such customer: 'cus_9s6XKzkNRiz8i3'; acct_1Hf7Xq live mode"


async def test_a_stripe_refusal_fails_the_payment_and_its_words_stay_in_the_log(
    api, login, world, caplog
):
    user_id, headers = login()
    world.stripe_intent_error = (
        400,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": PROVIDER_TEXT,
            }
        },
    )
    with caplog.at_level(logging.WARNING, logger="payment_service.initiation"):
        response = await api.pay_stripe(headers, world.add_order(user_id))
    assert response.status_code == 400
    assert response.json() == {"error": "Failed to create Stripe payment"}
    [payment] = await api.rows(Payment)
    assert payment.status == "failed"
    assert payment.error_message == "Stripe refused the payment"
    shown = await api.client.get(f"/api/payments/{payment.id}", headers=headers)
    assert shown.status_code == 200
    assert PROVIDER_TEXT not in shown.text and "cus_9s6" not in shown.text
    [logged] = [r for r in caplog.records if r.getMessage() == "stripe refused a payment intent"]
    assert logged.providerMessage == PROVIDER_TEXT
    assert logged.stripeCode == "resource_missing"
    assert logged.paymentId == str(payment.id)


async def test_a_signed_success_completes_the_payment_and_pays_the_order(
    api, world, stripe_payment
):
    order_id, payment = stripe_payment
    payload = intent_event("payment_intent.succeeded", payment)
    response = await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
    assert response.status_code == 200
    assert response.json() == {"received": True}
    stored = await api.payment(payment.id)
    assert stored.status == "completed" and stored.transaction_id.startswith("ch_")
    await api.deliver_outbox()
    assert world.orders[order_id]["status"] == "paid"


async def test_the_same_event_twice_changes_once(api, world, stripe_payment):
    _, payment = stripe_payment
    payload = intent_event("payment_intent.succeeded", payment)
    for _ in range(2):
        response = await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
        assert response.json() == {"received": True}
    assert len(await api.rows(OutboxMessage)) == 1
    assert len(await api.rows(ProviderEvent)) == 1


@pytest.mark.parametrize(
    "fields",
    [{"amount_received": 100}, {"currency": "usd"}],
    ids=["another amount", "another currency"],
)
async def test_a_success_that_does_not_match_completes_nothing(api, stripe_payment, fields):
    _, payment = stripe_payment
    payload = intent_event("payment_intent.succeeded", payment, **fields)
    response = await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
    assert response.status_code == 200
    assert (await api.payment(payment.id)).status == "processing"
    [event] = await api.rows(ProviderEvent)
    assert event.outcome.startswith("rejected")


async def test_a_failed_payment_fails_and_the_order_stays_payable(api, world, stripe_payment):
    order_id, payment = stripe_payment
    payload = intent_event(
        "payment_intent.payment_failed",
        payment,
        last_payment_error={"message": "Your card was declined."},
    )
    response = await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
    assert response.status_code == 200
    stored = await api.payment(payment.id)
    assert stored.status == "failed" and "declined" in stored.error_message
    await api.deliver_outbox()
    assert world.status_updates[-1]["paymentStatus"] == "failed"
    assert world.orders[order_id]["status"] == "pending"


async def test_a_canceled_intent_cancels_the_payment(api, stripe_payment):
    _, payment = stripe_payment
    payload = intent_event("payment_intent.canceled", payment, cancellation_reason="abandoned")
    await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
    assert (await api.payment(payment.id)).status == "cancelled"


async def test_a_tampered_body_is_refused(api, stripe_payment):
    _, payment = stripe_payment
    payload = intent_event("payment_intent.succeeded", payment)
    headers = signed(payload, api.stripe_webhook_secret)
    tampered = payload.replace('"amount_received": ', '"amount_received": 1')
    response = await post_event(api, tampered, headers)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid signature"}
    assert (await api.payment(payment.id)).status == "processing"


async def test_a_stale_signature_is_refused(api, stripe_payment):
    _, payment = stripe_payment
    payload = intent_event("payment_intent.succeeded", payment)
    headers = signed(payload, api.stripe_webhook_secret, timestamp=int(time.time()) - 301)
    response = await post_event(api, payload, headers)
    assert response.status_code == 400
    assert (await api.payment(payment.id)).status == "processing"


async def test_a_signature_with_another_secret_is_refused(api, stripe_payment):
    _, payment = stripe_payment
    payload = intent_event("payment_intent.succeeded", payment)
    response = await post_event(api, payload, signed(payload, "whsec_someone_else"))
    assert response.status_code == 400
    no_header = await api.client.post("/api/webhook/stripe", content=payload)
    assert no_header.status_code == 400
    assert (await api.payment(payment.id)).status == "processing"


async def test_other_event_types_are_acknowledged_and_ignored(api, stripe_payment):
    payload = json.dumps(
        {"id": "evt_other", "object": "event", "type": "customer.created", "data": {"object": {}}}
    )
    response = await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
    assert response.json() == {"received": True}
    [event] = await api.rows(ProviderEvent)
    assert event.outcome == "ignored"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("150000.00", "KES", 15000000),
        ("19.99", "usd", 1999),
        ("500", "UGX", 500),
        ("1500", "JPY", 1500),
        ("1.25", "KWD", 1250),
        ("12.30", "BHD", 12300),
        ("100", "ISK", 10000),
    ],
)
def test_minor_units(amount, currency, minor):
    assert to_minor_units(Decimal(amount), currency) == minor
    assert from_minor_units(minor, currency) == Decimal(amount).quantize(Decimal("0.01"))


@pytest.mark.parametrize(
    ("amount", "currency"), [("500.50", "UGX"), ("1.5", "JPY"), ("1.5", "ISK")]
)
def test_amounts_a_currency_cannot_carry(amount, currency):
    with pytest.raises(UnrepresentableAmount):
        to_minor_units(Decimal(amount), currency)
