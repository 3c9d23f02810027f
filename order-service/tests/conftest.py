import json
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import text

from order_service.config import OrderSettings
from order_service.main import create_app
from order_service.models import Base
from shared.service_fixtures import database_fixtures
from shared.testing import TestKeys, bearer, started
from shared.user_status import UserStatus

SERVICE_DIR = Path(__file__).resolve().parent.parent
PRODUCT_URL = "http://product.test"
CART_URL = "http://cart.test"
ADDRESS = {"street": "123 Main St", "city": "Nairobi", "country": "Kenya", "postalCode": "00100"}


database_url, engine, _clean_tables, secrets_ = database_fixtures(
    "order", SERVICE_DIR, Base.metadata
)


@pytest.fixture
def make_settings(database_url, secrets_):
    def make(**overrides) -> OrderSettings:
        values = {
            "ORDER_DATABASE_URL": database_url,
            "WORKERS_ENABLED": "false",
            "PRODUCT_SERVICE_URL": PRODUCT_URL,
            "CART_SERVICE_URL": CART_URL,
            "SERVICE_TIMEOUT": "2",
            **secrets_,
        }
        return OrderSettings(_env_file=None, **{**values, **overrides})

    return make


@pytest.fixture
def settings(make_settings):
    return make_settings()


@dataclass
class Caller:
    id: uuid.UUID
    headers: dict[str, str]


@dataclass
class Users:
    """Plays the auth service's user status lookup: every token's user exists, active."""

    keys: TestKeys
    roles: dict[uuid.UUID, str] = field(default_factory=dict)

    def make(self, role: str = "customer") -> Caller:
        user_id = uuid.uuid4()
        self.roles[user_id] = role
        token = self.keys.user_token(user_id, email=f"{user_id.hex[:8]}@example.com", role=role)
        return Caller(user_id, bearer(token))

    def source(self, app):
        async def fetch(user_id):
            role = self.roles.get(user_id)
            return None if role is None else UserStatus(role=role, is_active=True)

        return fetch


@pytest.fixture
def users(keys):
    return Users(keys)


@pytest.fixture
def customer(users) -> Caller:
    return users.make()


@pytest.fixture
def other_customer(users) -> Caller:
    return users.make()


@pytest.fixture
def admin(users) -> Caller:
    return users.make("admin")


@dataclass
class Product:
    id: uuid.UUID
    name: str
    price: Decimal
    stock: int


@dataclass
class FakeNeighbours:
    """The product and cart services as docs/internal-api.md describes them, in memory:
    reservations all or nothing and keyed by order, releases given back once."""

    products: dict[uuid.UUID, Product] = field(default_factory=dict)
    reservations: dict[str, list[tuple[uuid.UUID, int]]] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)
    carts: dict[str, list[dict]] = field(default_factory=dict)
    routes: dict[str, respx.Route] = field(default_factory=dict)

    def add_product(self, stock: int = 10, price: str = "150000.00", name: str = "iPhone 15 Pro"):
        product = Product(uuid.uuid4(), name, Decimal(price), stock)
        self.products[product.id] = product
        return product

    def stock(self, product: Product) -> int:
        return self.products[product.id].stock

    def reserve(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        order_id = body["orderId"]
        if order_id not in self.reservations:
            short = []
            for item in body["items"]:
                product = self.products.get(uuid.UUID(item["productId"]))
                available = product.stock if product else 0
                if available < item["quantity"]:
                    short.append(
                        {
                            "productId": item["productId"],
                            "requested": item["quantity"],
                            "available": available,
                        }
                    )
            if short:
                return httpx.Response(
                    409, json={"error": "Some items are out of stock", "details": short}
                )
            lines = [(uuid.UUID(item["productId"]), item["quantity"]) for item in body["items"]]
            for product_id, quantity in lines:
                self.products[product_id].stock -= quantity
            self.reservations[order_id] = lines
        return httpx.Response(
            200,
            json={
                "orderId": order_id,
                "items": [
                    {
                        "productId": str(product_id),
                        "name": self.products[product_id].name,
                        "price": str(self.products[product_id].price),
                        "quantity": quantity,
                    }
                    for product_id, quantity in self.reservations[order_id]
                ],
            },
        )

    def release(self, request: httpx.Request) -> httpx.Response:
        order_id = json.loads(request.content)["orderId"]
        released = order_id in self.reservations and order_id not in self.released
        if released:
            self.released.add(order_id)
            for product_id, quantity in self.reservations[order_id]:
                self.products[product_id].stock += quantity
        return httpx.Response(200, json={"orderId": order_id, "released": released})

    def put_in_cart(self, user: Caller, product: Product, quantity: int = 1) -> None:
        self.carts.setdefault(str(user.id), []).append(
            {
                "id": str(uuid.uuid4()),
                "productId": str(product.id),
                "productName": product.name,
                "price": str(product.price),
                "quantity": quantity,
            }
        )

    def checkout(self, request: httpx.Request) -> httpx.Response:
        items = self.carts.get(json.loads(request.content)["userId"])
        if not items:
            return httpx.Response(404, json={"error": "Cart is empty"})
        return httpx.Response(200, json={"cart": {"id": str(uuid.uuid4()), "items": items}})

    def clear(self, request: httpx.Request) -> httpx.Response:
        self.carts.pop(json.loads(request.content)["userId"], None)
        return httpx.Response(200, json={"message": "Cart cleared", "cart": {"items": []}})

    def calls(self, name: str) -> list[dict]:
        return [json.loads(call.request.content) for call in self.routes[name].calls]

    def release_calls(self, order_id) -> int:
        return sum(1 for body in self.calls("release") if body["orderId"] == str(order_id))


@pytest.fixture
def neighbours():
    fake = FakeNeighbours()
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        mock.route(host="order").pass_through()
        for name, path, handler in (
            ("reserve", f"{PRODUCT_URL}/api/internal/reserve", fake.reserve),
            ("release", f"{PRODUCT_URL}/api/internal/release", fake.release),
            ("checkout", f"{CART_URL}/api/internal/cart/checkout", fake.checkout),
            ("clear", f"{CART_URL}/api/internal/cart/clear", fake.clear),
        ):
            fake.routes[name] = mock.post(path).mock(side_effect=handler)
        yield fake


@pytest.fixture
async def app(settings, users, neighbours, keys):
    app = create_app(
        settings, user_status_source=users.source, user_token_keys=keys.user_token_keys
    )
    async with started(app):
        yield app


@pytest.fixture
def app_with(make_settings, users, keys):
    """Another instance of the service, with other settings: `async with app_with(X="1")
    as (app, client)`."""

    @asynccontextmanager
    async def app_with_(**overrides):
        app = create_app(
            make_settings(**overrides),
            user_status_source=users.source,
            user_token_keys=keys.user_token_keys,
        )
        async with started(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://order") as client:
                yield app, client

    return app_with_


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://order") as client:
        yield client


@pytest.fixture
def place(client, customer):
    """Places an order through the API; returns the response."""

    async def place_(lines=None, *, caller: Caller | None = None, headers=None, via=None, **extra):
        body = {"shippingAddress": ADDRESS, **extra}
        if lines is not None:
            body["items"] = [
                {"productId": str(product.id), "quantity": quantity} for product, quantity in lines
            ]
        return await (via or client).post(
            "/api/orders", json=body, headers={**(caller or customer).headers, **(headers or {})}
        )

    return place_


@pytest.fixture
def placed(place, neighbours):
    """A pending order of one item, placed through the API; returns its body."""

    async def placed_(caller: Caller | None = None, quantity: int = 1):
        product = neighbours.add_product(stock=10)
        response = await place([(product, quantity)], caller=caller)
        assert response.status_code == 201, response.text
        return response.json()["order"]

    return placed_


@pytest.fixture
def db(engine):
    """Runs SQL against the order database (to read what it holds, or to set a scene)."""

    async def run(sql: str, **params):
        async with engine.begin() as connection:
            result = await connection.execute(text(sql), params)
            return result.all() if result.returns_rows else None

    return run


@pytest.fixture
def set_status(db):
    async def set_(order_id, status: str, payment_status: str | None = None):
        await db(
            "UPDATE orders SET status = :status,"
            " payment_status = coalesce(:payment_status, payment_status) WHERE id = :id",
            id=uuid.UUID(str(order_id)),
            status=status,
            payment_status=payment_status,
        )

    return set_


@pytest.fixture
def age(db):
    """Moves an order's creation into the past."""

    async def age_(order_id, seconds: float):
        await db(
            "UPDATE orders SET created_at = :at WHERE id = :id",
            id=uuid.UUID(str(order_id)),
            at=datetime.now(UTC) - timedelta(seconds=seconds),
        )

    return age_


@pytest.fixture
def rows(db):
    """How many rows a table holds."""

    async def rows_(table: str) -> int:
        return (await db(f"SELECT count(*) FROM {table}"))[0][0]  # noqa: S608 (test tables)

    return rows_
