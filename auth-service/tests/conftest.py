from pathlib import Path

import httpx
import pytest

from auth_service.config import AuthSettings
from auth_service.main import create_app
from auth_service.models import Base
from shared.service_fixtures import database_fixtures
from shared.testing import started

SERVICE_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


database_url, engine, _clean_tables, secrets_ = database_fixtures(
    "auth", SERVICE_DIR, Base.metadata
)


@pytest.fixture
def make_settings(database_url, secrets_):
    def make(**overrides) -> AuthSettings:
        return AuthSettings(
            _env_file=None, **{"AUTH_DATABASE_URL": database_url, **secrets_, **overrides}
        )

    return make


@pytest.fixture
def settings(make_settings):
    return make_settings()


@pytest.fixture
async def app(settings):
    app = create_app(settings)
    async with started(app):
        yield app


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
        yield client


@pytest.fixture
def register(client):
    """Registers a user through the API; returns the response body."""

    async def register_(email="john@example.com", password=PASSWORD, **extra):
        body = {"name": "John Doe", "email": email, "password": password, **extra}
        response = await client.post("/api/register", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    return register_


@pytest.fixture
def login(client):
    async def login_(email="john@example.com", password=PASSWORD) -> str:
        response = await client.post("/api/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["token"]

    return login_


@pytest.fixture
def make_admin(engine, register, login):
    """Registers a user and makes them admin in the database (as the bootstrap would)."""

    async def make_admin_(email="admin@example.com") -> tuple[str, str]:
        from sqlalchemy import text

        body = await register(email=email)
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE users SET role = 'admin' WHERE email = :email"), {"email": email}
            )
        return body["user"]["id"], await login(email=email)

    return make_admin_
