import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from product_service.config import ProductSettings
from product_service.main import create_app
from product_service.models import Base
from shared.service_fixtures import database_fixtures
from shared.testing import bearer, delete_all, started
from shared.user_status import UserStatus

SERVICE_DIR = Path(__file__).resolve().parent.parent


database_url, engine, _clean_tables, secrets_ = database_fixtures(
    "product", SERVICE_DIR, Base.metadata, clean=delete_all
)


@pytest.fixture(scope="session")
def make_settings(database_url, secrets_):
    def make(**overrides) -> ProductSettings:
        values = {"PRODUCT_DATABASE_URL": database_url, "WORKERS_ENABLED": "false", **secrets_}
        return ProductSettings(_env_file=None, **{**values, **overrides})

    return make


@pytest.fixture(scope="session")
def settings(make_settings):
    return make_settings()


@pytest.fixture(scope="session")
def known_users() -> dict[uuid.UUID, UserStatus]:
    """The users the auth service would vouch for (user id -> status); every test makes
    users of its own (new ids), so one app serves the whole session."""
    return {}


@pytest.fixture(scope="session")
async def app(settings, known_users, keys):
    def status_source(app):
        async def fetch(user_id: uuid.UUID) -> UserStatus | None:
            status = known_users.get(user_id)
            if isinstance(status, Exception):  # the auth service failing for this user
                raise status
            return status

        return fetch

    app = create_app(
        settings, user_status_source=status_source, user_token_keys=keys.user_token_keys
    )
    async with started(app):
        yield app


@pytest.fixture(scope="session")
async def client(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://product") as client:
        yield client


@pytest.fixture
def make_token(known_users, keys):
    """A user token saying `role`, for a user the auth service knows: as that role and
    `active`, or as `status` says (another status, or an exception the lookup raises)."""

    def make(
        role: str = "customer",
        *,
        active: bool = True,
        status: UserStatus | Exception | None = None,
    ) -> str:
        user_id = uuid.uuid4()
        known_users[user_id] = status or UserStatus(role=role, is_active=active)
        return keys.user_token(user_id, email=f"{role}-{user_id.hex[:6]}@example.com", role=role)

    return make


@pytest.fixture
def admin_headers(make_token):
    return bearer(make_token("admin"))


@pytest.fixture
def customer_headers(make_token):
    return bearer(make_token("customer"))


@pytest.fixture
def internal_headers(keys):
    """The order service's: the caller of stock checks and reservations."""
    return keys.internal_headers("order", "product")


@pytest.fixture
def cart_headers(keys):
    """The cart service's: the caller of the products lookup."""
    return keys.internal_headers("cart", "product")


IPHONE = {
    "name": "iPhone 15 Pro",
    "description": "Latest iPhone with A17 Pro chip",
    "price": 150000,
    "stock": 50,
    "category": "Electronics",
    "sku": "IP15PRO-001",
    "imageUrl": "https://example.com/iphone.jpg",
}


@pytest.fixture
def create_product(client, admin_headers):
    """Creates a product through the API (the seed README's iPhone unless told otherwise);
    returns the product as answered."""

    async def create(**fields) -> dict:
        body = {**IPHONE, "sku": None, **fields}
        body = {key: value for key, value in body.items() if value is not None}
        response = await client.post("/api/products", json=body, headers=admin_headers)
        assert response.status_code == 201, response.text
        return response.json()["product"]

    return create


@pytest.fixture
def stock_of(engine):
    """The stock the database holds for a product."""

    async def stock(product_id: str) -> int:
        async with engine.connect() as connection:
            return (
                await connection.execute(
                    text("SELECT stock FROM products WHERE id = :id"), {"id": product_id}
                )
            ).scalar_one()

    return stock


@pytest.fixture
def count_rows(engine):
    async def count(table: str) -> int:
        async with engine.connect() as connection:
            return (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608

    return count
