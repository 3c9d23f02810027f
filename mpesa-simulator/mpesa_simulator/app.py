"""The simulator's HTTP API: Daraja's paths, bodies and error shapes."""

import asyncio
import base64
import binascii
import hmac
import logging
import os
import re
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mpesa_simulator.numbers import SUCCESS, TEST_NUMBERS, Outcome

logger = logging.getLogger("mpesa_simulator")

NAIROBI = ZoneInfo("Africa/Nairobi")
TOKEN_LIFETIME = 3599
# How far a Timestamp may be from Nairobi's clock (a UTC one is 3 hours off).
TIMESTAMP_TOLERANCE = timedelta(minutes=5)
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
PHONE = re.compile(r"^254(7|1)\d{8}$")


@dataclass
class SimulatorSettings:
    consumer_key: str
    consumer_secret: str
    shortcode: str
    passkey: str
    port: int = 3010
    # Seconds between the STK Push and the customer's answer (and the callback).
    callback_delay: float = 2.0

    @classmethod
    def from_environment(cls) -> "SimulatorSettings":
        env = os.environ
        return cls(
            consumer_key=env.get("MPESA_CONSUMER_KEY") or "simulator-consumer-key",
            consumer_secret=env.get("MPESA_CONSUMER_SECRET") or "simulator-consumer-secret",
            shortcode=env.get("MPESA_SHORTCODE") or "174379",
            passkey=env.get("MPESA_PASSKEY") or SANDBOX_PASSKEY,
            port=int(env.get("MPESA_SIMULATOR_PORT") or 3010),
            callback_delay=float(env.get("MPESA_SIMULATOR_CALLBACK_DELAY") or 2.0),
        )


@dataclass
class Transaction:
    merchant_request_id: str
    checkout_request_id: str
    request: dict[str, Any]
    outcome: Outcome
    answer_at: float  # monotonic time the customer "answers"
    receipt: str
    callback_status: int | None = None
    callback_error: str | None = None


DarajaAnswer = dict[str, str] | JSONResponse


CALLBACKS_AT_ONCE = 20


@dataclass
class SimulatorState:
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    transactions: dict[str, Transaction] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # One client for every callback, made at the first: a client made per callback built a
    # TLS context each time, about 30 ms of CPU (the simulator's whole cost under load).
    callback_client: httpx.AsyncClient | None = None
    # Callbacks wait their turn here, not in the client's pool: a pool with hundreds of
    # requests waiting spends its time looking through them (quadratic), and fell behind
    # for good under a burst of STK Pushes.
    callback_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(CALLBACKS_AT_ONCE)
    )

    def callbacks(self) -> httpx.AsyncClient:
        if self.callback_client is None:
            self.callback_client = httpx.AsyncClient(
                timeout=10,
                limits=httpx.Limits(
                    max_connections=CALLBACKS_AT_ONCE, max_keepalive_connections=CALLBACKS_AT_ONCE
                ),
            )
        return self.callback_client


def daraja_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "requestId": f"{uuid.uuid4().hex[:4]}-{uuid.uuid4().hex[:20]}",
            "errorCode": code,
            "errorMessage": message,
        },
        status_code=status,
    )


def bad_request(field_name: str) -> JSONResponse:
    return daraja_error(400, "400.002.02", f"Bad Request - Invalid {field_name}")


def nairobi_now() -> datetime:
    return datetime.now(UTC).astimezone(NAIROBI)


def _receipt() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "S" + "".join(secrets.choice(alphabet) for _ in range(9))


def _check_credentials(body: dict[str, Any], settings: SimulatorSettings) -> JSONResponse | None:
    """BusinessShortCode, Timestamp and Password as Daraja checks them."""
    if str(body.get("BusinessShortCode", "")) != settings.shortcode:
        return bad_request("BusinessShortCode")
    timestamp = str(body.get("Timestamp", ""))
    try:
        sent_at = datetime.strptime(timestamp, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    except ValueError:
        return bad_request("Timestamp")
    if abs(sent_at - nairobi_now()) > TIMESTAMP_TOLERANCE:
        return bad_request("Timestamp")
    expected = base64.b64encode(
        f"{settings.shortcode}{settings.passkey}{timestamp}".encode()
    ).decode()
    if not hmac.compare_digest(str(body.get("Password", "")), expected):
        return daraja_error(500, "500.001.1001", "Wrong credentials")
    return None


def _validate_stk_push(body: dict[str, Any]) -> JSONResponse | None:
    if body.get("TransactionType") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
        return bad_request("TransactionType")
    amount = body.get("Amount")
    try:
        whole = int(str(amount))
    except ValueError:
        return bad_request("Amount")
    if whole < 1 or (isinstance(amount, float) and amount != whole):
        return bad_request("Amount")
    for name in ("PartyA", "PhoneNumber"):
        if not PHONE.match(str(body.get(name, ""))):
            return bad_request(name)
    if not re.fullmatch(r"\d{5,7}", str(body.get("PartyB", ""))):
        return bad_request("PartyB")
    callback = str(body.get("CallBackURL", ""))
    if not re.match(r"^https?://[^\s/]+", callback):
        return bad_request("CallBackURL")
    reference = body.get("AccountReference")
    if not isinstance(reference, str) or not 1 <= len(reference) <= 12:
        return bad_request("AccountReference")
    description = body.get("TransactionDesc", "")
    if not isinstance(description, str) or len(description) > 13:
        return bad_request("TransactionDesc")
    return None


def callback_body(transaction: Transaction) -> dict[str, Any]:
    outcome = transaction.outcome
    stk: dict[str, Any] = {
        "MerchantRequestID": transaction.merchant_request_id,
        "CheckoutRequestID": transaction.checkout_request_id,
        "ResultCode": outcome.result_code,
        "ResultDesc": outcome.result_desc,
    }
    if outcome.result_code == 0:
        stk["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": int(str(transaction.request["Amount"]))},
                {"Name": "MpesaReceiptNumber", "Value": transaction.receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": int(nairobi_now().strftime("%Y%m%d%H%M%S"))},
                {"Name": "PhoneNumber", "Value": int(transaction.request["PhoneNumber"])},
            ]
        }
    return {"Body": {"stkCallback": stk}}


def create_app(settings: SimulatorSettings | None = None) -> FastAPI:
    settings = settings or SimulatorSettings.from_environment()
    state = SimulatorState()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if state.callback_client is not None:
            await state.callback_client.aclose()

    app = FastAPI(title="M-Pesa Daraja simulator", description=__doc__, lifespan=lifespan)
    app.state.simulator = state
    app.state.settings = settings

    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        expiry = state.tokens.get(token.strip())
        return scheme.lower() == "bearer" and expiry is not None and expiry > time.monotonic()

    async def authorised_body(request: Request) -> dict[str, Any] | JSONResponse:
        """The JSON body of a call with a valid token, or Daraja's refusal."""
        if not authorised(request):
            return daraja_error(401, "404.001.03", "Invalid Access Token")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return daraja_error(400, "400.002.05", "Invalid Request Payload")
        return body

    async def deliver_callback(transaction: Transaction) -> None:
        await asyncio.sleep(max(0.0, transaction.answer_at - time.monotonic()))
        url = transaction.request["CallBackURL"]
        try:
            async with state.callback_slots:
                response = await state.callbacks().post(url, json=callback_body(transaction))
            transaction.callback_status = response.status_code
            logger.info(
                "callback for %s answered %s", transaction.checkout_request_id, response.status_code
            )
        except httpx.HTTPError as exc:
            transaction.callback_error = type(exc).__name__
            logger.warning("callback for %s failed: %s", transaction.checkout_request_id, exc)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "OK", "service": "M-Pesa Simulator"}

    # A Daraja answer or refusal: no response model (FastAPI would read one from the union).
    @app.get("/oauth/v1/generate", response_model=None)
    async def oauth(request: Request, grant_type: str | None = None) -> DarajaAnswer:
        if grant_type != "client_credentials":
            return daraja_error(400, "400.008.02", "Invalid grant type passed")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            key, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            key = secret = ""
        if scheme.lower() != "basic" or not (
            hmac.compare_digest(key, settings.consumer_key)
            and hmac.compare_digest(secret, settings.consumer_secret)
        ):
            return daraja_error(400, "400.008.01", "Invalid Authentication passed")
        token = secrets.token_urlsafe(21)
        state.tokens[token] = time.monotonic() + TOKEN_LIFETIME
        # Daraja sends expires_in as a string.
        return {"access_token": token, "expires_in": str(TOKEN_LIFETIME)}

    @app.post("/mpesa/stkpush/v1/processrequest", response_model=None)
    async def stk_push(request: Request) -> DarajaAnswer:
        body = await authorised_body(request)
        if isinstance(body, JSONResponse):
            return body
        refusal = _check_credentials(body, settings) or _validate_stk_push(body)
        if refusal is not None:
            return refusal
        phone = str(body["PhoneNumber"])
        outcome = TEST_NUMBERS.get(phone, ("", SUCCESS))[1]
        transaction = Transaction(
            merchant_request_id=f"{uuid.uuid4().hex[:4]}-{uuid.uuid4().hex[:4]}-{uuid.uuid4().hex[:16]}",
            checkout_request_id=f"ws_CO_{nairobi_now().strftime('%d%m%Y%H%M%S')}{secrets.randbelow(10**12):012d}",
            request=body,
            outcome=outcome,
            answer_at=time.monotonic() + settings.callback_delay,
            receipt=_receipt(),
        )
        state.transactions[transaction.checkout_request_id] = transaction
        if outcome.send_callback:
            task = asyncio.create_task(deliver_callback(transaction))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        logger.info(
            "stk push %s: %s",
            transaction.checkout_request_id,
            TEST_NUMBERS.get(phone, ("success",))[0],
        )
        return {
            "MerchantRequestID": transaction.merchant_request_id,
            "CheckoutRequestID": transaction.checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        }

    @app.post("/mpesa/stkpushquery/v1/query", response_model=None)
    async def stk_query(request: Request) -> DarajaAnswer:
        body = await authorised_body(request)
        if isinstance(body, JSONResponse):
            return body
        refusal = _check_credentials(body, settings)
        if refusal is not None:
            return refusal
        transaction = state.transactions.get(str(body.get("CheckoutRequestID", "")))
        if transaction is None:
            return bad_request("CheckoutRequestID")
        outcome = transaction.outcome
        if outcome.result_code is None or time.monotonic() < transaction.answer_at:
            return daraja_error(500, "500.001.1001", "The transaction is being processed")
        return {
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successsfully",
            "MerchantRequestID": transaction.merchant_request_id,
            "CheckoutRequestID": transaction.checkout_request_id,
            "ResultCode": str(outcome.result_code),
            "ResultDesc": outcome.result_desc,
        }

    @app.get("/simulator/transactions")
    async def transactions() -> dict[str, Any]:
        """What the simulator did (for people and tests): each STK Push and its callback."""
        return {
            "transactions": [
                {
                    "checkoutRequestId": t.checkout_request_id,
                    "phoneNumber": t.request.get("PhoneNumber"),
                    "amount": t.request.get("Amount"),
                    "resultCode": t.outcome.result_code,
                    "receipt": t.receipt if t.outcome.result_code == 0 else None,
                    "callbackStatus": t.callback_status,
                    "callbackError": t.callback_error,
                }
                for t in state.transactions.values()
            ]
        }

    @app.get("/simulator/test-numbers")
    async def test_numbers() -> dict[str, str]:
        return {phone: description for phone, (description, _) in TEST_NUMBERS.items()}

    return app
