"""Calls to the product and cart services that must happen even if they are down at
the moment: written to the outbox in the transaction of the change that needs them
(a cancellation, an order from a cart), sent right after that transaction commits,
and re-sent by the outbox worker until acknowledged."""

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.clients import CartClient, ProductClient
from order_service.models import OutboxMessage
from shared.outbox import LEASE, Sender, backoff, deliver_due, enqueue

logger = logging.getLogger(__name__)

RELEASE_STOCK = "product.release"
CLEAR_CART = "cart.clear"


def enqueue_call(session: AsyncSession, topic: str, payload: dict[str, Any]) -> OutboxMessage:
    """The message is due for the worker only after a lease: the request that wrote it
    sends it itself right after committing (`send_now`); the worker steps in only if that
    attempt fails or the process dies in between."""
    message = enqueue(session, OutboxMessage, topic=topic, payload=payload)
    message.available_at = datetime.now(UTC) + LEASE
    return message


def senders(app: FastAPI) -> Mapping[str, Sender]:
    products: ProductClient = app.state.products
    carts: CartClient = app.state.carts

    async def release_stock(payload: dict[str, Any]) -> None:
        await products.release(payload["orderId"])

    async def clear_cart(payload: dict[str, Any]) -> None:
        await carts.clear(payload["userId"])

    return {RELEASE_STOCK: release_stock, CLEAR_CART: clear_cart}


async def send_now(app: FastAPI, messages: Iterable[OutboxMessage]) -> None:
    """One immediate attempt per message, after its transaction committed."""
    handlers = senders(app)
    for message in messages:
        try:
            await handlers[message.topic](message.payload)
        except Exception as exc:  # the worker tries again: log, never fail the request
            error = f"{type(exc).__name__}: {exc}"[:1000]
            logger.warning(
                "call deferred to the outbox worker",
                extra={"topic": message.topic, "messageId": str(message.id), "reason": error},
            )
            values = {
                "attempts": OutboxMessage.attempts + 1,
                "available_at": datetime.now(UTC) + backoff(1),
                "last_error": error,
            }
        else:
            values = {"attempts": OutboxMessage.attempts + 1, "delivered_at": datetime.now(UTC)}
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id, OutboxMessage.delivered_at.is_(None))
                .values(**values)
            )


async def deliver_outbox(app: FastAPI) -> None:
    """The outbox worker's job."""
    await deliver_due(app.state.sessionmaker, OutboxMessage, senders(app))
