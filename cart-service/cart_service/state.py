"""What the running cart service holds (shared.state): its database and the client of
the product service."""

from dataclasses import dataclass

from cart_service.config import CartSettings
from cart_service.product_client import ProductClient
from shared.state import DatabaseState


@dataclass(frozen=True, kw_only=True)
class CartState(DatabaseState[CartSettings]):
    products: ProductClient


async def open_state(base: DatabaseState[CartSettings]) -> CartState:
    products = ProductClient(
        base.services, base.settings.product_service_url, max_age=base.settings.price_max_age
    )
    return CartState(**base.base(), products=products)
