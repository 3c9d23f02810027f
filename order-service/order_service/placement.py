"""Placing an order: stock is taken by the product service, the order is written here,
and the two never disagree for long, whatever fails in between.

0. The request's Idempotency-Key, if any, is claimed (shared.idempotency).
1. One statement writes the order row as `reserving` (invisible to every read) with its
   id.
2. Outside any transaction, the lines (the request's, or the caller's cart) are
   reserved by the product service under the order's id (all or nothing).
3. One statement makes the row `pending` with its total and writes the items from the
   reservation's answer, only if the row is still `reserving` (with a key, in one
   transaction with the key's answer).

Every order runs these, so they are asyncpg's own statements (shared.db.HotPath, built
in repository.py), and the answer is made from what was written, not read back: the
order's timestamps are this process's clock, as the sweeper's and the expiry's are.

Refused (out of stock) or never sent (product service unreachable): the row is
removed, nothing was taken. No usable answer (timeout, 5xx) or step 3 failing: the row
is removed and a release for the order's id is written to the outbox and sent at once
(the product service records a release that finds nothing, and refuses a reservation
for that order arriving after it). The process dying anywhere: the sweeper finds the
`reserving` row after ORDER_PLACEMENT_GRACE seconds, releases and removes it. So a
reservation never outlives its order.
"""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from order_service import metrics, repository
from order_service.exceptions import (
    CartIsEmpty,
    ItemsOutOfStock,
    OrderTotalTooLarge,
    ProductServiceUnavailable,
)
from order_service.lifecycle import RESERVING, Actor, PaymentStatus, Status
from order_service.models import OutboxMessage
from order_service.outbox import CLEAR_CART, RELEASE_STOCK, enqueue_call, new_call, send_now
from order_service.product_client import NotReserved, OutOfStock, Reserved, ReservedLine
from order_service.schemas import (
    MAX_LINES,
    MAX_QUANTITY,
    CreateOrderRequest,
    MessageWithOrder,
    OrderDetailOut,
    merge_lines,
)
from order_service.state import OrderState
from shared.auth import AuthenticatedUser
from shared.errors import BadRequest
from shared.idempotency import Answer, Claim, KeyedRequest
from shared.schemas import CENTS, MAX_MONEY

logger = logging.getLogger(__name__)

CREATED = 201
SWEEP_BATCH = 100


async def place_order(
    state: OrderState,
    user: AuthenticatedUser,
    data: CreateOrderRequest,
    keyed: KeyedRequest | None,
) -> Answer:
    """POST /api/orders: 201 and the new order, or the first answer of an
    Idempotency-Key already used for the same request."""
    return await state.idempotency_keys.run(
        state.sessionmaker,
        user_id=user.id,
        request=keyed,
        action=lambda claim: _place(state, user, data, claim),
        hot_path=state.hot_path,
    )


async def _place(
    state: OrderState, user: AuthenticatedUser, data: CreateOrderRequest, claim: Claim | None
) -> Answer:
    order = await _start(state, user, data)
    order_id = order["id"]
    lines = await _lines_or_abandon(state, user, data, order_id)
    outcome = await state.products.reserve(order_id, lines)
    if isinstance(outcome, OutOfStock):
        await _abandon(state, order_id)
        raise ItemsOutOfStock(outcome.details)
    if isinstance(outcome, NotReserved):
        await _abandon(state, order_id)
        raise ProductServiceUnavailable()
    if not isinstance(outcome, Reserved):
        # Perhaps reserved: release it. A reservation still in flight that arrives after
        # the release is refused by the product service (it records the release).
        logger.warning(
            "reservation outcome unknown",
            extra={"orderId": str(order_id), "reason": outcome.reason},
        )
        await send_now(state, await _abandon(state, order_id, release=True))
        raise ProductServiceUnavailable()

    try:
        answer, calls = await _complete(
            state, order, outcome.lines, from_cart=data.items is None, claim=claim
        )
    except BaseException:
        await _undo_reservation(state, order_id)
        raise
    await send_now(state, calls)
    logger.info(
        "order placed",
        extra={"orderId": str(order_id), "orderNumber": answer.body["order"]["orderNumber"]},
    )
    return answer


async def _start(
    state: OrderState, user: AuthenticatedUser, data: CreateOrderRequest
) -> dict[str, Any]:
    """Step 1: the `reserving` row (one statement, committed on its own); returns it."""
    now = datetime.now(UTC)
    row = {
        "id": uuid.uuid4(),
        "user_id": user.id,
        "order_number": await state.order_numbers.next(now),
        "status": RESERVING,
        "payment_status": PaymentStatus.PENDING,
        "payment_method": data.payment_method,
        "total_amount": Decimal("0.00"),
        "currency": state.settings.store_currency,
        "shipping_address": data.shipping_address.model_dump(
            mode="json", by_alias=True, exclude_none=True
        ),
        "notes": data.notes,
        "payment_ids": [],
        "paid_at": None,
        "shipped_at": None,
        "delivered_at": None,
        "cancelled_at": None,
        "created_at": now,
        "updated_at": now,
    }
    await repository.insert_reserving_order(state.hot_path, row)
    return row


async def _lines_or_abandon(
    state: OrderState, user: AuthenticatedUser, data: CreateOrderRequest, order_id: uuid.UUID
) -> dict[uuid.UUID, int]:
    try:
        return await _lines(state, user, data)
    except BaseException:
        await _abandon(state, order_id)
        raise


async def _lines(
    state: OrderState, user: AuthenticatedUser, data: CreateOrderRequest
) -> dict[uuid.UUID, int]:
    """(productId -> quantity) of the order: the request's lines or the caller's cart,
    duplicates merged."""
    if data.items is not None:
        return merge_lines((line.product_id, line.quantity) for line in data.items)
    lines = merge_lines(await state.carts.checkout(user.id))
    if not lines:
        raise CartIsEmpty()
    problems = []
    if len(lines) > MAX_LINES:
        problems.append({"field": "items", "message": f"at most {MAX_LINES} lines per order"})
    problems += [
        {"field": "items", "message": f"quantity of product {product_id} must be 1 to 1000"}
        for product_id, quantity in lines.items()
        if not 1 <= quantity <= MAX_QUANTITY
    ]
    if problems:
        raise BadRequest("Validation error", details=problems)
    return lines


async def _complete(
    state: OrderState,
    order: dict[str, Any],
    reserved: list[ReservedLine],
    *,
    from_cart: bool,
    claim: Claim | None,
) -> tuple[Answer, list[OutboxMessage]]:
    """Step 3: the order as the reservation answered it, `pending`, and the
    Idempotency-Key's answer in the same transaction. Written with asyncpg itself and
    answered from what was written (nothing read back)."""
    order_id = order["id"]
    now = datetime.now(UTC)
    items = [
        {
            "id": uuid.uuid4(),
            "order_id": order_id,
            "position": position,
            "product_id": line.product_id,
            "product_name": line.name,
            "quantity": line.quantity,
            "price": line.price.quantize(CENTS),
            "subtotal": (line.price * line.quantity).quantize(CENTS),
            "created_at": now,
            "updated_at": now,
        }
        for position, line in enumerate(reserved, start=1)
    ]
    total = sum((item["subtotal"] for item in items), Decimal("0.00"))
    if total > MAX_MONEY:
        raise OrderTotalTooLarge()
    placed = {**order, "status": Status.PENDING, "total_amount": total, "updated_at": now}
    status_change = {
        "id": uuid.uuid4(),
        "order_id": order_id,
        "from_status": None,
        "to_status": Status.PENDING,
        "payment_status": placed["payment_status"],
        "actor": Actor.CUSTOMER,
        "reason": "Order placed",
        "created_at": now,
    }
    message = new_call(CLEAR_CART, {"userId": str(order["user_id"])}) if from_cart else None
    answer = Answer.of(
        MessageWithOrder(
            message="Order created successfully",
            order=OrderDetailOut.model_validate(
                {**placed, "items": items, "history": [status_change]}
            ),
        ),
        CREATED,
    )
    # One statement; with an Idempotency-Key, in a transaction with the key's answer.
    hot_path = state.hot_path
    async with hot_path.transaction() if claim else hot_path.connection() as connection:
        if not await repository.complete_placement(
            connection,
            order_id,
            total=total,
            placed_at=now,
            items=items,
            status_change=status_change,
            outbox_message=message,
        ):
            # The sweeper took it (this request outlived ORDER_PLACEMENT_GRACE).
            raise ProductServiceUnavailable()
        if claim is not None:
            await claim.record_with(connection, answer)
    metrics.order_created()
    return answer, [message] if message is not None else []


async def _abandon(
    state: OrderState, order_id: uuid.UUID, *, release: bool = False
) -> list[OutboxMessage]:
    """Removes the `reserving` row; with `release`,
    queues the release of whatever may have been reserved for it (for `send_now`)."""
    async with state.sessionmaker() as session, session.begin():
        await repository.delete_order_row(session, order_id)
        if release:
            return [enqueue_call(session, RELEASE_STOCK, {"orderId": str(order_id)})]
    return []


async def _undo_reservation(state: OrderState, order_id: uuid.UUID) -> None:
    """Step 3 failed after the stock was taken: give it back now (or from the outbox);
    if even the database is gone, the `reserving` row is left for the sweeper."""
    try:
        calls = await _abandon(state, order_id, release=True)
    except Exception:
        logger.exception("placement left for the sweeper", extra={"orderId": str(order_id)})
        return
    await send_now(state, calls)


async def sweep_abandoned_placements(state: OrderState) -> int:
    """The sweeper's job: `reserving` rows older than ORDER_PLACEMENT_GRACE belong to a
    request that died; their (possible) reservation is released and the row removed.
    Also forgets Idempotency-Keys older than their time to live."""
    now = datetime.now(UTC)
    async with state.sessionmaker() as session, session.begin():
        grace = timedelta(seconds=state.settings.order_placement_grace)
        abandoned = await repository.lock_due_orders(
            session, status=RESERVING, created_before=now - grace, limit=SWEEP_BATCH
        )
        calls = []
        for order in abandoned:
            await repository.delete_order_row(session, order.id)
            calls.append(enqueue_call(session, RELEASE_STOCK, {"orderId": str(order.id)}))
            logger.warning("abandoned placement swept", extra={"orderId": str(order.id)})
        await state.idempotency_keys.forget_expired(session)
    await send_now(state, calls)
    return len(calls)
