"""The product service's business rules: the catalogue, stock and stock reservations."""

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from product_service import metrics, repository
from product_service.models import Product, StockReservation, StockReservationItem
from product_service.schemas import (
    CheckStockResponse,
    ProductCreate,
    ProductUpdate,
    ReservedItem,
    ReserveResponse,
    StockAvailable,
    StockChange,
    StockItem,
    StockUnavailable,
)
from shared.auth import AuthenticatedUser
from shared.errors import AppError, BadRequest, Conflict, NotFound

logger = logging.getLogger(__name__)


class ProductNotFound(NotFound):
    message = "Product not found"


class InsufficientStock(BadRequest):
    message = "Insufficient stock"


def can_see_inactive(user: AuthenticatedUser | None) -> bool:
    return user is not None and user.is_admin


async def get_visible_product(
    session: AsyncSession, product_id: uuid.UUID, viewer: AuthenticatedUser | None
) -> Product:
    """A product as the viewer may see it: inactive ones exist for admins only."""
    product = await repository.get_product(session, product_id)
    if product is None or not (product.is_active or can_see_inactive(viewer)):
        raise ProductNotFound()
    return product


async def create_product(
    session: AsyncSession, data: ProductCreate, admin: AuthenticatedUser
) -> Product:
    product = Product(id=uuid.uuid4(), **data.model_dump())
    session.add(product)
    await session.flush()  # a taken sku fails here: 400 "Resource already exists"
    await session.refresh(product)
    logger.info("product created", extra={"productId": str(product.id), "adminId": str(admin.id)})
    return product


async def update_product(
    session: AsyncSession, product: Product, data: ProductUpdate, admin: AuthenticatedUser
) -> Product:
    changes = data.changes()
    for name, value in changes.items():
        setattr(product, name, value)
    await session.flush()
    await session.refresh(product)
    logger.info(
        "product updated",
        extra={"productId": str(product.id), "adminId": str(admin.id), "fields": sorted(changes)},
    )
    return product


async def deactivate_product(
    session: AsyncSession, product: Product, admin: AuthenticatedUser
) -> None:
    """Soft delete: the product leaves the catalogue; orders and carts keep their lines."""
    product.is_active = False
    await session.flush()
    logger.info("product deleted", extra={"productId": str(product.id), "adminId": str(admin.id)})


async def change_stock(session: AsyncSession, product_id: uuid.UUID, delta: int) -> Product:
    """Adds `delta` (negative takes); the stock never goes below 0."""
    product = await repository.add_to_stock(session, product_id, delta)
    if product is None:
        if await repository.get_product(session, product_id) is None:
            raise ProductNotFound()
        raise InsufficientStock()
    return product


async def restock(session: AsyncSession, product: Product, change: StockChange) -> Product:
    if change.delta is not None:
        return await change_stock(session, product.id, change.delta)
    assert change.stock is not None  # StockChange holds exactly one of them
    updated = await repository.set_stock(session, product.id, change.stock)
    assert updated is not None  # the row was loaded in this transaction and is never deleted
    return updated


# --- Internal: stock for orders and carts -------------------------------------------


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


class OutOfStock(Conflict):
    message = "Some items are out of stock"


class ReservationReleased(Conflict):
    message = "Reservation already released"


class ReservationMismatch(Conflict):
    message = "Order already has a reservation with other items"


def merge_items(items: Sequence[StockItem]) -> dict[uuid.UUID, int]:
    """Quantities per product, in the order products first appear (the same product twice
    is one line with both quantities)."""
    merged: dict[uuid.UUID, int] = {}
    for item in items:
        merged[item.product_id] = merged.get(item.product_id, 0) + item.quantity
    return merged


def reservation_response(reservation: StockReservation) -> ReserveResponse:
    return ReserveResponse(
        order_id=reservation.order_id,
        items=[
            ReservedItem(
                product_id=item.product_id,
                name=item.product_name,
                price=item.unit_price,
                quantity=item.quantity,
            )
            for item in reservation.items
        ],
    )


async def reserve(
    session: AsyncSession, order_id: uuid.UUID, items: Sequence[StockItem], caller: str
) -> ReserveResponse:
    """Takes the stock of every item for the order, all or nothing, once per order.

    The reservation row is claimed first (its key is the order id), so of two identical
    calls only one takes stock; the other waits for it and answers what it recorded. A
    refusal rolls everything back, the claim included: a later retry may try again."""
    wanted = merge_items(items)
    if not await repository.claim_reservation(session, order_id, caller):
        return await _existing_reservation(session, order_id, wanted)

    taken: dict[uuid.UUID, repository.Taken] = {}
    short: list[uuid.UUID] = []
    # Rows are locked in one order (by id) by every reservation and release, so two orders
    # for the same products wait for each other instead of deadlocking.
    for product_id in sorted(wanted):
        result = await repository.take_stock(session, product_id, wanted[product_id])
        if result is None:
            short.append(product_id)
        else:
            taken[product_id] = result
    if short:
        available = await repository.available_stock(session, short)
        details = [
            {
                "productId": str(product_id),
                "requested": wanted[product_id],
                "available": available.get(product_id, 0),
            }
            for product_id in wanted
            if product_id in short
        ]
        logger.info("reservation refused", extra={"orderId": str(order_id), "short": len(details)})
        metrics.reservation_refused("out_of_stock")
        raise OutOfStock(details=details)  # rolls back every take and the claim

    await repository.add_reservation_items(
        session,
        [
            StockReservationItem(
                order_id=order_id,
                product_id=product_id,
                position=position,
                quantity=quantity,
                unit_price=taken[product_id].price,
                product_name=taken[product_id].name,
            )
            for position, (product_id, quantity) in enumerate(wanted.items())
        ],
    )
    logger.info(
        "stock reserved", extra={"orderId": str(order_id), "lines": len(wanted), "by": caller}
    )
    reservation = await repository.get_reservation(session, order_id)
    assert reservation is not None
    return reservation_response(reservation)


async def _existing_reservation(
    session: AsyncSession, order_id: uuid.UUID, wanted: dict[uuid.UUID, int]
) -> ReserveResponse:
    reservation = await repository.get_reservation(session, order_id)
    if reservation is None:  # cannot happen: the claim found it committed
        raise AppError("Reservation changed concurrently, retry", status_code=409)
    if reservation.status == "released":
        metrics.reservation_refused("released")
        raise ReservationReleased()
    recorded = {item.product_id: item.quantity for item in reservation.items}
    if recorded != wanted:
        metrics.reservation_refused("mismatch")
        raise ReservationMismatch()
    return reservation_response(reservation)


async def release(session: AsyncSession, order_id: uuid.UUID, caller: str) -> bool:
    """Gives back what the order's reservation took, once. False when there was nothing to
    give back (no reservation: one is recorded as released; or released already)."""
    if await repository.insert_released_reservation(session, order_id, caller):
        logger.info("release without reservation", extra={"orderId": str(order_id)})
        return False
    if not await repository.mark_released(session, order_id):
        return False
    items = await repository.reservation_items(session, order_id)  # ordered by product id
    for item in items:
        await repository.return_stock(session, item.product_id, item.quantity)
    logger.info(
        "reservation released",
        extra={"orderId": str(order_id), "lines": len(items), "by": caller},
    )
    return True
