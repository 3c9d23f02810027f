"""Calls to the product and cart services that must happen even if they are down at
the moment: written to the outbox in the transaction of the change that needs them
(a cancellation, an order from a cart), sent right after that transaction commits
(`send_now`), and re-sent by the outbox worker until acknowledged (shared.outbox)."""

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from order_service.models import OutboxMessage
from order_service.state import OrderState
from shared import outbox

RELEASE_STOCK = "product.release"
CLEAR_CART = "cart.clear"


def enqueue_call(session: AsyncSession, topic: str, payload: dict[str, Any]) -> OutboxMessage:
    """A call this request makes itself once committed (`send_now`); the worker retries."""
    return outbox.enqueue(session, OutboxMessage, topic=topic, payload=payload, sent_by_writer=True)


def new_call(topic: str, payload: dict[str, Any]) -> OutboxMessage:
    """`enqueue_call`'s message, for a transaction written with asyncpg (placement)."""
    return outbox.new_message(OutboxMessage, topic=topic, payload=payload, sent_by_writer=True)


def senders(state: OrderState) -> Mapping[str, outbox.Sender]:
    async def release_stock(payload: dict[str, Any]) -> None:
        await state.products.release(payload["orderId"])

    async def clear_cart(payload: dict[str, Any]) -> None:
        await state.carts.clear(payload["userId"])

    return {RELEASE_STOCK: release_stock, CLEAR_CART: clear_cart}


async def send_now(state: OrderState, messages: Iterable[OutboxMessage]) -> None:
    """One immediate attempt per message, after its transaction committed."""
    await outbox.send_now(state.sessionmaker, OutboxMessage, senders(state), messages)


async def deliver_outbox(state: OrderState) -> int:
    """The outbox worker's job."""
    return await outbox.deliver_due(state.sessionmaker, OutboxMessage, senders(state))
