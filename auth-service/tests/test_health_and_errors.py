from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from auth_service.main import create_app
from shared.testing import assert_migrations_match_models, refused_port, started

SERVICE_DIR = Path(__file__).resolve().parents[1]


async def test_health_is_the_originals_body(client):
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK" and body["service"] == "Auth Service"
    assert body["timestamp"].endswith("Z")


async def test_ready_checks_the_database(client, make_settings):
    assert (await client.get("/ready")).status_code == 200
    with refused_port() as port:
        nowhere = f"postgresql://postgres@127.0.0.1:{port}/nowhere"
        await answers_503_without_its_database(create_app(make_settings(AUTH_DATABASE_URL=nowhere)))


async def answers_503_without_its_database(app) -> None:
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as down:
            response = await down.get("/ready")
            assert response.status_code == 503
            assert response.json()["error"] == "Database unavailable"
            # A request that needs the database is a 503 with a request id, not a 500.
            login = await down.post(
                "/api/login", json={"email": "a@example.com", "password": "password123"}
            )
            assert login.status_code == 503
            assert login.json()["error"] == "Service temporarily unavailable"


async def test_an_unexpected_error_is_a_500_with_a_request_id_and_nothing_else(app, client):
    async def boom():
        raise RuntimeError("secret detail: SELECT * FROM users")

    app.add_api_route("/boom", boom)
    response = await client.get("/boom", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error", "requestId": "req-123"}
    assert "secret detail" not in response.text


async def test_the_request_id_is_echoed_or_made(client):
    echoed = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/health")
    assert len(made.headers["X-Request-ID"]) == 32
    hostile = await client.get("/health", headers={"X-Request-ID": 'x" injected {'})
    assert hostile.headers["X-Request-ID"] != 'x" injected {'


async def test_unknown_route_is_the_original_404(client):
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "Route not found"}


@pytest.mark.parametrize(
    "key", ["", "your-super-secret-jwt-key-change-in-production-minimum-32-characters"]
)
def test_production_refuses_to_start_without_a_signing_key(make_settings, key):
    """The seed README's JWT_SECRET is no key: without JWT_PRIVATE_KEY there is no start."""
    with pytest.raises(ValidationError, match="JWT_PRIVATE_KEY"):
        make_settings(ENVIRONMENT="production", JWT_PRIVATE_KEY=key, JWT_SECRET=key)


def test_production_accepts_its_keys(make_settings):
    settings = make_settings(ENVIRONMENT="production")
    assert settings.is_production


async def test_the_migrations_build_exactly_the_models(database_url):
    await assert_migrations_match_models(SERVICE_DIR, database_url)
