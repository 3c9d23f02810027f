from functools import lru_cache

from pydantic import Field

from shared.settings import ServiceSettings


class ProductSettings(ServiceSettings):
    port: int = Field(default=3002, validation_alias="PRODUCT_PORT")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/ecommerce_product",
        validation_alias="PRODUCT_DATABASE_URL",
    )


@lru_cache
def get_settings() -> ProductSettings:
    return ProductSettings()
