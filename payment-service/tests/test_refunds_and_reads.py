"""Refunds (Stripe through its API, M-Pesa recorded by hand), never more than was paid;
reads of one's own payments; the admin list."""

import json
import logging
import uuid
from urllib.parse import parse_qs

import pytest
import stripe

from payment_service.models import Refund


@pytest.fixture
async def paid_stripe(api, login, world):
    """A completed Stripe payment of 1000.00 KES (its success event signed and received)."""
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1000.00")
    response = await api.pay_stripe(headers, order_id)
    payment = await api.payment(response.json()["payment"]["id"])
    event = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:12]}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": payment.external_reference,
                    "object": "payment_intent",
                    "amount_received": 100000,
                    "currency": "kes",
                    "latest_charge": "ch_1",
                }
            },
        }
    )
    header = stripe.WebhookSignature.generate_signature_header(event, api.stripe_webhook_secret)
    await api.client.post(
        "/api/webhook/stripe", content=event, headers={"Stripe-Signature": header}
    )
    await api.deliver_outbox()
    assert (await api.payment(payment.id)).status == "completed"
    return order_id, payment.id, headers


@pytest.fixture
async def paid_mpesa(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1500.00")
    body = await api.mpesa_processing(headers, order_id)
    await api.callback(api.callback_body(body["checkoutRequestId"]))
    return order_id, body["payment"]["id"]


async def refund(api, admin, payment_id, **body):
    return await api.client.post(f"/api/payments/{payment_id}/refund", json=body, headers=admin)


async def test_a_full_stripe_refund_refunds_the_order(api, login, world, paid_stripe):
    order_id, payment_id, _ = paid_stripe
    _, admin = login("admin")
    response = await refund(api, admin, payment_id, reason="Customer changed their mind")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Refund created"
    assert body["refund"]["amount"] == "1000.00" and body["refund"]["status"] == "succeeded"
    assert body["payment"]["status"] == "refunded"
    assert body["payment"]["refundedAmount"] == "1000.00"
    refund_request = world.stripe_requests[-1]
    form = parse_qs(refund_request.content.decode())
    assert form["amount"] == ["100000"]
    assert refund_request.headers["Idempotency-Key"] == f"refund-{body['refund']['id']}"
    await api.deliver_outbox()
    assert world.orders[order_id]["paymentStatus"] == "refunded"


async def test_a_refund_stripe_refuses_fails_and_its_words_stay_in_the_log(
    api, login, world, paid_stripe, caplog
):
    _, payment_id, _ = paid_stripe
    _, admin = login("admin")
    provider_text = "Charge ch_1 has been disputed; acct_1Hf7Xq cannot refund it"
    world.stripe_refund_error = (
        400,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "charge_disputed",
                "message": provider_text,
            }
        },
    )
    with caplog.at_level(logging.WARNING, logger="payment_service.refunds"):
        response = await refund(api, admin, payment_id)
    assert response.status_code == 400
    assert response.json() == {"error": "Failed to refund Stripe payment"}
    [row] = await api.rows(Refund)
    assert row.status == "failed"
    assert row.error_message == "Stripe refused the refund"
    [logged] = [r for r in caplog.records if r.getMessage() == "stripe refused a refund"]
    assert logged.providerMessage == provider_text
    assert logged.refundId == str(row.id)


async def test_partial_refunds_never_exceed_what_was_paid(api, login, paid_stripe):
    _, payment_id, _ = paid_stripe
    _, admin = login("admin")
    first = await refund(api, admin, payment_id, amount="400.00")
    assert first.json()["payment"]["status"] == "partially_refunded"
    too_much = await refund(api, admin, payment_id, amount="600.01")
    assert too_much.status_code == 400
    assert too_much.json()["details"] == {"refundable": "600.00"}
    rest = await refund(api, admin, payment_id)
    assert rest.json()["refund"]["amount"] == "600.00"
    assert rest.json()["payment"]["status"] == "refunded"
    again = await refund(api, admin, payment_id)
    assert again.status_code == 400
    assert again.json() == {"error": "Payment is already fully refunded"}


async def test_a_refund_with_the_same_idempotency_key_is_made_once(api, login, world, paid_stripe):
    _, payment_id, _ = paid_stripe
    _, admin = login("admin")
    keyed = {**admin, "Idempotency-Key": "refund-1"}
    calls_before = len(world.stripe_requests)
    first = await api.client.post(
        f"/api/payments/{payment_id}/refund", json={"amount": "100"}, headers=keyed
    )
    second = await api.client.post(
        f"/api/payments/{payment_id}/refund", json={"amount": "100"}, headers=keyed
    )
    assert first.json() == second.json()
    assert len(world.stripe_requests) == calls_before + 1
    assert len(await api.rows(Refund)) == 1


async def test_an_mpesa_refund_is_recorded_with_its_reference(api, login, world, paid_mpesa):
    _order_id, payment_id = paid_mpesa
    _, admin = login("admin")
    refused = await refund(api, admin, payment_id)
    assert refused.status_code == 400
    assert "M-Pesa portal" in refused.json()["error"]
    response = await refund(api, admin, payment_id, manual=True, reference="QKR9REFUND")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Refund recorded"
    assert body["refund"]["manual"] is True and body["refund"]["reference"] == "QKR9REFUND"
    assert body["payment"]["status"] == "refunded"
    await api.deliver_outbox()
    assert world.status_updates[-1]["paymentStatus"] == "refunded"


async def test_only_admins_refund_and_only_completed_payments(api, login, world, paid_stripe):
    _, payment_id, owner = paid_stripe
    customer = await refund(api, owner, payment_id)
    assert customer.status_code == 403
    user_id, headers = login()
    processing = await api.pay_mpesa(headers, world.add_order(user_id))
    _, admin = login("admin")
    not_paid = await refund(api, admin, processing.json()["payment"]["id"])
    assert not_paid.status_code == 400
    assert not_paid.json() == {"error": "Only a completed payment can be refunded"}


async def test_a_refund_made_in_the_stripe_dashboard_is_recorded(api, world, paid_stripe):
    order_id, payment_id, _ = paid_stripe
    payment = await api.payment(payment_id)
    event = json.dumps(
        {
            "id": "evt_refund_dashboard",
            "object": "event",
            "type": "charge.refunded",
            "data": {
                "object": {
                    "id": "ch_1",
                    "object": "charge",
                    "payment_intent": payment.external_reference,
                    "amount_refunded": 100000,
                    "refunds": {
                        "data": [{"id": "re_dash", "amount": 100000, "status": "succeeded"}]
                    },
                }
            },
        }
    )
    header = stripe.WebhookSignature.generate_signature_header(event, api.stripe_webhook_secret)
    response = await api.client.post(
        "/api/webhook/stripe", content=event, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 200
    stored = await api.payment(payment_id)
    assert stored.status == "refunded"
    [row] = await api.rows(Refund)
    assert row.provider_refund_id == "re_dash" and row.status == "succeeded"
    await api.deliver_outbox()
    assert world.orders[order_id]["paymentStatus"] == "refunded"


async def test_a_customer_reads_only_their_own_payments(api, login, world):
    owner_id, owner = login()
    _, stranger = login()
    order_id = world.add_order(owner_id)
    payment_id = (await api.mpesa_processing(owner, order_id))["payment"]["id"]

    mine = await api.client.get(f"/api/payments/{payment_id}", headers=owner)
    assert mine.status_code == 200 and mine.json()["payment"]["id"] == payment_id
    assert mine.json()["payment"]["metadata"]["checkoutRequestId"]
    theirs = await api.client.get(f"/api/payments/{payment_id}", headers=stranger)
    assert theirs.status_code == 404
    assert theirs.json() == {"error": "Payment not found"}

    listed = await api.client.get(f"/api/payments/order/{order_id}", headers=owner)
    assert [p["id"] for p in listed.json()["payments"]] == [payment_id]
    empty = await api.client.get(f"/api/payments/order/{order_id}", headers=stranger)
    assert empty.json() == {"payments": []}
    anonymous = await api.client.get(f"/api/payments/{payment_id}")
    assert anonymous.status_code == 401


async def test_the_admin_list_filters(api, login, world, paid_mpesa, paid_stripe):
    _, admin = login("admin")
    everything = await api.client.get("/api/admin/payments", headers=admin)
    assert everything.status_code == 200
    assert everything.json()["totalPayments"] == 2 and everything.json()["currentPage"] == 1
    stripe_only = await api.client.get("/api/admin/payments?provider=stripe", headers=admin)
    assert [p["provider"] for p in stripe_only.json()["payments"]] == ["stripe"]
    by_order = await api.client.get(
        f"/api/admin/payments?orderId={paid_mpesa[0]}&status=completed", headers=admin
    )
    assert [p["id"] for p in by_order.json()["payments"]] == [paid_mpesa[1]]
    _, customer = login()
    assert (await api.client.get("/api/admin/payments", headers=customer)).status_code == 403
    bad = await api.client.get("/api/admin/payments?status=nonsense", headers=admin)
    assert bad.status_code == 400


async def test_an_admin_reads_a_payment_with_its_refunds(api, login, paid_stripe):
    _, payment_id, owner = paid_stripe
    _, admin = login("admin")
    await refund(api, admin, payment_id, amount="250.00", reason="Scratched box")
    await refund(api, admin, payment_id, amount="100.00")
    response = await api.client.get(f"/api/admin/payments/{payment_id}", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["payment"]["id"] == str(payment_id)
    assert body["payment"]["refundedAmount"] == "350.00"
    assert body["payment"]["externalReference"].startswith("pi_")
    assert [(r["amount"], r["reason"]) for r in body["refunds"]] == [
        ("100.00", None),
        ("250.00", "Scratched box"),
    ]
    assert (await api.client.get(f"/api/admin/payments/{payment_id}", headers=owner)).json() == {
        "error": "Access denied. Admin only."
    }
    missing = await api.client.get(f"/api/admin/payments/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404 and missing.json() == {"error": "Payment not found"}


async def test_admin_figures_by_provider_status_and_currency(
    api, login, world, paid_mpesa, paid_stripe
):
    _, admin = login("admin")
    user_id, headers = login()
    await api.pay_mpesa(headers, world.add_order(user_id, total="700.00"))  # still processing
    await refund(api, admin, paid_stripe[1], amount="300.00")

    response = await api.client.get("/api/admin/stats", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"] is None and body["to"] is None
    assert [
        (g["provider"], g["status"], g["currency"], g["count"], g["amount"], g["refundedAmount"])
        for g in body["groups"]
    ] == [
        ("mpesa", "completed", "KES", 1, "1500.00", "0.00"),
        ("mpesa", "processing", "KES", 1, "700.00", "0.00"),
        ("stripe", "partially_refunded", "KES", 1, "1000.00", "300.00"),
    ]
    future = await api.client.get(
        "/api/admin/stats", params={"from": "2999-01-01T00:00:00Z"}, headers=admin
    )
    assert future.json()["groups"] == [] and future.json()["from"] == "2999-01-01T00:00:00Z"
    naive = await api.client.get("/api/admin/stats?to=2026-01-01T00:00:00", headers=admin)
    assert naive.status_code == 400 and naive.json()["details"][0]["field"] == "to"
    _, customer = login()
    assert (await api.client.get("/api/admin/stats", headers=customer)).status_code == 403
