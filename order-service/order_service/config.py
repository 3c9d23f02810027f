from functools import lru_cache

from pydantic import Field

from shared.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    port: int = Field(default=3003, validation_alias="ORDER_PORT")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/ecommerce_order",
        validation_alias="ORDER_DATABASE_URL",
    )
    # An order still unpaid this many seconds after it was placed is cancelled and its
    # stock given back.
    order_payment_timeout: int = Field(default=1800, ge=1, validation_alias="ORDER_PAYMENT_TIMEOUT")
    # Seconds between runs of the expiry worker.
    order_expiry_interval: float = Field(
        default=30.0, gt=0, validation_alias="ORDER_EXPIRY_INTERVAL"
    )
    # An order row still being placed (stock being reserved) after this many seconds was
    # abandoned (the process died, or the product service never answered): the sweeper
    # releases whatever was reserved for it and removes it. Far longer than any request.
    order_placement_grace: int = Field(default=120, ge=30, validation_alias="ORDER_PLACEMENT_GRACE")
    # Seconds between runs of the sweeper and of the outbox delivery.
    order_sweep_interval: float = Field(default=30.0, gt=0, validation_alias="ORDER_SWEEP_INTERVAL")
    outbox_interval: float = Field(default=1.0, gt=0, validation_alias="ORDER_OUTBOX_INTERVAL")


@lru_cache
def get_settings() -> OrderSettings:
    return OrderSettings()
