from pathlib import Path

from shared.testing import assert_migrations_match_models

SERVICE_DIR = Path(__file__).resolve().parents[1]


async def test_health_is_the_originals_body(client):
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK" and body["service"] == "Cart Service"


async def test_ready_checks_the_database(client):
    assert (await client.get("/ready")).json()["status"] == "ready"


async def test_the_migrations_build_exactly_the_models(database_url):
    await assert_migrations_match_models(SERVICE_DIR, database_url)


async def test_unknown_route_is_the_original_404(client):
    response = await client.get("/api/cart/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "Route not found"}
