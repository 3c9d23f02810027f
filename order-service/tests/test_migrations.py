from pathlib import Path

from shared.testing import assert_migrations_match_models

SERVICE_DIR = Path(__file__).resolve().parents[1]


async def test_the_migrations_build_exactly_the_models(database_url):
    await assert_migrations_match_models(SERVICE_DIR, database_url)
