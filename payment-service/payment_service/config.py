from functools import lru_cache

from pydantic import Field

from shared.settings import ServiceSettings


class PaymentSettings(ServiceSettings):
    port: int = Field(default=3004, validation_alias="PAYMENT_PORT")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/ecommerce_payment",
        validation_alias="PAYMENT_DATABASE_URL",
    )


@lru_cache
def get_settings() -> PaymentSettings:
    return PaymentSettings()
