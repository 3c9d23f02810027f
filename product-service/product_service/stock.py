"""Stock outside reservations: the admin's restock, the internal update-stock, and the
original's check. Each function is one transaction of the caller's `session`."""

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from product_service import repository
from product_service.exceptions import InsufficientStock, ProductNotFound, StockTooLarge
from product_service.models import Product
from product_service.schemas import (
    MAX_STOCK,
    CheckStockResponse,
    StockAvailable,
    StockChange,
    StockItem,
    StockUnavailable,
)


async def change_stock(session: AsyncSession, product_id: uuid.UUID, delta: int) -> Product:
    """Adds `delta` (negative takes); the stock never goes below 0."""
    product = await repository.add_to_stock(session, product_id, delta)
    if product is None:
        current = await repository.get_product(session, product_id)
        if current is None:
            raise ProductNotFound()
        if current.stock + delta > MAX_STOCK:
            raise StockTooLarge()
        raise InsufficientStock()
    return product


async def restock(session: AsyncSession, product: Product, change: StockChange) -> Product:
    if change.delta is not None:
        return await change_stock(session, product.id, change.delta)
    assert change.stock is not None  # StockChange holds exactly one of them
    updated = await repository.set_stock(session, product.id, change.stock)
    assert updated is not None  # the row was loaded in this transaction and is never deleted
    return updated


async def check_stock(session: AsyncSession, items: Sequence[StockItem]) -> CheckStockResponse:
    """The original's check: an answer per item, nothing taken."""
    products = {
        p.id: p for p in await repository.get_products(session, [i.product_id for i in items])
    }
    results: list[StockAvailable | StockUnavailable] = []
    for item in items:
        product = products.get(item.product_id)
        if product is None or not product.is_active:
            results.append(StockUnavailable(product_id=item.product_id, error="Product not found"))
        elif product.stock < item.quantity:
            results.append(StockUnavailable(product_id=item.product_id, error="Insufficient stock"))
        else:
            results.append(
                StockAvailable(product_id=item.product_id, stock=product.stock, price=product.price)
            )
    return CheckStockResponse(
        available=all(isinstance(r, StockAvailable) for r in results), items=results
    )
