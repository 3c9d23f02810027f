from functools import lru_cache

from pydantic import Field

from shared.settings import ServiceSettings


class CartSettings(ServiceSettings):
    port: int = Field(default=3005, validation_alias="CART_PORT")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/ecommerce_cart",
        validation_alias="CART_DATABASE_URL",
    )


@lru_cache
def get_settings() -> CartSettings:
    return CartSettings()
