"""What a log line may hold: JSON, one object per line, with its context; never a
token, a password, a secret, a card number or a whole phone number."""

import io
import json
import logging
import uuid

import httpx
import pytest
from fastapi import APIRouter

from shared.app import create_app
from shared.logging import json_handler
from shared.redaction import REDACTED, mask_phone, redact_text
from shared.request_context import request_id_var
from shared.settings import ServiceSettings
from shared.testing import TestKeys

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6IjEyMyIsInJvbGUiOiJhZG1pbiJ9."
    "c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
)


@pytest.fixture
def log_lines():
    """A logger writing through the services' handler into a buffer; returns the lines."""
    stream = io.StringIO()
    logger = logging.getLogger(f"test.redaction.{uuid.uuid4().hex}")
    logger.handlers = [json_handler("orders", stream)]
    logger.propagate = False
    logger.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    lines.logger = logger
    lines.raw = stream.getvalue
    return lines


def test_a_line_is_one_json_object_with_time_level_service_and_request_id(log_lines):
    token = request_id_var.set("req-42")
    try:
        log_lines.logger.info("order created", extra={"orderId": "o-1", "total": "150.00"})
    finally:
        request_id_var.reset(token)
    [line] = log_lines()
    assert line["level"] == "INFO"
    assert line["service"] == "orders"
    assert line["requestId"] == "req-42"
    assert line["message"] == "order created"
    assert line["orderId"] == "o-1"
    assert line["total"] == "150.00"
    assert line["time"][:4].isdigit() and "T" in line["time"]


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("254712345678", "*********678"),
        ("+254712345678", "*********678"),
        ("0712345678", "*******678"),
        ("0112 345 678", "*******678"),
        ("712345678", "******678"),
    ],
)
def test_phone_numbers_keep_only_their_last_three_digits(log_lines, phone, masked):
    log_lines.logger.info(
        "STK push sent to %s", phone, extra={"phoneNumber": phone, "PartyA": int("254712345678")}
    )
    [line] = log_lines()
    assert line["message"] == f"STK push sent to {masked}"
    assert line["phoneNumber"] == masked
    assert line["PartyA"] == "*********678"
    digits = "".join(ch for ch in phone if ch.isdigit())
    assert digits not in log_lines.raw().replace(" ", "")


def test_tokens_passwords_and_secrets_never_pass(log_lines):
    log_lines.logger.warning(
        "login failed for password=hunter2-secret with Authorization: Bearer %s",
        JWT,
        extra={
            "password": "hunter2-secret",
            "headers": {"authorization": f"Bearer {JWT}", "x-internal-token": "internal-abc"},
            "jwtSecret": "s3cr3t-value-that-is-long",
            "stripeKey": "sk_test_51Habcdefghijklmnop",
            "body": '{"email": "a@b.co", "password": "hunter2-secret"}',
            "databaseUrl": "postgresql://shop:db-password-9@order-db:5432/ecommerce_order",
            "callbackPath": "/api/payments/webhook/mpesa/cb-secret-123",
        },
    )
    raw = log_lines.raw()
    for secret in (
        "hunter2-secret",
        JWT,
        JWT.split(".")[1],
        "internal-abc",
        "s3cr3t-value-that-is-long",
        "sk_test_51Habcdefghijklmnop",
        "db-password-9",
        "cb-secret-123",
    ):
        assert secret not in raw
    [line] = log_lines()
    assert line["password"] == REDACTED
    assert line["headers"]["authorization"] == REDACTED
    assert line["databaseUrl"] == f"postgresql://shop:{REDACTED}@order-db:5432/ecommerce_order"
    assert line["callbackPath"] == f"/api/payments/webhook/mpesa/{REDACTED}"
    assert "a@b.co" in line["body"]  # the rest of the text stays readable


def test_exception_text_is_masked_too(log_lines):
    try:
        raise ValueError(f"bad token {JWT} for 0712345678 card 4242 4242 4242 4242")
    except ValueError:
        log_lines.logger.exception("payment failed")
    [line] = log_lines()
    assert JWT not in line["exc_info"]
    assert "0712345678" not in line["exc_info"] and "*******678" in line["exc_info"]
    assert "4242 4242 4242 4242" not in line["exc_info"]
    assert "************4242" in line["exc_info"]
    assert "ValueError" in line["exc_info"]


def test_ordinary_values_are_left_alone():
    order_id = "0b7f6c8e-1234-4712-8456-712345678901"
    text = (
        f"order {order_id} total 150000.00 KES, 3 items, took 12.5 ms at 1712345678, "
        "reference ORD-2024-000123"
    )
    assert redact_text(text) == text
    assert mask_phone("+254 712 345 678") == "*********678"


@pytest.fixture
def restore_root_logging():
    """create_app points the root logger at the captured stdout; put it back after."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield
    root.handlers = handlers


async def test_the_access_log_line_of_a_request(capsys, restore_root_logging):
    """Through a real app: method, path, status, duration, request id; a webhook
    secret in the path is masked."""
    router = APIRouter()

    @router.post("/api/webhook/mpesa/{secret}")
    async def callback(secret: str) -> dict:
        return {"ResultCode": 0}

    app = create_app(
        name="payment",
        title="Payment Service",
        settings=ServiceSettings(_env_file=None, **TestKeys().settings_for("payment")),
        routers=[router],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://payment") as client:
        response = await client.post(
            "/api/webhook/mpesa/callback-secret-xyz", headers={"X-Request-ID": "cb-1"}
        )
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    [access] = [line for line in lines if line.get("message") == "request"]
    assert access["service"] == "payment"
    assert access["requestId"] == "cb-1"
    assert access["method"] == "POST"
    assert access["status"] == 200
    assert access["path"] == f"/api/webhook/mpesa/{REDACTED}"
    assert isinstance(access["durationMs"], float)
    assert "callback-secret-xyz" not in json.dumps(lines)
