from functools import lru_cache

from pydantic import Field

from shared.settings import ServiceSettings


class CartSettings(ServiceSettings):
    port: int = Field(default=3005, validation_alias="CART_PORT")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/ecommerce_cart",
        validation_alias="CART_DATABASE_URL",
    )
    # A cart untouched (no add, update or removal) for this many days is emptied.
    cart_expiry_days: float = Field(default=30, gt=0, le=365, validation_alias="CART_EXPIRY_DAYS")
    # How long a cart read waits for current prices before showing the stored ones
    # (`pricesRefreshed: false`). Changes wait SERVICE_TIMEOUT: they need the product.
    price_refresh_timeout: float = Field(
        default=2.0, gt=0, le=30, validation_alias="CART_PRICE_REFRESH_TIMEOUT"
    )
    # A cart read shows prices looked up at most this many seconds ago (0: always asks the
    # product service). Changes (add, update) always ask: they check the stock.
    price_max_age: float = Field(default=1.0, ge=0, le=60, validation_alias="CART_PRICE_MAX_AGE")
    # Seconds between two runs of the purge of expired carts.
    purge_interval: float = Field(default=3600, gt=0, validation_alias="CART_PURGE_INTERVAL")


@lru_cache
def get_settings() -> CartSettings:
    return CartSettings()
