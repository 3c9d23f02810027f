"""What the running order service holds (shared.state): its database, the clients of the
product and cart services, its Idempotency-Keys and order numbers."""

from dataclasses import dataclass
from datetime import timedelta

from order_service.cart_client import CartClient
from order_service.config import OrderSettings
from order_service.models import IdempotencyKey
from order_service.order_numbers import OrderNumbers
from order_service.product_client import ProductClient
from shared.idempotency import IdempotencyKeys
from shared.state import DatabaseState


@dataclass(frozen=True, kw_only=True)
class OrderState(DatabaseState[OrderSettings]):
    products: ProductClient
    carts: CartClient
    idempotency_keys: IdempotencyKeys
    order_numbers: OrderNumbers


async def open_state(base: DatabaseState[OrderSettings]) -> OrderState:
    settings = base.settings
    return OrderState(
        **base.base(),
        products=ProductClient(base.services, settings.product_service_url),
        carts=CartClient(base.services, settings.cart_service_url),
        idempotency_keys=IdempotencyKeys(
            IdempotencyKey,
            ttl=timedelta(seconds=settings.idempotency_key_ttl),
            # A repeat stops waiting for the first answer before the gateway gives up
            # (UPSTREAM_TIMEOUT, 10 s by default).
            wait=settings.service_timeout + 3,
        ),
        order_numbers=OrderNumbers(base.hot_path),
    )
