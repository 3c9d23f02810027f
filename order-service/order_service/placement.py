"""Placing an order: stock is taken by the product service, the order is written here,
and the two never disagree for long, whatever fails in between.

0. The request's Idempotency-Key, if any, is claimed (shared.idempotency).
1. A short transaction writes the order row as `reserving` (invisible to every read)
   with its id.
2. Outside any transaction, the lines (the request's, or the caller's cart) are
   reserved by the product service under the order's id (all or nothing).
3. A second short transaction locks the row, writes the items and totals from the
   reservation's answer and makes the order `pending`.

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

from order_service import metrics, repository
from order_service.exceptions import (
    CartIsEmpty,
    ItemsOutOfStock,
    OrderTotalTooLarge,
    ProductServiceUnavailable,
)
from order_service.lifecycle import RESERVING, Actor, PaymentStatus, Status
from order_service.models import Order, OrderItem, OutboxMessage
from order_service.orders import record_change
from order_service.outbox import CLEAR_CART, RELEASE_STOCK, enqueue_call, send_now
from order_service.product_client import NotReserved, OutOfStock, Reserved, ReservedLine
from order_service.schemas import (
    MAX_LINES,
    MAX_QUANTITY,
    CreateOrderRequest,
    MessageWithOrder,
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
# Order numbers: ORD-<ms>-<9 characters>, the original's form. The 9 characters are the
# order sequence's next value scrambled by a bijection of [0, 36^9) (multiplication by a
# number prime to 36), so they are unique by construction and say nothing of volume.
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SUFFIX_SPACE = 36**9
_SCRAMBLE = 1_000_000_007


def format_order_number(sequence_value: int, at: datetime) -> str:
    scrambled = (sequence_value * _SCRAMBLE) % _SUFFIX_SPACE
    suffix = ""
    for _ in range(9):
        scrambled, digit = divmod(scrambled, 36)
        suffix = _ALPHABET[digit] + suffix
    return f"ORD-{int(at.timestamp() * 1000)}-{suffix}"


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
    )


async def _place(
    state: OrderState, user: AuthenticatedUser, data: CreateOrderRequest, claim: Claim | None
) -> Answer:
    order_id = await _start(state, user, data)
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
            state, order_id, outcome.lines, from_cart=data.items is None, claim=claim
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


async def _start(state: OrderState, user: AuthenticatedUser, data: CreateOrderRequest) -> uuid.UUID:
    """Step 1: the `reserving` row."""
    settings = state.settings
    order_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with state.sessionmaker() as session, session.begin():
        sequence_value = await repository.next_order_number_value(session)
        session.add(
            Order(
                id=order_id,
                user_id=user.id,
                order_number=format_order_number(sequence_value, now),
                status=RESERVING,
                payment_status=PaymentStatus.PENDING,
                payment_method=data.payment_method,
                total_amount=Decimal("0.00"),
                currency=settings.store_currency,
                shipping_address=data.shipping_address.model_dump(
                    mode="json", by_alias=True, exclude_none=True
                ),
                notes=data.notes,
                payment_ids=[],
            )
        )
    return order_id


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
    order_id: uuid.UUID,
    reserved: list[ReservedLine],
    *,
    from_cart: bool,
    claim: Claim | None,
) -> tuple[Answer, list[OutboxMessage]]:
    """Step 3: the order as the reservation answered it, `pending`, and the
    Idempotency-Key's answer in the same transaction."""
    items = [
        OrderItem(
            order_id=order_id,
            position=position,
            product_id=line.product_id,
            product_name=line.name,
            quantity=line.quantity,
            price=line.price.quantize(CENTS),
            subtotal=(line.price * line.quantity).quantize(CENTS),
        )
        for position, line in enumerate(reserved, start=1)
    ]
    total = sum((item.subtotal for item in items), Decimal("0.00"))
    if total > MAX_MONEY:
        raise OrderTotalTooLarge()
    async with state.sessionmaker() as session, session.begin():
        order = await repository.lock_order_row(session, order_id)
        if order is None or order.status != RESERVING:
            # The sweeper took it (this request outlived ORDER_PLACEMENT_GRACE).
            raise ProductServiceUnavailable()
        session.add_all(items)
        order.total_amount = total
        order.status = Status.PENDING
        record_change(session, order, from_status=None, actor=Actor.CUSTOMER, reason="Order placed")
        metrics.order_created(session)
        calls = []
        if from_cart:
            calls.append(enqueue_call(session, CLEAR_CART, {"userId": str(order.user_id)}))
        order = await repository.reload_order(session, order_id)
        answer = Answer.of(
            MessageWithOrder(message="Order created successfully", order=order), CREATED
        )
        if claim is not None:
            await claim.record(session, answer)
    return answer, calls


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
