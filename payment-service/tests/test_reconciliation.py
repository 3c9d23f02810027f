"""The money reconciliation report: every discrepancy kind made on purpose and named with
its amounts, the safe ones repaired by the worker through the webhook's or callback's own
code path, the totals, and the gauge on /metrics. The order service and the providers are
faked (conftest.FakeWorld); the database is real."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from payment_service.models import OutboxMessage, Payment, ProviderEvent
from payment_service.reconciliation import evidence, reconcile_money
from shared.metrics import read_samples, sample

from .test_stripe import intent_event, post_event, signed

pytestmark = pytest.mark.usefixtures("world")


@pytest.fixture
def admin(login):
    return login("admin")[1]


async def report(api, admin, **params) -> dict:
    response = await api.client.get("/api/admin/reconciliation", params=params, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def kinds(body: dict) -> list[str]:
    return [d["kind"] for d in body["discrepancies"]]


async def paid_with_stripe(api, world, login, total="1500.00"):
    """An order paid with Stripe the normal way: intent, success at Stripe, its webhook,
    the order told. Returns (order id, payment)."""
    user_id, headers = login()
    order_id = world.add_order(user_id, total=total)
    started = await api.pay_stripe(headers, order_id)
    assert started.status_code == 200, started.text
    payment = await api.payment(started.json()["payment"]["id"])
    world.stripe_succeeds(payment.external_reference)
    payload = intent_event("payment_intent.succeeded", payment)
    answered = await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
    assert answered.status_code == 200
    await api.deliver_outbox()
    assert world.orders[order_id]["status"] == "paid"
    return order_id, await api.payment(payment.id)


async def add_payment(api, order_id, **values) -> uuid.UUID:
    """A payment row written straight into the database (what no route would write)."""
    payment_id = uuid.uuid4()
    async with api.state.sessionmaker() as session, session.begin():
        defaults = {"provider": "stripe", "currency": "KES", "completed_at": datetime.now(UTC)}
        session.add(
            Payment(
                id=payment_id,
                order_id=uuid.UUID(order_id),
                user_id=uuid.uuid4(),
                **{**defaults, **values},
            )
        )
    return payment_id


async def test_nothing_to_reconcile_is_an_empty_report(api, admin):
    body = await report(api, admin)
    assert body["ok"] is True
    assert body["discrepancies"] == [] and body["totals"] == []
    assert set(body["counts"]) >= {"order_paid_twice", "provider_paid_not_recorded"}
    assert set(body["counts"].values()) == {0}
    assert body["providers"]["stripe"].startswith("compared")
    window = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert window == timedelta(days=7)  # RECONCILIATION_WINDOW_DAYS


async def test_a_paid_order_reconciles_and_the_totals_match(api, admin, world, login, monkeypatch):
    # One order and one PaymentIntent per page: every page is read.
    monkeypatch.setattr(evidence, "ORDER_PAGE_SIZE", 1)
    monkeypatch.setattr(evidence, "STRIPE_PAGE_SIZE", 1)
    await paid_with_stripe(api, world, login, "1500.00")
    await paid_with_stripe(api, world, login, "250.50")
    user_id, _ = login()
    world.add_order(user_id, total="99.00")  # never paid: not in the totals

    body = await report(api, admin)
    assert body["ok"] is True, body["discrepancies"]
    assert body["totals"] == [
        {
            "currency": "KES",
            "paymentsCompleted": {"count": 2, "amount": "1750.50"},
            "refunds": {"count": 0, "amount": "0.00"},
            "paymentsKept": {"count": 2, "amount": "1750.50"},
            "ordersPaid": {"count": 2, "amount": "1750.50"},
            "ordersPaidInCash": {"count": 0, "amount": "0.00"},
            "difference": "0.00",
        }
    ]


async def test_the_window_is_validated(api, admin, login):
    url = "/api/admin/reconciliation"
    naive = await api.client.get(url, params={"from": "2026-01-01T00:00:00"}, headers=admin)
    assert naive.status_code == 400
    assert naive.json()["details"][0]["field"] == "from"
    backwards = await api.client.get(
        url, params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, headers=admin
    )
    assert backwards.status_code == 400
    assert backwards.json()["details"] == [{"field": "to", "message": "from must be before to"}]
    garbage = await api.client.get(url, params={"from": "yesterday"}, headers=admin)
    assert garbage.status_code == 400
    customer = await api.client.get(url, headers=login()[1])
    assert customer.status_code == 403


async def test_the_order_service_down_is_a_503(api, admin, world):
    world.order_service_down = True
    response = await api.client.get("/api/admin/reconciliation", headers=admin)
    assert response.status_code == 503
    assert response.json()["error"] == "Order service unavailable"


async def test_a_lost_stripe_webhook_is_reported_then_settled_from_the_intent(
    api, admin, world, login
):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="2500.00")
    started = await api.pay_stripe(headers, order_id)
    payment_id = started.json()["payment"]["id"]
    intent = world.stripe_succeeds(started.json()["payment"]["externalReference"])

    body = await report(api, admin)
    assert kinds(body) == ["provider_paid_not_recorded"]
    found = body["discrepancies"][0]
    assert found["orderId"] == order_id and found["paymentIds"] == [payment_id]
    assert (found["amount"], found["orderAmount"], found["currency"]) == (
        "2500.00",
        "2500.00",
        "KES",
    )
    assert found["provider"] == "stripe" and found["repair"] is not None
    assert found["ageSeconds"] >= 0 and intent["id"] in found["action"]
    # The admin route only reads.
    assert (await api.payment(payment_id)).status == "processing"

    assert await reconcile_money(api.state) == 1
    payment = await api.payment(payment_id)
    assert payment.status == "completed"
    assert payment.transaction_id == intent["latest_charge"]
    events = await api.rows(ProviderEvent)
    assert [(e.event_id, e.outcome) for e in events] == [
        (f"reconciliation:{intent['id']}:succeeded", "completed")
    ]
    await api.deliver_outbox()
    assert world.orders[order_id]["status"] == "paid"
    assert (await report(api, admin))["ok"] is True

    # The webhook arriving late changes nothing.
    payload = intent_event("payment_intent.succeeded", payment)
    await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
    assert len([m for m in await api.rows(OutboxMessage)]) == 1
    assert await reconcile_money(api.state) == 0


async def test_an_order_that_missed_its_paid_update_gets_it_again(api, admin, world, login):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1500.00")
    started = await api.pay_stripe(headers, order_id)
    payment = await api.payment(started.json()["payment"]["id"])
    world.stripe_succeeds(payment.external_reference)
    world.order_service_down = True
    payload = intent_event("payment_intent.succeeded", payment)
    await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
    await api.deliver_outbox()  # fails: the order service is down
    world.order_service_down = False

    # Still being delivered: reported, not repaired (the outbox goes on by itself).
    body = await report(api, admin)
    assert kinds(body) == ["payment_not_on_order"]
    assert "waiting in the outbox (1 attempts" in body["discrepancies"][0]["action"]
    assert body["discrepancies"][0]["repair"] is None
    assert body["totals"][0]["difference"] == "1500.00"

    # The message is lost (acknowledged, never applied): the worker sends it again.
    async with api.engine.begin() as connection:
        await connection.execute(update(OutboxMessage).values(delivered_at=datetime.now(UTC)))
    body = await report(api, admin)
    assert kinds(body) == ["payment_not_on_order"]
    assert body["discrepancies"][0]["repair"] == "send the order its paid update again"
    assert await reconcile_money(api.state) == 1
    assert await reconcile_money(api.state) == 0  # one message waiting is enough
    await api.deliver_outbox()
    assert world.orders[order_id]["status"] == "paid"
    assert (await report(api, admin))["ok"] is True


async def test_a_double_charge_is_reported_and_refunding_one_payment_clears_it(
    api, admin, world, login
):
    order_id, first = await paid_with_stripe(api, world, login, "1500.00")
    # An M-Pesa payment of the same order, completed too.
    second_id = await add_payment(
        api, order_id, amount=Decimal("1500.00"), status="completed", provider="mpesa"
    )

    body = await report(api, admin)
    assert kinds(body) == ["order_paid_twice"]
    found = body["discrepancies"][0]
    assert found["paymentIds"] == [str(first.id), str(second_id)]
    assert (found["amount"], found["orderAmount"]) == ("3000.00", "1500.00")
    assert str(second_id) in found["action"] and found["repair"] is None
    assert body["totals"][0]["paymentsKept"] == {"count": 2, "amount": "3000.00"}
    assert body["totals"][0]["difference"] == "1500.00"
    assert await reconcile_money(api.state) == 0  # money decisions are a person's

    # Put right: the second payment refunded (in the M-Pesa portal, recorded here).
    refunded = await api.client.post(
        f"/api/payments/{second_id}/refund",
        json={"manual": True, "reference": "QKJ7RT61SV-R"},
        headers=admin,
    )
    assert refunded.status_code == 200, refunded.text
    await api.deliver_outbox()
    # The order keeps the first payment: it stays paid (not told "refunded").
    assert world.orders[order_id]["paymentStatus"] == "paid"
    body = await report(api, admin)
    assert body["ok"] is True, body["discrepancies"]
    assert body["totals"][0]["refunds"] == {"count": 1, "amount": "1500.00"}
    assert body["totals"][0]["paymentsCompleted"]["count"] == 2


async def test_an_amount_that_is_not_the_orders_total(api, admin, world, login):
    user_id, _ = login()
    order_id = world.add_order(user_id, total="1500.00", status="paid", payment_status="paid")
    payment_id = await add_payment(api, order_id, amount=Decimal("1400.00"), status="completed")

    body = await report(api, admin)
    assert kinds(body) == ["amount_mismatch"]
    found = body["discrepancies"][0]
    assert found["paymentIds"] == [str(payment_id)]
    assert (found["amount"], found["orderAmount"]) == ("1400.00", "1500.00")
    assert body["totals"][0]["difference"] == "-100.00"


async def test_money_on_a_cancelled_order_is_a_refund_pending(api, admin, world, login):
    user_id, _ = login()
    order_id = world.add_order(
        user_id, total="800.00", status="cancelled", payment_status="refund_pending"
    )
    payment_id = await add_payment(
        api, order_id, amount=Decimal("800.00"), status="completed", provider="mpesa"
    )
    body = await report(api, admin)
    assert kinds(body) == ["refund_pending"]
    assert f"/api/payments/{payment_id}/refund" in body["discrepancies"][0]["action"]

    refunded = await api.client.post(
        f"/api/payments/{payment_id}/refund",
        json={"manual": True, "reference": "QKJ7RT61SV-R"},
        headers=admin,
    )
    assert refunded.status_code == 200, refunded.text
    await api.deliver_outbox()
    assert world.orders[order_id]["paymentStatus"] == "refunded"
    assert (await report(api, admin))["ok"] is True


async def test_a_payment_for_an_order_that_does_not_exist(api, admin):
    order_id = str(uuid.uuid4())
    await add_payment(api, order_id, amount=Decimal("100.00"), status="completed")
    body = await report(api, admin)
    assert kinds(body) == ["payment_not_on_order"]
    assert body["discrepancies"][0]["orderAmount"] is None
    assert "no such order" in body["discrepancies"][0]["action"]


async def test_a_paid_order_without_a_payment(api, admin, world, login):
    user_id, _ = login()
    order_id = world.add_order(user_id, total="300.00", status="shipped", payment_status="paid")
    body = await report(api, admin)
    assert kinds(body) == ["order_without_payment"]
    assert body["discrepancies"][0]["orderId"] == order_id
    assert body["totals"][0]["ordersPaid"] == {"count": 1, "amount": "300.00"}
    assert body["totals"][0]["difference"] == "-300.00"


async def test_cash_on_delivery_marked_paid_is_counted_apart_not_reported(api, admin, world, login):
    user_id, _ = login()
    cash = world.add_order(user_id, total="450.00", status="delivered", payment_status="paid")
    world.orders[cash]["paymentMethod"] = "cash_on_delivery"
    # Paid by hand although the customer chose M-Pesa: that one is reported.
    by_hand = world.add_order(user_id, total="300.00", status="paid", payment_status="paid")
    world.orders[by_hand]["paymentMethod"] = "mpesa"
    body = await report(api, admin)
    assert [(d["kind"], d["orderId"]) for d in body["discrepancies"]] == [
        ("order_without_payment", by_hand)
    ]
    assert body["totals"][0]["ordersPaidInCash"] == {"count": 1, "amount": "450.00"}
    assert body["totals"][0]["ordersPaid"] == {"count": 1, "amount": "300.00"}


async def test_completed_here_but_not_at_stripe(api, admin, world, login):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1500.00")
    started = await api.pay_stripe(headers, order_id)
    payment = await api.payment(started.json()["payment"]["id"])
    # A success event for an intent Stripe says was never paid (the test signs it).
    payload = intent_event("payment_intent.succeeded", payment)
    await post_event(api, payload, signed(payload, api.stripe_webhook_secret))
    await api.deliver_outbox()

    body = await report(api, admin)
    assert kinds(body) == ["recorded_paid_not_at_provider"]
    assert "requires_payment_method" in body["discrepancies"][0]["action"]
    assert await reconcile_money(api.state) == 0


async def test_a_completed_payment_whose_intent_stripe_does_not_have(api, admin, world, login):
    _, payment = await paid_with_stripe(api, world, login)
    del world.intents[payment.external_reference]  # another account's, say
    body = await report(api, admin)
    assert kinds(body) == ["recorded_paid_not_at_provider"]
    assert "is missing" in body["discrepancies"][0]["action"]
    assert body["providers"]["stripe"].startswith("compared")


async def test_an_intent_with_our_metadata_and_no_payment_here(api, admin, world):
    world.intents["pi_orphan"] = {
        "id": "pi_orphan",
        "object": "payment_intent",
        "amount": 50000,
        "amount_received": 50000,
        "currency": "kes",
        "status": "succeeded",
        "created": int(datetime.now(UTC).timestamp()),
        "metadata": {"paymentId": str(uuid.uuid4()), "orderId": str(uuid.uuid4())},
    }
    world.intents["pi_other_integration"] = {**world.intents["pi_orphan"], "metadata": {}}
    world.intents["pi_other_integration"]["id"] = "pi_other_integration"
    body = await report(api, admin)
    assert kinds(body) == ["provider_paid_not_recorded"]
    assert body["discrepancies"][0]["amount"] == "500.00"
    assert body["discrepancies"][0]["repair"] is None


async def test_stripe_unreachable_is_said_and_the_rest_still_reported(api, admin, world, login):
    await paid_with_stripe(api, world, login)
    world.stripe_down = True
    body = await report(api, admin)
    assert body["providers"]["stripe"].startswith("unavailable")
    assert body["ok"] is True


async def test_an_mpesa_payment_open_too_long_and_one_daraja_says_was_paid(
    api, admin, world, login
):
    user_id, headers = login()
    stale_order = world.add_order(user_id, total="1500.00")
    stale = await api.mpesa_processing(headers, stale_order)
    world.query_pending(stale["checkoutRequestId"])
    await api.age_payment(stale["payment"]["id"], 400)  # MPESA_EXPIRE_AFTER is 300

    paid_order = world.add_order(user_id, total="700.00")
    paid = await api.mpesa_processing(headers, paid_order)
    await api.age_payment(paid["payment"]["id"], 90)  # STK Query says paid (the default)

    body = await report(api, admin)
    assert sorted(kinds(body)) == ["provider_paid_not_recorded", "stale_processing"]
    by_kind = {d["kind"]: d for d in body["discrepancies"]}
    assert by_kind["stale_processing"]["paymentIds"] == [stale["payment"]["id"]]
    assert by_kind["stale_processing"]["ageSeconds"] >= 400
    assert by_kind["provider_paid_not_recorded"]["paymentIds"] == [paid["payment"]["id"]]
    assert body["providers"]["mpesa"] == "asked STK Query about 2 open payments, 2 answered"

    assert await reconcile_money(api.state) == 1
    settled = await api.payment(paid["payment"]["id"])
    assert settled.status == "completed"
    assert settled.details["settledBy"] == "reconciliation"
    await api.deliver_outbox()
    assert world.orders[paid_order]["status"] == "paid"
    assert kinds(await report(api, admin)) == ["stale_processing"]


async def test_the_worker_publishes_its_counts_on_metrics(api, admin, world, login):
    user_id, _ = login()
    world.add_order(user_id, total="300.00", status="paid", payment_status="paid")
    await reconcile_money(api.state)
    scraped = read_samples((await api.client.get("/metrics")).text)
    assert sample(scraped, "reconciliation_discrepancies", kind="order_without_payment") == 1
    assert sample(scraped, "reconciliation_discrepancies", kind="order_paid_twice") == 0

    world.orders.clear()
    await reconcile_money(api.state)
    scraped = read_samples((await api.client.get("/metrics")).text)
    assert sample(scraped, "reconciliation_discrepancies", kind="order_without_payment") == 0


async def test_payments_and_orders_outside_the_window(api, admin, world, login):
    """An order of the window paid by a payment made after it is still matched; the window
    only chooses what is looked at."""
    order_id, _ = await paid_with_stripe(api, world, login)
    world.orders[order_id]["createdAt"] = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    body = await report(api, admin)  # the payment is in the window, its order is not
    assert body["ok"] is True and body["totals"][0]["ordersPaid"]["count"] == 1

    earlier = await report(
        api,
        admin,
        **{
            "from": (datetime.now(UTC) - timedelta(days=31)).isoformat(),
            "to": (datetime.now(UTC) - timedelta(days=29)).isoformat(),
        },
    )
    assert earlier["ok"] is True and earlier["totals"][0]["paymentsKept"]["count"] == 1
