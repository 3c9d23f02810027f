"""What every service's `migrations/env.py` does: run Alembic with the async
engine against the service's own database."""

import asyncio
from collections.abc import Callable
from logging.config import fileConfig

from alembic.runtime.environment import EnvironmentContext
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, MetaData, pool
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import database_url_for_asyncpg


def database_url_setting(settings_class: type[BaseSettings]) -> Callable[[], str]:
    """Reads the service's database URL setting alone (its variable, its default, `.env`):
    a migration needs the database, not the service's keys."""
    field = settings_class.model_fields["database_url"]

    class DatabaseOnly(BaseSettings):
        model_config = SettingsConfigDict(env_file=".env", extra="ignore")
        database_url: str = Field(default=field.default, validation_alias=field.validation_alias)

    return lambda: DatabaseOnly().database_url


def run_migrations(
    context: EnvironmentContext, target_metadata: MetaData, default_url: Callable[[], str]
) -> None:
    """`context` is `alembic.context`. The URL is `sqlalchemy.url` from the Alembic config
    when set (tests), else the service's settings."""
    config = context.config
    # From the command line, log as alembic.ini says; tests keep their own logging.
    if config.config_file_name and config.attributes.get("configure_logging", True):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = database_url_for_asyncpg(
        context.config.get_main_option("sqlalchemy.url") or default_url()
    )

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())
