"""The cart service in-process against a real, migrated PostgreSQL database. Its
neighbours (the auth service's user status, the product service's lookup) are played
by respx over the service's own HTTP client."""

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import text

from cart_service.config import CartSettings
from cart_service.main import create_app
from cart_service.models import Base
from shared.keys import load_public_key_map
from shared.service_fixtures import database_fixtures
from shared.testing import TestKeys, bearer, started
from shared.tokens import InvalidToken, decode_internal_token

SERVICE_DIR = Path(__file__).resolve().parent.parent
AUTH_URL = "http://auth.test"
PRODUCT_URL = "http://product.test"
LOOKUP_URL = f"{PRODUCT_URL}/api/internal/products/lookup"


database_url, engine, _clean_tables, secrets_ = database_fixtures(
    "cart", SERVICE_DIR, Base.metadata
)


@pytest.fixture
def make_settings(database_url, secrets_):
    def make(**overrides) -> CartSettings:
        values = {
            "CART_DATABASE_URL": database_url,
            "WORKERS_ENABLED": "false",
            "AUTH_SERVICE_URL": AUTH_URL,
            "PRODUCT_SERVICE_URL": PRODUCT_URL,
            # Every read asks the product service (the tests of recent prices set their own).
            "CART_PRICE_MAX_AGE": "0",
            **secrets_,
        }
        return CartSettings(_env_file=None, **{**values, **overrides})

    return make


@pytest.fixture
def settings(make_settings):
    return make_settings()


@dataclass
class Neighbours:
    """What the auth and product services know, and what the cart asked them."""

    keys: TestKeys
    users: dict[str, dict] = field(default_factory=dict)
    products: dict[str, dict] = field(default_factory=dict)
    lookups: list[list[str]] = field(default_factory=list)
    lookup_route: respx.Route | None = None
    router: respx.MockRouter | None = None

    def add_product(
        self,
        *,
        name: str = "Samsung Galaxy S24",
        price: str = "150000.00",
        stock: int = 10,
        image_url: str | None = "https://img.example.com/p.jpg",
        is_active: bool = True,
    ) -> str:
        product_id = str(uuid.uuid4())
        self.products[product_id] = {
            "id": product_id,
            "name": name,
            "price": price,
            "stock": stock,
            "imageUrl": image_url,
            "isActive": is_active,
        }
        return product_id

    def product_service_fails(self, error: Exception | httpx.Response) -> None:
        assert self.lookup_route is not None
        if isinstance(error, httpx.Response):
            self.lookup_route.side_effect = None
            self.lookup_route.return_value = error
        else:
            self.lookup_route.side_effect = error

    def lookup(self, request: httpx.Request) -> httpx.Response:
        try:
            decode_internal_token(
                request.headers.get("X-Internal-Token", ""),
                audience="product",
                public_keys=load_public_key_map(self.keys.internal_public_keys()),
            )
        except InvalidToken:
            return httpx.Response(401, json={"error": "Internal service token required"})
        ids = json.loads(request.content)["productIds"]
        assert len(ids) <= 100
        self.lookups.append(ids)
        found = [self.products[i] for i in ids if i in self.products]
        return httpx.Response(200, json={"products": found})

    def user_status(self, request: httpx.Request, user_id: str) -> httpx.Response:
        user = self.users.get(user_id)
        if user is None:
            return httpx.Response(404, json={"error": "User not found"})
        return httpx.Response(200, json={"user": user})


@pytest.fixture
def neighbours(keys):
    fake = Neighbours(keys=keys)
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        mock.route(host="cart").pass_through()  # the test client itself
        mock.get(url__regex=rf"^{AUTH_URL}/api/internal/users/(?P<user_id>[^/]+)$").mock(
            side_effect=fake.user_status
        )
        mock.get(f"{AUTH_URL}/.well-known/jwks.json").respond(json=keys.jwks())
        fake.lookup_route = mock.post(LOOKUP_URL).mock(side_effect=fake.lookup)
        fake.router = mock
        yield fake


@pytest.fixture
async def app(settings, neighbours):
    app = create_app(settings)
    async with started(app):
        yield app


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://cart") as client:
        yield client


@pytest.fixture
def add_to_cart(client):
    """`POST /api/cart/items` as the user of `headers`; the response."""

    async def add(headers, product_id, quantity=None, **extra) -> httpx.Response:
        body = {"productId": product_id, **extra}
        if quantity is not None:
            body["quantity"] = quantity
        return await client.post("/api/cart/items", json=body, headers=headers)

    return add


@pytest.fixture
def fill_cart(neighbours, add_to_cart):
    """Puts new products in a user's cart: `await fill_cart(headers, ("Phone", "100.00", 2))`
    for each (name, price, quantity); returns their product ids."""

    async def fill(headers, *lines: tuple[str, str, int]) -> list[str]:
        product_ids = []
        for name, price, quantity in lines:
            product_id = neighbours.add_product(name=name, price=price)
            response = await add_to_cart(headers, product_id, quantity)
            assert response.status_code == 200, response.text
            product_ids.append(product_id)
        return product_ids

    return fill


@pytest.fixture
def make_user(neighbours, keys):
    """A customer the auth service knows; returns (user id, Authorization headers)."""

    def make(role: str = "customer") -> tuple[str, dict[str, str]]:
        user_id = str(uuid.uuid4())
        neighbours.users[user_id] = {
            "id": user_id,
            "role": role,
            "isActive": True,
            "tokensValidAfter": 0,
        }
        token = keys.user_token(user_id, role=role)
        return user_id, bearer(token)

    return make


@pytest.fixture
def customer(make_user):
    return make_user()


@pytest.fixture
def db_rows(engine):
    """Rows of a table as dicts (what the database holds)."""

    async def rows(query: str, **params) -> list[dict]:
        async with engine.connect() as connection:
            result = await connection.execute(text(query), params)
            return [dict(row._mapping) for row in result]

    return rows
