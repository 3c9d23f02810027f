"""Stock reservations: where an order's stock is taken (all items or none, once per
order) and given back. The order service calls these through the internal routes
(docs/internal-api.md); each function is one transaction."""

import logging
import uuid
from collections.abc import Sequence

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from product_service import metrics, repository
from product_service.exceptions import (
    OutOfStock,
    ReservationChanged,
    ReservationMismatch,
    ReservationReleased,
)
from product_service.models import ReservationStatus
from product_service.schemas import ReservedItem, ReserveResponse, StockItem
from shared.db import HotPath

logger = logging.getLogger(__name__)


def merge_items(items: Sequence[StockItem]) -> dict[uuid.UUID, int]:
    """Quantities per product, in the order products first appear (the same product twice
    is one line with both quantities)."""
    merged: dict[uuid.UUID, int] = {}
    for item in items:
        merged[item.product_id] = merged.get(item.product_id, 0) + item.quantity
    return merged


def reservation_response(
    order_id: uuid.UUID, lines: Sequence[repository.ReservedLine]
) -> ReserveResponse:
    return ReserveResponse(
        order_id=order_id,
        items=[
            ReservedItem(
                product_id=line.product_id,
                name=line.product_name,
                price=line.unit_price,
                quantity=line.quantity,
            )
            for line in lines
        ],
    )


async def reserve(
    hot_path: HotPath, order_id: uuid.UUID, items: Sequence[StockItem], caller: str
) -> ReserveResponse:
    """Takes the stock of every item for the order, all or nothing, once per order, in one
    transaction of asyncpg's (shared.db.HotPath: every order runs it).

    The reservation row is claimed first (its key is the order id), so of two identical
    calls only one takes stock; the other waits for it and answers what it recorded. A
    refusal rolls everything back, the claim included: a later retry may try again.

    Each product's stock is taken and its line written in one statement: a product's row
    stays locked from its take to the commit, and every order of that product waits
    meanwhile, so nothing but the other lines' takes and the commit come in between."""
    wanted = merge_items(items)
    async with hot_path.transaction() as connection:
        if not await repository.claim_reservation(connection, order_id, caller):
            return await _existing_reservation(connection, order_id, wanted)

        lines: dict[uuid.UUID, repository.ReservedLine] = {}
        short: list[uuid.UUID] = []
        position_of = {product_id: position for position, product_id in enumerate(wanted)}
        # Rows are locked in one order (by id) by every reservation and release, so two
        # orders for the same products wait for each other instead of deadlocking.
        for product_id in sorted(wanted):
            line = await repository.take_stock_for_line(
                connection, order_id, product_id, position_of[product_id], wanted[product_id]
            )
            if line is None:
                short.append(product_id)
            else:
                lines[product_id] = line
        if short:
            available = await repository.available_stock(connection, short)
            details = [
                {
                    "productId": str(product_id),
                    "requested": wanted[product_id],
                    "available": available.get(product_id, 0),
                }
                for product_id in wanted
                if product_id in short
            ]
            logger.info(
                "reservation refused", extra={"orderId": str(order_id), "short": len(details)}
            )
            metrics.reservation_refused("out_of_stock")
            raise OutOfStock(details=details)  # rolls back every take, the lines and the claim
    logger.info(
        "stock reserved", extra={"orderId": str(order_id), "lines": len(wanted), "by": caller}
    )
    # Answered from what was just written, in the order's order.
    return reservation_response(order_id, [lines[product_id] for product_id in wanted])


async def _existing_reservation(
    connection: asyncpg.Connection, order_id: uuid.UUID, wanted: dict[uuid.UUID, int]
) -> ReserveResponse:
    status = await repository.reservation_status(connection, order_id)
    if status is None:  # cannot happen: the claim found it committed
        raise ReservationChanged()
    if status == ReservationStatus.RELEASED:
        metrics.reservation_refused("released")
        raise ReservationReleased()
    lines = await repository.reservation_lines(connection, order_id)
    if {line.product_id: line.quantity for line in lines} != wanted:
        metrics.reservation_refused("mismatch")
        raise ReservationMismatch()
    return reservation_response(order_id, lines)


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
