"""Paying an order with M-Pesa: what is sent to Daraja, field by field, and what the
customer is answered."""

import asyncio
import base64
import logging
import os
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from payment_service.models import Payment

NAIROBI = ZoneInfo("Africa/Nairobi")


@pytest.fixture
def process_time_zone():
    """Runs the test with the process in a given TZ, restoring it afterwards."""
    previous = os.environ.get("TZ")

    def set_zone(zone: str) -> None:
        os.environ["TZ"] = zone
        time.tzset()

    yield set_zone
    if previous is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Tokyo"])
async def test_the_stk_push_body_is_darajas_exactly(api, login, world, process_time_zone, zone):
    process_time_zone(zone)
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1500.00")

    before = datetime.now(NAIROBI).replace(microsecond=0, tzinfo=None)
    response = await api.pay_mpesa(headers, order_id, phone="0712345678")
    after = datetime.now(NAIROBI).replace(microsecond=0, tzinfo=None)

    assert response.status_code == 200, response.text
    [sent] = world.stk_requests
    timestamp = sent["Timestamp"]
    # Nairobi wall-clock time whatever the process's zone (the original's bug: local time).
    sent_at = datetime.strptime(timestamp, "%Y%m%d%H%M%S")
    assert before <= sent_at <= after + timedelta(seconds=1)
    password = base64.b64encode(f"{api.shortcode}{api.passkey}{timestamp}".encode()).decode()
    assert sent == {
        "BusinessShortCode": api.shortcode,
        "Password": password,
        "Timestamp": timestamp,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 1500,
        "PartyA": "254712345678",
        "PartyB": api.shortcode,
        "PhoneNumber": "254712345678",
        "CallBackURL": f"{api.callback_url}/{api.callback_secret}",
        "AccountReference": "0000ABC123XYZ"[-12:],
        "TransactionDesc": "Order payment",
    }
    assert len(sent["AccountReference"]) <= 12 and len(sent["TransactionDesc"]) <= 13

    body = response.json()
    assert body["message"] == "M-Pesa payment initiated. Please check your phone."
    assert body["checkoutRequestId"] == body["payment"]["externalReference"]
    assert body["payment"]["status"] == "processing"
    assert body["payment"]["amount"] == "1500.00" and body["payment"]["currency"] == "KES"
    stored = await api.payment(body["payment"]["id"])
    assert stored.status == "processing" and stored.phone_number == "254712345678"
    assert stored.external_reference == body["checkoutRequestId"]


async def test_a_till_uses_buy_goods_and_its_till_number(make_settings, world, login):
    import httpx

    from payment_service.main import create_app
    from shared.testing import started

    app = create_app(
        make_settings(MPESA_TRANSACTION_TYPE="CustomerBuyGoodsOnline", MPESA_PARTY_B="5551234")
    )
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://payment") as client:
            user_id, headers = login()
            order_id = world.add_order(user_id, total="10.00")
            response = await client.post(
                "/api/payments/mpesa",
                json={"orderId": order_id, "phoneNumber": "0712345678"},
                headers=headers,
            )
    assert response.status_code == 200, response.text
    [sent] = world.stk_requests
    assert sent["TransactionType"] == "CustomerBuyGoodsOnline"
    assert sent["PartyB"] == "5551234" and sent["BusinessShortCode"] == api_shortcode()


def api_shortcode() -> str:
    return "174379"


@pytest.mark.parametrize(
    ("phone", "normalised"),
    [
        ("0712345678", "254712345678"),
        ("0112345678", "254112345678"),
        ("+254712345678", "254712345678"),
        ("254712345678", "254712345678"),
        ("712345678", "254712345678"),
        ("0712 345 678", "254712345678"),
    ],
)
async def test_phone_numbers_are_normalised(api, login, world, phone, normalised):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    response = await api.pay_mpesa(headers, order_id, phone=phone)
    assert response.status_code == 200, response.text
    assert world.stk_requests[0]["PhoneNumber"] == normalised
    assert world.stk_requests[0]["PartyA"] == normalised


@pytest.mark.parametrize("phone", ["0812345678", "12345", "+255712345678", "abc", ""])
async def test_other_phone_numbers_are_refused(api, login, world, phone):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    response = await api.pay_mpesa(headers, order_id, phone=phone)
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"
    assert response.json()["details"][0]["field"] == "phoneNumber"
    assert world.stk_requests == [] and await api.rows(Payment) == []


async def test_the_amount_must_be_the_order_total(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="150000.00")
    response = await api.pay_mpesa(headers, order_id, amount=1)
    assert response.status_code == 400
    assert response.json() == {
        "error": "Amount does not match the order total",
        "details": {"expected": "150000.00"},
    }
    ok = await api.pay_mpesa(headers, order_id, amount="150000")
    assert ok.status_code == 200, ok.text
    assert world.stk_requests[0]["Amount"] == 150000


async def test_a_total_with_cents_cannot_be_paid_by_mpesa(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1499.50")
    response = await api.pay_mpesa(headers, order_id)
    assert response.status_code == 400
    assert "whole shillings" in response.json()["error"]
    assert world.stk_requests == [] and await api.rows(Payment) == []


async def test_more_than_the_mpesa_maximum_is_refused(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="150001.00")
    response = await api.pay_mpesa(headers, order_id)
    assert response.status_code == 400
    assert response.json()["details"] == {"maximum": "150000.00"}
    assert world.stk_requests == []


async def test_another_currency_is_refused(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    response = await api.pay_mpesa(headers, order_id, currency="USD")
    assert response.status_code == 400
    assert response.json() == {"error": "Currency must be KES", "details": {"expected": "KES"}}


async def test_only_the_owner_can_pay_an_order(api, login, world):
    owner, _ = login()
    _, stranger = login()
    order_id = world.add_order(owner)
    response = await api.pay_mpesa(stranger, order_id)
    assert response.status_code == 404
    assert response.json() == {"error": "Order not found"}
    unknown = await api.pay_mpesa(stranger, "5f0c8d5e-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
    assert world.stk_requests == []


@pytest.mark.parametrize(
    ("status", "payment_status", "error"),
    [
        ("paid", "paid", "Order is already paid"),
        ("pending", "paid", "Order is already paid"),
        ("shipped", "paid", "Order is already paid"),
        ("cancelled", "pending", "Order is not payable"),
        ("confirmed", "pending", "Order is not payable"),
    ],
)
async def test_a_paid_or_closed_order_is_refused(api, login, world, status, payment_status, error):
    user_id, headers = login()
    order_id = world.add_order(user_id, status=status, payment_status=payment_status)
    response = await api.pay_mpesa(headers, order_id)
    assert response.status_code == 400
    assert response.json() == {"error": error}


async def test_an_order_paid_here_is_refused_before_the_order_service_hears_of_it(
    api, login, world
):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    first = await api.mpesa_processing(headers, order_id)
    callback = api.callback_body(first["checkoutRequestId"])
    world.order_service_down = True  # the update cannot be delivered yet
    assert (await api.callback(callback)).status_code == 200
    assert await api.deliver_outbox() == 0
    # The order service still says pending.
    world.order_service_down = False
    assert world.orders[order_id]["status"] == "pending"
    again = await api.pay_mpesa(headers, order_id)
    assert again.status_code == 400
    assert again.json() == {"error": "Order is already paid"}


async def test_one_attempt_in_flight_per_order(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    first = await api.mpesa_processing(headers, order_id)
    second = await api.pay_mpesa(headers, order_id)
    assert second.status_code == 409
    assert second.json()["error"] == "A payment for this order is already in progress"
    assert second.json()["payment"]["id"] == first["payment"]["id"]
    stripe = await api.pay_stripe(headers, order_id)
    assert stripe.status_code == 409
    assert len(world.stk_requests) == 1


async def test_concurrent_attempts_make_one_payment(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    responses = await asyncio.gather(*(api.pay_mpesa(headers, order_id) for _ in range(5)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409, 409]
    assert len(world.stk_requests) == 1
    assert len(await api.rows(Payment)) == 1


async def test_a_failed_attempt_leaves_the_order_payable(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    first = await api.mpesa_processing(headers, order_id)
    await api.callback(api.callback_body(first["checkoutRequestId"], code=1032))
    again = await api.pay_mpesa(headers, order_id)
    assert again.status_code == 200, again.text
    assert again.json()["payment"]["id"] != first["payment"]["id"]


async def test_the_idempotency_key_returns_the_first_answer(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    keyed = {**headers, "Idempotency-Key": "checkout-42"}
    first = await api.pay_mpesa(keyed, order_id)
    second = await api.pay_mpesa(keyed, order_id)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(world.stk_requests) == 1
    other_body = await api.pay_mpesa(keyed, order_id, phone="0722000000")
    assert other_body.status_code == 422
    assert other_body.json() == {"error": "Idempotency key reused with a different request"}


async def test_a_refusal_by_daraja_fails_the_payment_and_its_words_stay_in_the_log(
    api, login, world, caplog
):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    world.stk_response = (
        400,
        {
            "requestId": "1c5b-4ba8",
            "errorCode": "404.001.03",
            "errorMessage": "Invalid Access Token",
        },
    )
    with caplog.at_level(logging.WARNING, logger="payment_service.initiation"):
        response = await api.pay_mpesa(headers, order_id)
    assert response.status_code == 400
    assert response.json() == {"error": "Failed to initiate M-Pesa payment"}
    [payment] = await api.rows(Payment)
    assert payment.status == "failed"
    assert payment.error_message == "M-Pesa refused the payment request"
    shown = await api.client.get(f"/api/payments/{payment.id}", headers=headers)
    assert shown.status_code == 200
    assert "Invalid Access Token" not in shown.text and "404.001.03" not in shown.text
    [logged] = [r for r in caplog.records if r.getMessage() == "daraja refused an STK push"]
    assert logged.providerMessage == "Invalid Access Token"
    assert logged.errorCode == "404.001.03"


async def test_daraja_unreachable_is_a_502_and_a_failed_payment(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    world.stk_down = True
    response = await api.pay_mpesa(headers, order_id)
    assert response.status_code == 502
    assert response.json() == {"error": "M-Pesa is unavailable, try again"}
    [payment] = await api.rows(Payment)
    assert payment.status == "failed"


async def test_the_order_service_down_is_a_503(api, login, world):
    user_id, headers = login()
    order_id = world.add_order(user_id)
    world.order_service_down = True
    response = await api.pay_mpesa(headers, order_id)
    assert response.status_code == 503
    assert response.json() == {"error": "Order service unavailable"}


async def test_the_token_is_fetched_once_for_20_concurrent_payments(api, login, world):
    user_id, headers = login()
    orders = [world.add_order(user_id) for _ in range(20)]
    responses = await asyncio.gather(*(api.pay_mpesa(headers, o) for o in orders))
    assert [r.status_code for r in responses] == [200] * 20
    assert world.tokens_issued == 1
    # Cached: later payments reuse it.
    await api.pay_mpesa(headers, world.add_order(user_id))
    assert world.tokens_issued == 1


async def test_a_revoked_token_is_refreshed_once_and_the_calls_retried(api, login, world):
    user_id, headers = login()
    await api.pay_mpesa(headers, world.add_order(user_id))
    assert world.tokens_issued == 1
    world.revoked_tokens.add("token-1")  # Daraja now calls it invalid
    orders = [world.add_order(user_id) for _ in range(20)]
    responses = await asyncio.gather(*(api.pay_mpesa(headers, o) for o in orders))
    assert [r.status_code for r in responses] == [200] * 20
    assert world.tokens_issued == 2
    assert len(world.stk_requests) == 21


async def test_the_token_is_refreshed_before_it_expires(app, api, login, world):
    world.token_lifetime = "3599"
    user_id, headers = login()
    await api.pay_mpesa(headers, world.add_order(user_id))
    daraja = api.state.daraja
    # Move the clock to 50 s before Daraja's expiry: inside the safety margin.
    real_clock = daraja._clock
    daraja._clock = lambda: real_clock() + 3599 - 50
    await api.pay_mpesa(headers, world.add_order(user_id))
    assert world.tokens_issued == 2


async def test_mpesa_not_configured_is_a_503(make_settings, world, login):
    import httpx

    from payment_service.main import create_app
    from shared.testing import started

    app = create_app(make_settings(MPESA_CONSUMER_KEY=""))
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://payment") as client:
            user_id, headers = login()
            response = await client.post(
                "/api/payments/mpesa",
                json={"orderId": world.add_order(user_id), "phoneNumber": "0712345678"},
                headers=headers,
            )
    assert response.status_code == 503
    assert response.json() == {"error": "M-Pesa is not configured"}
