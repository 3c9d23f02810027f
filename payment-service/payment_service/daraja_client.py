"""Safaricom Daraja (M-Pesa Express): OAuth, STK Push and STK Query.

Shapes as Daraja documents them: errors are `{"requestId", "errorCode",
"errorMessage"}`; an accepted STK Push is `{"MerchantRequestID",
"CheckoutRequestID", "ResponseCode": "0", ...}`; STK Query answers
`{"ResponseCode", "ResultCode", "ResultDesc", ...}`, or HTTP 500 with errorCode
`500.001.1001` "The transaction is being processed" while the customer has not
answered yet.
"""

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from shared.http_client import json_object

logger = logging.getLogger(__name__)

# Daraja wants the Timestamp in Kenyan time, whatever the server's time zone
# (tzdata is a dependency: slim containers have no system zone database).
NAIROBI = ZoneInfo("Africa/Nairobi")
OAUTH_PATH = "/oauth/v1/generate?grant_type=client_credentials"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"
# "Invalid Access Token": Daraja has used both codes.
INVALID_TOKEN_CODES = frozenset({"404.001.03", "400.003.01"})
BEING_PROCESSED = "500.001.1001"
# Refresh the token this long before Daraja says it expires.
TOKEN_EXPIRY_MARGIN = 60.0
ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13


class DarajaError(Exception):
    """Daraja could not do what was asked."""


class DarajaUnavailable(DarajaError):
    """No answer (connection refused, timeout) or not one of Daraja's answers."""


class DarajaRefused(DarajaError):
    """Daraja answered with a refusal: its own error code and message."""

    def __init__(self, status_code: int, error_code: str | None, message: str) -> None:
        self.status_code = status_code
        self.error_code = error_code
        self.error_message = message
        super().__init__(f"{error_code}: {message}")

    def details(self) -> dict[str, Any]:
        return {"errorCode": self.error_code, "errorMessage": self.error_message}


@dataclass(frozen=True)
class StkPushAccepted:
    merchant_request_id: str
    checkout_request_id: str
    response_description: str
    customer_message: str


class StkQueryState(StrEnum):
    """What STK Query says of a payment."""

    PENDING = "pending"  # the customer has not answered yet
    COMPLETED = "completed"  # paid (ResultCode 0)
    FAILED = "failed"  # any other ResultCode: insufficient funds, cancelled, timeout...


@dataclass(frozen=True)
class StkQueryResult:
    state: StkQueryState
    result_code: str | None = None
    result_desc: str | None = None


def daraja_timestamp(now: datetime | None = None) -> str:
    """YYYYMMDDHHmmss in Africa/Nairobi time."""
    return (now or datetime.now(UTC)).astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def daraja_password(shortcode: str, passkey: str, timestamp: str) -> str:
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


def _refusal(response: httpx.Response) -> DarajaError:
    """Daraja's error body, or unavailable when the answer is not Daraja's (a proxy's
    HTML page, an empty 503)."""
    body = json_object(response)
    if body and ("errorCode" in body or "errorMessage" in body):
        return DarajaRefused(
            response.status_code,
            str(body.get("errorCode")) if body.get("errorCode") is not None else None,
            str(body.get("errorMessage") or "Request refused"),
        )
    if body and "resultCode" in body:  # the OAuth endpoint's own shape
        return DarajaRefused(
            response.status_code, str(body["resultCode"]), str(body.get("resultDesc") or "")
        )
    if response.status_code >= 500 or body is None:
        return DarajaUnavailable(f"Daraja answered HTTP {response.status_code}")
    return DarajaRefused(response.status_code, None, f"HTTP {response.status_code}")


def _is_invalid_token(response: httpx.Response) -> bool:
    if response.status_code == 401:
        return True
    body = json_object(response)
    return body is not None and str(body.get("errorCode")) in INVALID_TOKEN_CODES


class DarajaClient:
    def __init__(
        self,
        *,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        shortcode: str,
        passkey: str,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self.shortcode = shortcode
        self._passkey = passkey
        self._http = http
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()

    # --- OAuth ----------------------------------------------------------------------
    async def access_token(self, *, rejected: str | None = None) -> str:
        """A valid token: the cached one, or a new one. Concurrent callers share one fetch;
        `rejected` is a token Daraja just refused, never handed out again."""
        token = self._usable_token(rejected)
        if token:
            return token
        async with self._token_lock:
            token = self._usable_token(rejected)  # fetched while we waited
            if token:
                return token
            return await self._fetch_token()

    def _usable_token(self, rejected: str | None) -> str | None:
        if self._token and self._token != rejected and self._clock() < self._token_expires_at:
            return self._token
        return None

    async def _fetch_token(self) -> str:
        try:
            response = await self._http.get(
                self.base_url + OAUTH_PATH, auth=(self._consumer_key, self._consumer_secret)
            )
        except httpx.HTTPError as exc:
            raise DarajaUnavailable(f"OAuth: {type(exc).__name__}") from exc
        body = json_object(response)
        if response.status_code != 200 or not body or not body.get("access_token"):
            logger.error(
                "daraja refused the OAuth credentials", extra={"status": response.status_code}
            )
            raise _refusal(response)
        try:
            lifetime = float(body.get("expires_in", 3599))  # Daraja sends a string: "3599"
        except (TypeError, ValueError):
            lifetime = 3599.0
        margin = min(TOKEN_EXPIRY_MARGIN, lifetime / 2)
        self._token = str(body["access_token"])
        self._token_expires_at = self._clock() + lifetime - margin
        return self._token

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST with the bearer token; a token Daraja calls invalid is replaced and the call
        made once more."""
        token = await self.access_token()
        response = await self._send(path, body, token)
        if _is_invalid_token(response):
            logger.info("daraja refused the access token; fetching a new one")
            token = await self.access_token(rejected=token)
            response = await self._send(path, body, token)
        return response

    async def _send(self, path: str, body: dict[str, Any], token: str) -> httpx.Response:
        try:
            return await self._http.post(
                self.base_url + path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise DarajaUnavailable(f"{path}: {type(exc).__name__}") from exc

    def _credentials(self, now: datetime | None = None) -> dict[str, str]:
        timestamp = daraja_timestamp(now)
        return {
            "BusinessShortCode": self.shortcode,
            "Password": daraja_password(self.shortcode, self._passkey, timestamp),
            "Timestamp": timestamp,
        }

    # --- STK Push -------------------------------------------------------------------
    def stk_push_body(
        self,
        *,
        amount: Decimal,
        phone: str,
        callback_url: str,
        account_reference: str,
        transaction_desc: str,
        transaction_type: str,
        party_b: str | None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        if amount != amount.to_integral_value():
            raise ValueError("M-Pesa amounts are whole shillings")
        return {
            **self._credentials(now),
            "TransactionType": transaction_type,
            "Amount": int(amount),
            "PartyA": phone,
            "PartyB": party_b or self.shortcode,
            "PhoneNumber": phone,
            "CallBackURL": callback_url,
            "AccountReference": account_reference[:ACCOUNT_REFERENCE_MAX],
            "TransactionDesc": transaction_desc[:TRANSACTION_DESC_MAX],
        }

    async def stk_push(self, body: dict[str, Any]) -> StkPushAccepted:
        response = await self._post(STK_PUSH_PATH, body)
        data = json_object(response)
        if response.status_code != 200 or not data:
            raise _refusal(response)
        if str(data.get("ResponseCode")) != "0" or not data.get("CheckoutRequestID"):
            raise DarajaRefused(
                response.status_code,
                str(data.get("ResponseCode")),
                str(data.get("ResponseDescription") or data.get("errorMessage") or "Refused"),
            )
        return StkPushAccepted(
            merchant_request_id=str(data.get("MerchantRequestID", "")),
            checkout_request_id=str(data["CheckoutRequestID"]),
            response_description=str(data.get("ResponseDescription", "")),
            customer_message=str(data.get("CustomerMessage", "")),
        )

    # --- STK Query ------------------------------------------------------------------
    async def stk_query(self, checkout_request_id: str) -> StkQueryResult:
        response = await self._post(
            STK_QUERY_PATH, {**self._credentials(), "CheckoutRequestID": checkout_request_id}
        )
        data = json_object(response)
        if response.status_code == 200 and data:
            code = data.get("ResultCode")
            if code is None or str(code).strip() == "":
                return StkQueryResult(StkQueryState.PENDING)
            code = str(code).strip()
            state = StkQueryState.COMPLETED if code == "0" else StkQueryState.FAILED
            return StkQueryResult(state, code, str(data.get("ResultDesc", "")))
        if (
            data
            and str(data.get("errorCode")) == BEING_PROCESSED
            and "being processed" in str(data.get("errorMessage", "")).lower()
        ):
            return StkQueryResult(
                StkQueryState.PENDING, BEING_PROCESSED, str(data.get("errorMessage"))
            )
        raise _refusal(response)
