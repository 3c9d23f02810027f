from functools import lru_cache

from pydantic import Field

from shared.settings import ServiceSettings


class ProductSettings(ServiceSettings):
    port: int = Field(default=3002, validation_alias="PRODUCT_PORT")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/ecommerce_product",
        validation_alias="PRODUCT_DATABASE_URL",
    )
    # Seconds an anonymous catalogue read (list, search, one product) may be reused by a
    # browser or the gateway's cache (Cache-Control: public, max-age); 0: revalidate.
    catalogue_max_age: int = Field(default=1, ge=0, le=300, validation_alias="CATALOGUE_MAX_AGE")


@lru_cache
def get_settings() -> ProductSettings:
    return ProductSettings()
