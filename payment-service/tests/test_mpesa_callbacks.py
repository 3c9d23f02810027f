"""Daraja's callback: believed only with the secret, confirmed by STK Query, for the
payment's amount, once; and reconciliation for callbacks that never come."""

from contextlib import asynccontextmanager

import httpx
import pytest

from payment_service.main import create_app
from payment_service.models import OutboxMessage, ProviderEvent
from shared.metrics import sample
from shared.testing import started


@pytest.fixture
async def processing(api, login, world):
    """An order with an M-Pesa payment waiting for the customer."""
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1500.00")
    body = await api.mpesa_processing(headers, order_id)
    return order_id, body["payment"]["id"], body["checkoutRequestId"]


async def test_a_confirmed_callback_completes_the_payment_and_pays_the_order(
    api, world, processing
):
    order_id, payment_id, checkout_id = processing
    response = await api.callback(api.callback_body(checkout_id, receipt="QKJ7RT61SV"))
    assert response.status_code == 200
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}

    payment = await api.payment(payment_id)
    assert payment.status == "completed"
    assert payment.transaction_id == "QKJ7RT61SV"
    assert payment.completed_at is not None
    # Daraja was asked before the money was believed.
    assert [q["CheckoutRequestID"] for q in world.query_requests] == [checkout_id]

    assert await api.deliver_outbox() == 1
    [update] = world.status_updates
    assert update["orderId"] == order_id and update["paymentId"] == payment_id
    assert update["status"] == "paid" and update["paymentStatus"] == "paid"
    assert update["eventId"]
    assert world.orders[order_id]["status"] == "paid"


async def test_a_duplicate_callback_changes_nothing(api, world, processing):
    _, _payment_id, checkout_id = processing
    body = api.callback_body(checkout_id)
    for _ in range(3):
        assert (await api.callback(body)).json()["ResultCode"] == 0
    assert len(await api.rows(OutboxMessage)) == 1
    await api.deliver_outbox()
    assert len(world.status_updates) == 1
    outcomes = sorted(e.outcome for e in await api.rows(ProviderEvent))
    assert outcomes == ["completed", "duplicate", "duplicate"]


@pytest.mark.parametrize(
    ("code", "status"), [(1, "failed"), (2001, "failed"), (1032, "cancelled"), (1037, "cancelled")]
)
async def test_a_failure_code_ends_the_payment_and_leaves_the_order_payable(
    api, world, processing, code, status
):
    order_id, payment_id, checkout_id = processing
    response = await api.callback(api.callback_body(checkout_id, code=code))
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    payment = await api.payment(payment_id)
    assert payment.status == status
    assert payment.error_message
    await api.deliver_outbox()
    [update] = world.status_updates
    # Only the payment status: the order stays pending and may be paid again.
    assert update["paymentStatus"] == "failed" and "status" not in update
    assert world.orders[order_id]["status"] == "pending"


async def test_a_callback_without_the_secret_is_403_and_changes_nothing(api, processing):
    _, payment_id, checkout_id = processing
    response = await api.callback(api.callback_body(checkout_id), secret=None)
    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden"}
    assert (await api.payment(payment_id)).status == "processing"
    assert await api.rows(ProviderEvent) == []


@pytest.mark.parametrize("secret", ["wrong", "cb-secret-", "x" * 50])
async def test_a_callback_with_a_wrong_secret_is_403_and_changes_nothing(
    api, world, processing, secret
):
    _, payment_id, checkout_id = processing
    response = await api.callback(api.callback_body(checkout_id), secret=secret)
    assert response.status_code == 403
    assert (await api.payment(payment_id)).status == "processing"
    assert await api.rows(OutboxMessage) == []
    assert world.query_requests == []


async def test_an_unknown_checkout_request_is_recorded_and_ignored(api, processing):
    _, payment_id, _ = processing
    response = await api.callback(api.callback_body("ws_CO_forged"))
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    [event] = await api.rows(ProviderEvent)
    assert event.outcome == "unknown payment" and event.reference == "ws_CO_forged"
    assert (await api.payment(payment_id)).status == "processing"
    assert await api.rows(OutboxMessage) == []


async def test_a_success_that_stk_query_denies_completes_nothing(api, world, processing):
    order_id, payment_id, checkout_id = processing
    world.query_says(checkout_id, "1032", "Request cancelled by user")
    response = await api.callback(api.callback_body(checkout_id))
    assert response.status_code == 200
    payment = await api.payment(payment_id)
    assert payment.status == "cancelled"  # Daraja's word, not the callback's
    assert payment.transaction_id is None
    await api.deliver_outbox()
    assert all(u.get("status") != "paid" for u in world.status_updates)
    assert world.orders[order_id]["status"] == "pending"


async def test_a_success_for_another_amount_completes_nothing(api, world, processing):
    _order_id, payment_id, checkout_id = processing
    response = await api.callback(api.callback_body(checkout_id, amount=1))
    assert response.status_code == 200
    assert (await api.payment(payment_id)).status == "processing"
    [event] = await api.rows(ProviderEvent)
    assert event.outcome.startswith("rejected: amount")
    assert await api.rows(OutboxMessage) == []


async def test_a_success_still_pending_at_daraja_waits_for_reconciliation(api, world, processing):
    _, payment_id, checkout_id = processing
    world.query_pending(checkout_id)
    await api.callback(api.callback_body(checkout_id))
    assert (await api.payment(payment_id)).status == "processing"
    world.query_results.pop(checkout_id)
    await api.age_payment(payment_id, 61)
    assert await api.reconcile() == 1
    assert (await api.payment(payment_id)).status == "completed"


async def test_a_receipt_number_pays_one_payment_only(api, login, world, processing):
    _, _payment_id, checkout_id = processing
    await api.callback(api.callback_body(checkout_id, receipt="QKJ7RT61SV"))
    user_id, headers = login()
    other = await api.mpesa_processing(headers, world.add_order(user_id, total="1500.00"))
    await api.callback(api.callback_body(other["checkoutRequestId"], receipt="QKJ7RT61SV"))
    assert (await api.payment(other["payment"]["id"])).status == "processing"


ALLOWED_IPS = "196.201.214.0/24, 10.0.0.1"
GATEWAY_IP = "10.1.0.5"
SAFARICOM_IP = "196.201.214.200"
OUTSIDER_IP = "203.0.113.9"


@asynccontextmanager
async def callback_client(make_settings, peer: str, **settings):
    """A client of the payment service whose requests come from `peer`; yields a function
    that posts a failed-payment callback with the given headers."""
    app = create_app(make_settings(MPESA_CALLBACK_ALLOWED_IPS=ALLOWED_IPS, **settings))
    path = f"/api/webhook/mpesa/{make_settings().mpesa_callback_secret.get_secret_value()}"
    body = {"Body": {"stkCallback": {"CheckoutRequestID": "x", "ResultCode": 1}}}
    async with started(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://payment") as client:

            async def post(**headers: str) -> httpx.Response:
                return await client.post(path, json=body, headers=headers)

            post.client = client  # type: ignore[attr-defined]
            yield post


async def test_a_source_outside_the_allowlist_is_403(make_settings):
    async with callback_client(make_settings, GATEWAY_IP, TRUSTED_PROXIES=GATEWAY_IP) as post:
        before = (await post.client.get("/metrics")).text
        outside = await post(**{"X-Real-IP": OUTSIDER_IP})
        inside = await post(**{"X-Real-IP": SAFARICOM_IP})
        after = (await post.client.get("/metrics")).text
    assert outside.status_code == 403
    assert outside.json() == {"error": "Forbidden"}
    assert inside.status_code == 200
    rejected = {"provider": "mpesa", "reason": "bad_source"}
    assert sample(after, "webhooks_rejected_total", **rejected) == (
        sample(before, "webhooks_rejected_total", **rejected) + 1
    )


async def test_the_gateways_x_forwarded_for_counts_when_it_sends_no_x_real_ip(make_settings):
    async with callback_client(make_settings, GATEWAY_IP, TRUSTED_PROXIES="10.1.0.0/16") as post:
        # Read from the right: the client's own left-most entry is not believed.
        forged = await post(**{"X-Forwarded-For": f"{SAFARICOM_IP}, {OUTSIDER_IP}"})
        real = await post(**{"X-Forwarded-For": f"{OUTSIDER_IP}, {SAFARICOM_IP}"})
    assert forged.status_code == 403
    assert real.status_code == 200


@pytest.mark.parametrize("trusted", ["", GATEWAY_IP])
async def test_address_headers_from_an_untrusted_peer_are_not_believed(make_settings, trusted):
    """A caller that reaches the service directly (not through a trusted proxy) is judged
    by its own address, whatever X-Real-IP or X-Forwarded-For it sends."""
    async with callback_client(make_settings, OUTSIDER_IP, TRUSTED_PROXIES=trusted) as post:
        real_ip = await post(**{"X-Real-IP": SAFARICOM_IP})
        forwarded = await post(**{"X-Forwarded-For": SAFARICOM_IP})
    assert real_ip.status_code == 403
    assert forwarded.status_code == 403
    async with callback_client(make_settings, SAFARICOM_IP, TRUSTED_PROXIES=trusted) as post:
        assert (await post(**{"X-Real-IP": OUTSIDER_IP})).status_code == 200


def test_trusted_proxies_must_be_addresses(make_settings):
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        make_settings(TRUSTED_PROXIES="gateway")


async def test_a_callback_without_stk_callback_is_400(api):
    response = await api.callback({"Body": {}})
    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid callback")


# --- reconciliation ------------------------------------------------------------------


async def test_a_lost_callback_is_settled_by_stk_query(api, world, processing):
    order_id, payment_id, _checkout_id = processing
    assert await api.reconcile() == 0  # too young to ask about
    assert world.query_requests == []
    await api.age_payment(payment_id, 61)
    assert await api.reconcile() == 1
    payment = await api.payment(payment_id)
    assert payment.status == "completed"
    assert payment.details["settledBy"] == "stk_query"
    await api.deliver_outbox()
    assert world.orders[order_id]["status"] == "paid"


async def test_reconciliation_fails_a_payment_daraja_failed(api, world, processing):
    _, payment_id, checkout_id = processing
    world.query_says(checkout_id, "1", "The balance is insufficient for the transaction")
    await api.age_payment(payment_id, 61)
    await api.reconcile()
    payment = await api.payment(payment_id)
    assert payment.status == "failed"
    assert payment.error_message == "The balance is insufficient for the transaction"


async def test_being_processed_is_not_a_failure_until_it_expires(api, world, processing):
    order_id, payment_id, checkout_id = processing
    world.query_pending(checkout_id)
    await api.age_payment(payment_id, 120)
    assert await api.reconcile() == 0
    assert (await api.payment(payment_id)).status == "processing"
    await api.age_payment(payment_id, 301)
    assert await api.reconcile() == 1
    payment = await api.payment(payment_id)
    assert payment.status == "cancelled"
    await api.deliver_outbox()
    assert world.status_updates[-1]["paymentStatus"] == "failed"
    # The order may be paid again.
    assert world.orders[order_id]["status"] == "pending"


async def test_a_late_confirmed_success_after_expiry_is_still_recorded(api, world, processing):
    order_id, payment_id, checkout_id = processing
    world.query_pending(checkout_id)
    await api.age_payment(payment_id, 301)
    await api.reconcile()
    assert (await api.payment(payment_id)).status == "cancelled"
    world.query_results.pop(checkout_id)  # Daraja now says it succeeded
    await api.callback(api.callback_body(checkout_id, receipt="LATE123"))
    payment = await api.payment(payment_id)
    assert payment.status == "completed" and payment.transaction_id == "LATE123"
    await api.deliver_outbox()
    assert world.orders[order_id]["status"] == "paid"
