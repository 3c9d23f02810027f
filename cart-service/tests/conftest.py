from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import create_async_engine

from cart_service.config import CartSettings
from cart_service.main import create_app
from cart_service.models import Base
from shared.testing import migrated_database, random_secret, truncate_all

SERVICE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
async def database_url(postgres_url):
    async with migrated_database(postgres_url, "cart", SERVICE_DIR) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url):
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _clean_tables(engine):
    yield
    await truncate_all(engine, Base.metadata)


@pytest.fixture(scope="session")
def secrets_():
    return {"JWT_SECRET": random_secret(), "INTERNAL_SERVICE_SECRET": random_secret()}


@pytest.fixture
def make_settings(database_url, secrets_):
    def make(**overrides) -> CartSettings:
        values = {"CART_DATABASE_URL": database_url, "WORKERS_ENABLED": "false", **secrets_}
        return CartSettings(_env_file=None, **{**values, **overrides})

    return make


@pytest.fixture
def settings(make_settings):
    return make_settings()


@pytest.fixture
async def app(settings):
    app = create_app(settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://cart") as client:
        yield client
