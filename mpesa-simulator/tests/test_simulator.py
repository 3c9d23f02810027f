"""The simulator answers as Daraja does, and the payment service's Daraja client and the
simulator agree (a contract test: the same client code talks to Safaricom)."""

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

from mpesa_simulator.app import SimulatorSettings, create_app
from payment_service.daraja_client import (
    DarajaClient,
    DarajaRefused,
    daraja_password,
    daraja_timestamp,
)

NAIROBI = ZoneInfo("Africa/Nairobi")
SHORTCODE = "174379"
PASSKEY = "test-passkey"
CALLBACK = "https://shop.test/api/payments/webhook/mpesa/secret"


@pytest.fixture
def callback_delay() -> float:
    """Seconds before the simulated customer answers (a test may override it)."""
    return 0.05


@pytest.fixture
def simulator(callback_delay):
    return create_app(
        SimulatorSettings(
            consumer_key="key",
            consumer_secret="secret",
            shortcode=SHORTCODE,
            passkey=PASSKEY,
            callback_delay=callback_delay,
        )
    )


@pytest.fixture
def callbacks():
    """Callbacks the simulator POSTs, caught on their way out."""
    received = []
    with respx.mock(assert_all_called=False) as router:
        router.route(host="simulator").pass_through()
        router.post(CALLBACK).mock(
            side_effect=lambda request: received.append(request) or httpx.Response(200)
        )
        yield received


@pytest.fixture
async def http(simulator, callbacks):
    transport = httpx.ASGITransport(app=simulator)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator") as client:
        yield client


@pytest.fixture
def daraja(http):
    return DarajaClient(
        base_url="http://simulator",
        consumer_key="key",
        consumer_secret="secret",
        shortcode=SHORTCODE,
        passkey=PASSKEY,
        http=http,
    )


def push_body(daraja: DarajaClient, phone="254712345678", **overrides):
    body = daraja.stk_push_body(
        amount=Decimal("1500"),
        phone=phone,
        callback_url=CALLBACK,
        account_reference="ORDER123",
        transaction_desc="Order payment",
        transaction_type="CustomerPayBillOnline",
        party_b=None,
    )
    return {**body, **overrides}


async def wait_for(condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_oauth_answers_a_token_with_expires_in_as_a_string(http):
    response = await http.get(
        "/oauth/v1/generate?grant_type=client_credentials", auth=("key", "secret")
    )
    assert response.status_code == 200
    assert response.json()["expires_in"] == "3599" and response.json()["access_token"]
    wrong = await http.get("/oauth/v1/generate?grant_type=client_credentials", auth=("key", "nope"))
    assert wrong.status_code == 400
    assert wrong.json()["errorCode"] == "400.008.01"
    assert set(wrong.json()) == {"requestId", "errorCode", "errorMessage"}


async def test_a_paid_stk_push_calls_back_with_the_receipt_and_query_agrees(
    daraja, callbacks, simulator
):
    accepted = await daraja.stk_push(push_body(daraja))
    assert accepted.checkout_request_id.startswith("ws_CO_")
    # Before the customer answers: "being processed", not a failure.
    assert (await daraja.stk_query(accepted.checkout_request_id)).state == "pending"
    await wait_for(lambda: callbacks)
    stk = json.loads(callbacks[0].content)["Body"]["stkCallback"]
    assert stk["CheckoutRequestID"] == accepted.checkout_request_id
    assert stk["ResultCode"] == 0
    items = {item["Name"]: item.get("Value") for item in stk["CallbackMetadata"]["Item"]}
    assert items["Amount"] == 1500 and items["PhoneNumber"] == 254712345678
    assert len(items["MpesaReceiptNumber"]) == 10
    result = await daraja.stk_query(accepted.checkout_request_id)
    assert result.state == "completed" and result.result_code == "0"


@pytest.mark.parametrize(
    ("phone", "code"),
    [("254700000001", 1), ("254700000002", 1032), ("254700000003", 1037), ("254700000004", 2001)],
)
async def test_test_numbers_choose_the_outcome(daraja, callbacks, phone, code):
    accepted = await daraja.stk_push(push_body(daraja, phone=phone))
    await wait_for(lambda: callbacks)
    stk = json.loads(callbacks[0].content)["Body"]["stkCallback"]
    assert stk["ResultCode"] == code and "CallbackMetadata" not in stk
    result = await daraja.stk_query(accepted.checkout_request_id)
    assert result.state == "failed" and result.result_code == str(code)


@pytest.mark.parametrize("callback_delay", [0.0])
async def test_a_lost_callback_number_sends_none_but_query_knows(simulator, daraja, callbacks):
    accepted = await daraja.stk_push(push_body(daraja, phone="254700000005"))
    # No callback is on its way (a delivery is a task of the simulator's), yet the
    # customer has answered (no delay): STK Query knows it was paid.
    assert simulator.state.simulator.tasks == set()
    assert (await daraja.stk_query(accepted.checkout_request_id)).state == "completed"
    assert callbacks == []


@pytest.mark.parametrize("callback_delay", [0.0])
async def test_a_never_answered_number_stays_being_processed(simulator, daraja, callbacks):
    accepted = await daraja.stk_push(push_body(daraja, phone="254700000006"))
    assert simulator.state.simulator.tasks == set()
    # Past its answer time (no delay), and still being processed.
    assert (await daraja.stk_query(accepted.checkout_request_id)).state == "pending"
    assert callbacks == []


async def test_a_utc_timestamp_is_refused_as_daraja_does(daraja):
    utc_now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")  # the original's bug
    body = push_body(
        daraja, Timestamp=utc_now, Password=daraja_password(SHORTCODE, PASSKEY, utc_now)
    )
    with pytest.raises(DarajaRefused) as refused:
        await daraja.stk_push(body)
    assert refused.value.error_code == "400.002.02"
    assert refused.value.error_message == "Bad Request - Invalid Timestamp"


async def test_a_wrong_password_is_wrong_credentials(daraja):
    timestamp = daraja_timestamp()
    body = push_body(
        daraja, Password=base64.b64encode(b"174379wrong" + timestamp.encode()).decode()
    )
    with pytest.raises(DarajaRefused) as refused:
        await daraja.stk_push(body)
    assert refused.value.status_code == 500
    assert refused.value.error_message == "Wrong credentials"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("AccountReference", "THIRTEEN-CHAR"),
        ("TransactionDesc", "fourteen chars"),
        ("PhoneNumber", "0712345678"),
        ("Amount", 0),
        ("CallBackURL", "not a url"),
        ("TransactionType", "CustomerPayBill"),
        ("BusinessShortCode", "999999"),
    ],
)
async def test_invalid_fields_are_darajas_bad_request(daraja, field, value):
    with pytest.raises(DarajaRefused) as refused:
        await daraja.stk_push(push_body(daraja, **{field: value}))
    assert refused.value.status_code == 400
    assert refused.value.error_message.startswith("Bad Request - Invalid")


async def test_an_unknown_token_is_invalid_access_token(http):
    response = await http.post(
        "/mpesa/stkpush/v1/processrequest", json={}, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert response.json()["errorCode"] == "404.001.03"


async def test_a_timestamp_a_minute_old_in_nairobi_time_is_fine(daraja):
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    timestamp = daraja_timestamp(earlier)
    assert timestamp == earlier.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")
    body = push_body(
        daraja, Timestamp=timestamp, Password=daraja_password(SHORTCODE, PASSKEY, timestamp)
    )
    assert (await daraja.stk_push(body)).checkout_request_id


async def test_the_test_numbers_are_listed(http):
    numbers = (await http.get("/simulator/test-numbers")).json()
    assert "254700000002" in numbers and "cancelled" in numbers["254700000002"]
