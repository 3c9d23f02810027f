from pathlib import Path

from sqlalchemy import text

from shared.testing import assert_migrations_match_models

SERVICE_DIR = Path(__file__).resolve().parents[1]


async def test_health_is_the_originals_body(client):
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK" and body["service"] == "Product Service"


async def test_ready_checks_the_database(client):
    assert (await client.get("/ready")).json()["status"] == "ready"


async def test_the_migrations_build_exactly_the_models(database_url):
    await assert_migrations_match_models(SERVICE_DIR, database_url)


async def test_the_migrations_install_pg_trgm_and_the_search_indexes(engine):
    async with engine.connect() as connection:
        extension = await connection.scalar(
            text("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
        )
        indexes = dict(
            (
                await connection.execute(
                    text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'products'")
                )
            ).all()
        )
    assert extension == "pg_trgm"
    assert "gin (name gin_trgm_ops)" in indexes["ix_products_name_trgm"]
    assert "gin (description gin_trgm_ops)" in indexes["ix_products_description_trgm"]
    for name in ("newest", "price", "name", "category"):
        assert "WHERE is_active" in indexes[f"ix_products_active_{name}"]
