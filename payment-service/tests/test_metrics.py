"""The payment service's figures on /metrics: payments entering each status by provider,
webhooks refused, what reconciliation asked and did, the outbox backlog."""

import uuid

import httpx
import pytest
import stripe
from sqlalchemy import text

from shared.metrics import Samples, moved, read_samples, sample


async def scrape(client: httpx.AsyncClient) -> Samples:
    return read_samples((await client.get("/metrics")).text)


@pytest.fixture
def sql(engine):
    async def run(statement: str, **params) -> None:
        async with engine.begin() as connection:
            await connection.execute(text(statement), params)

    return run


async def test_payments_are_counted_as_they_enter_each_status(client, api, login, world):
    before = await scrape(client)
    user_id, headers = login()
    _, admin = login("admin")
    paid = await api.mpesa_processing(headers, world.add_order(user_id, total="1500.00"))
    callback = api.callback_body(paid["checkoutRequestId"])
    for _ in range(2):  # the second is a duplicate: nothing more
        assert (await api.callback(callback)).status_code == 200
    refund = await api.client.post(
        f"/api/payments/{paid['payment']['id']}/refund",
        json={"manual": True, "reference": "RFD123", "amount": 500},
        headers=admin,
    )
    assert refund.status_code == 200, refund.text
    world.stripe_intent_error = (402, {"error": {"type": "card_error", "message": "Declined"}})
    refused = await api.pay_stripe(headers, world.add_order(user_id, total="300.00"))
    assert refused.status_code == 400

    after = await scrape(client)
    assert ("payments_total", frozenset({("provider", "stripe"), ("status", "refunded")})) in after

    def count(provider: str, status: str) -> float:
        return moved(before, after, "payments_total", provider=provider, status=status)

    assert count("mpesa", "pending") == 1
    assert count("mpesa", "processing") == 1
    assert count("mpesa", "completed") == 1
    assert count("mpesa", "partially_refunded") == 1
    assert count("stripe", "pending") == 1
    assert count("stripe", "failed") == 1
    assert count("stripe", "processing") == 0


async def test_refused_webhooks_are_counted_by_provider_and_reason(client, api, world, login):
    before = await scrape(client)
    body = api.callback_body("ws_CO_unknown")
    assert (await api.callback(body, secret=None)).status_code == 403
    assert (await api.callback(body, secret="not-the-secret")).status_code == 403
    assert (await api.callback(body)).status_code == 200  # the secret: not refused
    payload = '{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {}}}'
    header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_wrong")
    forged = await api.client.post(
        "/api/webhook/stripe", content=payload, headers={"Stripe-Signature": header}
    )
    assert forged.status_code == 400
    unsigned = await api.client.post("/api/webhook/stripe", content=payload)
    assert unsigned.status_code == 400

    after = await scrape(client)

    def rejected(provider: str, reason: str) -> float:
        return moved(before, after, "webhooks_rejected_total", provider=provider, reason=reason)

    assert rejected("mpesa", "bad_secret") == 2
    assert rejected("stripe", "bad_signature") == 2
    assert rejected("mpesa", "bad_source") == 0


async def test_reconciliation_counts_its_queries_and_what_it_did(client, api, login, world, sql):
    before = await scrape(client)
    user_id, headers = login()
    lost, failed, waiting, expired = [
        await api.mpesa_processing(headers, world.add_order(user_id, total="1500.00"))
        for _ in range(4)
    ]
    world.query_says(failed["checkoutRequestId"], "1", "The balance is insufficient")
    world.query_pending(waiting["checkoutRequestId"])
    world.query_pending(expired["checkoutRequestId"])
    for payment, age in ((lost, 61), (failed, 61), (waiting, 61), (expired, 301)):
        await api.age_payment(payment["payment"]["id"], age)
    # An initiation that never reached Daraja (the process died mid-way).
    abandoned = uuid.uuid4()
    await sql(
        "INSERT INTO payments (id, order_id, user_id, provider, amount, currency, status,"
        " created_at) VALUES (:id, :order, :user, 'mpesa', 100, 'KES', 'pending',"
        " now() - interval '301 seconds')",
        id=abandoned,
        order=uuid.uuid4(),
        user=user_id,
    )
    assert await api.reconcile() == 4  # lost, failed, expired and the abandoned one

    after = await scrape(client)
    queries = "mpesa_reconciliation_queries_total"
    assert moved(before, after, queries, result="completed") == 1
    assert moved(before, after, queries, result="failed") == 1
    assert moved(before, after, queries, result="pending") == 2
    outcomes = "mpesa_reconciliations_total"
    assert moved(before, after, outcomes, outcome="completed") == 1
    assert moved(before, after, outcomes, outcome="failed") == 1
    assert moved(before, after, outcomes, outcome="pending") == 1
    assert moved(before, after, outcomes, outcome="expired") == 1
    assert moved(before, after, outcomes, outcome="abandoned") == 1
    assert moved(before, after, "payments_total", provider="mpesa", status="cancelled") == 1
    # pending: the four initiated here; failed: the one Daraja failed and the abandoned one.
    assert moved(before, after, "payments_total", provider="mpesa", status="failed") == 2
    assert (await api.payment(abandoned)).status == "failed"


async def test_the_outbox_backlog_waits_for_the_order_service(client, api, login, world, sql):
    user_id, headers = login()
    paid = await api.mpesa_processing(headers, world.add_order(user_id, total="1500.00"))
    world.order_service_down = True
    await api.callback(api.callback_body(paid["checkoutRequestId"]))
    assert await api.deliver_outbox() == 0
    await sql("UPDATE outbox_messages SET created_at = now() - interval '45 seconds'")
    figures = await scrape(client)
    assert sample(figures, "outbox_backlog") == 1
    assert 45 <= sample(figures, "outbox_oldest_age_seconds") < 75

    world.order_service_down = False
    await sql("UPDATE outbox_messages SET available_at = now()")
    assert await api.deliver_outbox() == 1
    figures = await scrape(client)
    assert sample(figures, "outbox_backlog") == 0
    assert sample(figures, "outbox_oldest_age_seconds") == 0
