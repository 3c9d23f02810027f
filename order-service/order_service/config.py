from functools import lru_cache

from pydantic import Field

from shared.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    port: int = Field(default=3003, validation_alias="ORDER_PORT")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/ecommerce_order",
        validation_alias="ORDER_DATABASE_URL",
    )


@lru_cache
def get_settings() -> OrderSettings:
    return OrderSettings()
