import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from payment_service import mpesa_status_poller
from payment_service.config import PaymentSettings
from payment_service.main import create_app
from payment_service.models import Base, Payment
from payment_service.outbox import deliver_outbox
from payment_service.state import PaymentState
from shared.service_fixtures import database_fixtures
from shared.state import state_of
from shared.testing import bearer, started

SERVICE_DIR = Path(__file__).resolve().parent.parent
AUTH_URL = "http://auth.test"
ORDER_URL = "http://orders.test"
DARAJA_URL = "https://daraja.test"
STRIPE_URL = "https://stripe.test"
CALLBACK_URL = "https://shop.example.com/api/payments/webhook/mpesa"
SHORTCODE = "174379"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
CALLBACK_SECRET = "cb-secret-" + "x" * 40
STRIPE_WEBHOOK_SECRET = "whsec_test_secret"


database_url, engine, _clean_tables, secrets_ = database_fixtures(
    "payment", SERVICE_DIR, Base.metadata
)


@pytest.fixture
def make_settings(database_url, secrets_):
    def make(**overrides) -> PaymentSettings:
        values = {
            "PAYMENT_DATABASE_URL": database_url,
            "WORKERS_ENABLED": "false",
            "AUTH_SERVICE_URL": AUTH_URL,
            "ORDER_SERVICE_URL": ORDER_URL,
            "MPESA_ENVIRONMENT": "sandbox",
            "MPESA_BASE_URL": DARAJA_URL,
            "MPESA_CONSUMER_KEY": "consumer-key",
            "MPESA_CONSUMER_SECRET": "consumer-secret",
            "MPESA_SHORTCODE": SHORTCODE,
            "MPESA_PASSKEY": PASSKEY,
            "MPESA_CALLBACK_URL": CALLBACK_URL,
            "MPESA_CALLBACK_SECRET": CALLBACK_SECRET,
            "STRIPE_SECRET_KEY": "sk_test_123",
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            "STRIPE_API_BASE": STRIPE_URL,
            **secrets_,
        }
        return PaymentSettings(_env_file=None, **{**values, **overrides})

    return make


@pytest.fixture
def settings(make_settings):
    return make_settings()


@dataclass
class FakeWorld:
    """The HTTP we do not own (Daraja, Stripe) and the neighbours (auth, orders), faked with
    respx. Tests change its fields to make a provider refuse, a service go down, ..."""

    roles: dict[str, str] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    order_service_down: bool = False
    status_updates: list[dict[str, Any]] = field(default_factory=list)
    applied_events: set[str] = field(default_factory=set)
    # Daraja
    tokens_issued: int = 0
    token_lifetime: str = "3599"
    revoked_tokens: set[str] = field(default_factory=set)
    stk_requests: list[dict[str, Any]] = field(default_factory=list)
    stk_response: tuple[int, Any] | None = None
    stk_down: bool = False
    query_results: dict[str, tuple[int, Any]] = field(default_factory=dict)
    query_requests: list[dict[str, Any]] = field(default_factory=list)
    # Stripe
    stripe_requests: list[httpx.Request] = field(default_factory=list)
    stripe_intent_error: tuple[int, Any] | None = None
    refund_status: str = "succeeded"
    stripe_refund_error: tuple[int, Any] | None = None
    # The PaymentIntents created, as Stripe keeps them (listed by reconciliation).
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    stripe_down: bool = False

    def add_order(
        self, user_id, total="1500.00", status="pending", payment_status="pending", **extra
    ) -> str:
        order_id = str(uuid.uuid4())
        self.orders[order_id] = {
            "id": order_id,
            "userId": str(user_id),
            "orderNumber": "ORD-1732000000000-ABC123XYZ",
            "status": status,
            "paymentStatus": payment_status,
            "totalAmount": total,
            "currency": "KES",
            "items": [],
            "paymentMethod": None,
            "paymentIds": [],
            "createdAt": datetime.now(UTC).isoformat(),
            **extra,
        }
        return order_id

    # --- neighbours ---------------------------------------------------------------
    def user_status(self, request: httpx.Request, user_id: str) -> httpx.Response:
        role = self.roles.get(user_id)
        if role is None:
            return httpx.Response(404, json={"error": "User not found"})
        return httpx.Response(
            200,
            json={"user": {"id": user_id, "role": role, "isActive": True, "tokensValidAfter": 0}},
        )

    def get_order(self, request: httpx.Request, order_id: str) -> httpx.Response:
        if self.order_service_down:
            raise httpx.ConnectError("order service down")
        order = self.orders.get(order_id)
        if order is None:
            return httpx.Response(404, json={"error": "Order not found"})
        return httpx.Response(200, json={"order": order})

    def list_orders(self, request: httpx.Request) -> httpx.Response:
        """GET /api/internal/orders?from&to&page&limit: newest first, as the order service."""
        if self.order_service_down:
            raise httpx.ConnectError("order service down")
        params = request.url.params
        start = datetime.fromisoformat(params["from"])
        end = datetime.fromisoformat(params["to"])
        page, limit = int(params.get("page", 1)), int(params.get("limit", 10))
        selected = sorted(
            (
                o
                for o in self.orders.values()
                if start <= datetime.fromisoformat(o["createdAt"]) < end
            ),
            key=lambda o: o["createdAt"],
            reverse=True,
        )
        return httpx.Response(
            200,
            json={
                "orders": selected[(page - 1) * limit : page * limit],
                "totalPages": (len(selected) + limit - 1) // limit,
                "currentPage": page,
                "totalOrders": len(selected),
            },
        )

    def update_status(self, request: httpx.Request) -> httpx.Response:
        if self.order_service_down:
            raise httpx.ConnectError("order service down")
        body = json.loads(request.content)
        self.status_updates.append(body)
        applied = body["eventId"] not in self.applied_events
        self.applied_events.add(body["eventId"])
        order = self.orders.get(body["orderId"])
        if applied and order is not None:
            if body.get("status"):
                order["status"] = body["status"]
            if body.get("paymentStatus"):
                order["paymentStatus"] = body["paymentStatus"]
        return httpx.Response(200, json={"order": order, "applied": applied})

    # --- Daraja -------------------------------------------------------------------
    def oauth(self, request: httpx.Request) -> httpx.Response:
        self.tokens_issued += 1
        return httpx.Response(
            200,
            json={"access_token": f"token-{self.tokens_issued}", "expires_in": self.token_lifetime},
        )

    def _token_ok(self, request: httpx.Request) -> bool:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return token.startswith("token-") and token not in self.revoked_tokens

    def stk_push(self, request: httpx.Request) -> httpx.Response:
        if self.stk_down:
            raise httpx.ConnectTimeout("daraja timed out")
        if not self._token_ok(request):
            return httpx.Response(
                401,
                json={
                    "requestId": "1-2-3",
                    "errorCode": "404.001.03",
                    "errorMessage": "Invalid Access Token",
                },
            )
        body = json.loads(request.content)
        self.stk_requests.append(body)
        if self.stk_response is not None:
            status, answer = self.stk_response
            return httpx.Response(status, json=answer)
        checkout = f"ws_CO_{len(self.stk_requests)}_{uuid.uuid4().hex[:8]}"
        return httpx.Response(
            200,
            json={
                "MerchantRequestID": f"m-{uuid.uuid4().hex[:8]}",
                "CheckoutRequestID": checkout,
                "ResponseCode": "0",
                "ResponseDescription": "Success. Request accepted for processing",
                "CustomerMessage": "Success. Request accepted for processing",
            },
        )

    def stk_query(self, request: httpx.Request) -> httpx.Response:
        if not self._token_ok(request):
            return httpx.Response(
                401, json={"errorCode": "404.001.03", "errorMessage": "Invalid Access Token"}
            )
        body = json.loads(request.content)
        self.query_requests.append(body)
        status, answer = self.query_results.get(
            body["CheckoutRequestID"],
            (
                200,
                {
                    "ResponseCode": "0",
                    "ResponseDescription": "The service request has been accepted successsfully",
                    "MerchantRequestID": "m",
                    "CheckoutRequestID": body["CheckoutRequestID"],
                    "ResultCode": "0",
                    "ResultDesc": "The service request is processed successfully.",
                },
            ),
        )
        return httpx.Response(status, json=answer)

    def query_says(self, checkout_id: str, code: str, desc: str = "Failed") -> None:
        self.query_results[checkout_id] = (
            200,
            {"ResponseCode": "0", "ResultCode": code, "ResultDesc": desc},
        )

    def query_pending(self, checkout_id: str) -> None:
        self.query_results[checkout_id] = (
            500,
            {
                "requestId": "r",
                "errorCode": "500.001.1001",
                "errorMessage": "The transaction is being processed",
            },
        )

    # --- Stripe -------------------------------------------------------------------
    def stripe_intent(self, request: httpx.Request) -> httpx.Response:
        self.stripe_requests.append(request)
        if self.stripe_intent_error is not None:
            status, body = self.stripe_intent_error
            return httpx.Response(status, json=body)
        form = parse_qs(request.content.decode())
        intent_id = f"pi_{uuid.uuid4().hex[:16]}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(form["amount"][0]),
            "amount_received": 0,
            "currency": form["currency"][0],
            "client_secret": f"{intent_id}_secret_abc",
            "status": "requires_payment_method",
            "created": int(time.time()),
            "latest_charge": None,
            "metadata": {
                key[len("metadata[") : -1]: values[0]
                for key, values in form.items()
                if key.startswith("metadata[")
            },
        }
        self.intents[intent_id] = intent
        return httpx.Response(200, json=intent)

    def stripe_succeeds(self, intent_id: str) -> dict[str, Any]:
        """The customer paid: Stripe says so when asked (whether its webhook came or not)."""
        intent = self.intents[intent_id]
        intent.update(
            status="succeeded",
            amount_received=intent["amount"],
            latest_charge=f"ch_{uuid.uuid4().hex[:12]}",
        )
        return intent

    def stripe_list_intents(self, request: httpx.Request) -> httpx.Response:
        if self.stripe_down:
            raise httpx.ConnectError("stripe down")
        params = request.url.params
        gte = int(params.get("created[gte]", 0))
        lt = int(params.get("created[lt]", 2**40))
        limit = int(params.get("limit", 10))
        selected = sorted(
            (i for i in self.intents.values() if gte <= i["created"] < lt),
            key=lambda i: i["id"],
        )
        after = params.get("starting_after")
        if after:
            selected = [i for i in selected if i["id"] > after]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "url": "/v1/payment_intents",
                "data": selected[:limit],
                "has_more": len(selected) > limit,
            },
        )

    def stripe_get_intent(self, request: httpx.Request, intent_id: str) -> httpx.Response:
        if self.stripe_down:
            raise httpx.ConnectError("stripe down")
        intent = self.intents.get(intent_id)
        if intent is None:
            return httpx.Response(
                404, json={"error": {"type": "invalid_request_error", "code": "resource_missing"}}
            )
        return httpx.Response(200, json=intent)

    def stripe_refund(self, request: httpx.Request) -> httpx.Response:
        self.stripe_requests.append(request)
        if self.stripe_refund_error is not None:
            status, body = self.stripe_refund_error
            return httpx.Response(status, json=body)
        form = parse_qs(request.content.decode())
        return httpx.Response(
            200,
            json={
                "id": f"re_{uuid.uuid4().hex[:16]}",
                "object": "refund",
                "amount": int(form["amount"][0]),
                "payment_intent": form["payment_intent"][0],
                "status": self.refund_status,
                "metadata": {},
            },
        )


@pytest.fixture
def world(keys):
    world = FakeWorld()
    with respx.mock(using="httpx", assert_all_called=False) as router:
        router.route(host="payment").pass_through()  # the app under test itself
        router.get(url__regex=rf"{AUTH_URL}/api/internal/users/(?P<user_id>[^/]+)").mock(
            side_effect=world.user_status
        )
        router.get(f"{AUTH_URL}/.well-known/jwks.json").respond(json=keys.jwks())
        router.get(url__regex=rf"{ORDER_URL}/api/internal/orders/(?P<order_id>[^/]+)").mock(
            side_effect=world.get_order
        )
        router.get(host="orders.test", path="/api/internal/orders").mock(
            side_effect=world.list_orders
        )
        router.post(f"{ORDER_URL}/api/internal/update-status").mock(side_effect=world.update_status)
        router.get(f"{DARAJA_URL}/oauth/v1/generate").mock(side_effect=world.oauth)
        router.post(f"{DARAJA_URL}/mpesa/stkpush/v1/processrequest").mock(
            side_effect=world.stk_push
        )
        router.post(f"{DARAJA_URL}/mpesa/stkpushquery/v1/query").mock(side_effect=world.stk_query)
        router.post(f"{STRIPE_URL}/v1/payment_intents").mock(side_effect=world.stripe_intent)
        router.post(f"{STRIPE_URL}/v1/refunds").mock(side_effect=world.stripe_refund)
        router.get(host="stripe.test", path="/v1/payment_intents").mock(
            side_effect=world.stripe_list_intents
        )
        router.get(url__regex=rf"{STRIPE_URL}/v1/payment_intents/(?P<intent_id>[^/?]+)").mock(
            side_effect=world.stripe_get_intent
        )
        yield world


@pytest.fixture
async def app(settings, world):
    app = create_app(settings)
    async with started(app):
        yield app


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://payment") as client:
        yield client


@pytest.fixture
def login(world, keys):
    """A user of the given role; returns (user id, Authorization header)."""

    def login_(role: str = "customer") -> tuple[uuid.UUID, dict[str, str]]:
        user_id = uuid.uuid4()
        world.roles[str(user_id)] = role
        token = keys.user_token(user_id, email=f"{user_id.hex[:8]}@example.com", role=role)
        return user_id, bearer(token)

    return login_


RESULT_DESCRIPTIONS = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction",
    1032: "Request cancelled by user",
    1037: "DS timeout user cannot be reached",
}


def callback_body(checkout_id: str, code: int = 0, amount: Any = 1500, receipt="QKJ7RT61SV"):
    stk: dict[str, Any] = {
        "MerchantRequestID": "29115-34620561-1",
        "CheckoutRequestID": checkout_id,
        "ResultCode": code,
        "ResultDesc": RESULT_DESCRIPTIONS.get(code, "Failed"),
    }
    if code == 0:
        stk["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": amount},
                {"Name": "MpesaReceiptNumber", "Value": receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": 20191219102115},
                {"Name": "PhoneNumber", "Value": 254708374149},
            ]
        }
    return {"Body": {"stkCallback": stk}}


class Api:
    """Requests as a client of the service makes them, and what the database then holds."""

    shortcode = SHORTCODE
    passkey = PASSKEY
    callback_url = CALLBACK_URL
    callback_secret = CALLBACK_SECRET
    stripe_webhook_secret = STRIPE_WEBHOOK_SECRET

    def __init__(self, app, client: httpx.AsyncClient, world: FakeWorld, engine) -> None:
        self.app = app
        self.client = client
        self.world = world
        self.engine = engine
        self.callback_body = callback_body

    async def pay_mpesa(self, headers, order_id, phone="0712345678", **extra) -> httpx.Response:
        body = {"orderId": str(order_id), "phoneNumber": phone, **extra}
        return await self.client.post("/api/payments/mpesa", json=body, headers=headers)

    async def pay_stripe(self, headers, order_id, **extra) -> httpx.Response:
        body = {"orderId": str(order_id), **extra}
        return await self.client.post("/api/payments/stripe", json=body, headers=headers)

    async def mpesa_processing(self, headers, order_id, phone="0712345678") -> dict[str, Any]:
        response = await self.pay_mpesa(headers, order_id, phone)
        assert response.status_code == 200, response.text
        return response.json()

    async def callback(self, body, secret: str | None = CALLBACK_SECRET, **kwargs):
        path = "/api/webhook/mpesa" + (f"/{secret}" if secret is not None else "")
        return await self.client.post(path, json=body, **kwargs)

    @property
    def state(self) -> PaymentState:
        return state_of(self.app, PaymentState)

    async def payment(self, payment_id) -> Payment:
        async with self.state.sessionmaker() as session:
            return await session.get(Payment, uuid.UUID(str(payment_id)))

    async def rows(self, model) -> list:
        from sqlalchemy import select

        async with self.state.sessionmaker() as session:
            return list(await session.scalars(select(model)))

    async def deliver_outbox(self) -> int:
        """Order updates delivered as the service delivers them: the sends started by
        commits end (one attempt each), then a run of the outbox worker; how many in all."""
        sent = await self.state.order_updates.settle()
        return sent + await deliver_outbox(self.state)

    async def reconcile(self) -> int:
        """A run of the M-Pesa status poller."""
        return await mpesa_status_poller.poll(self.state)

    async def age_payment(self, payment_id, seconds: float) -> None:
        """Makes a payment look `seconds` old (instead of sleeping)."""
        from sqlalchemy import text

        async with self.engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE payments SET created_at = now() - make_interval(secs => :s),"
                    " next_check_at = NULL WHERE id = :id"
                ),
                {"s": seconds, "id": uuid.UUID(str(payment_id))},
            )


@pytest.fixture
def api(app, client, world, engine) -> Api:
    return Api(app, client, world, engine)
