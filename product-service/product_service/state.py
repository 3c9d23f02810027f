"""What the running product service holds (shared.state): its database, nothing more."""

from dataclasses import dataclass

from product_service.config import ProductSettings
from shared.state import DatabaseState


@dataclass(frozen=True, kw_only=True)
class ProductState(DatabaseState[ProductSettings]):
    pass


async def open_state(base: DatabaseState[ProductSettings]) -> ProductState:
    return ProductState(**base.base())
