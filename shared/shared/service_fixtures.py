"""The pytest fixtures every service's tests start from, made once here:

    database_url, engine, _clean_tables, secrets_ = database_fixtures(
        "cart", SERVICE_DIR, Base.metadata
    )

in the service's `tests/conftest.py` gives a throwaway database with the service's
migrations applied (`database_url`, for the session), an engine on it (`engine`), every
table emptied after each test (`_clean_tables`, autouse) and the service's keys
(`secrets_`: its settings from the session's `keys`, shared.testing.TestKeys).
`postgres_url` and `keys` come from the root conftest.py.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.testing import TestKeys, migrated_database, truncate_all


def database_fixtures(
    name: str,
    service_dir: Path,
    metadata: MetaData,
    *,
    clean: Callable[[AsyncEngine, MetaData], Awaitable[None]] = truncate_all,
) -> tuple[object, object, object, object]:
    @pytest.fixture(scope="session")
    async def database_url(postgres_url: str) -> AsyncIterator[str]:
        async with migrated_database(postgres_url, name, service_dir) as url:
            yield url

    @pytest.fixture(scope="session")
    async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
        engine = create_async_engine(database_url)
        yield engine
        await engine.dispose()

    @pytest.fixture(autouse=True)
    async def _clean_tables(engine: AsyncEngine) -> AsyncIterator[None]:
        yield
        await clean(engine, metadata)

    @pytest.fixture(scope="session")
    def secrets_(keys: TestKeys) -> dict[str, str]:
        return keys.settings_for(name)

    return database_url, engine, _clean_tables, secrets_
