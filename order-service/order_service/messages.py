"""Calls to the product and cart services that must happen even if they are down at
the moment: written to the outbox in the transaction of the change that needs them
(a cancellation, an order from a cart), sent right after that transaction commits
(`shared.outbox.send_now`), and re-sent by the outbox worker until acknowledged."""

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.clients import CartClient, ProductClient
from order_service.models import OutboxMessage
from shared import outbox

RELEASE_STOCK = "product.release"
CLEAR_CART = "cart.clear"


def enqueue_call(session: AsyncSession, topic: str, payload: dict[str, Any]) -> OutboxMessage:
    """A call this request makes itself once committed (`send_now`); the worker retries."""
    return outbox.enqueue(session, OutboxMessage, topic=topic, payload=payload, sent_by_writer=True)


def senders(app: FastAPI) -> Mapping[str, outbox.Sender]:
    products: ProductClient = app.state.products
    carts: CartClient = app.state.carts

    async def release_stock(payload: dict[str, Any]) -> None:
        await products.release(payload["orderId"])

    async def clear_cart(payload: dict[str, Any]) -> None:
        await carts.clear(payload["userId"])

    return {RELEASE_STOCK: release_stock, CLEAR_CART: clear_cart}


async def send_now(app: FastAPI, messages: Iterable[OutboxMessage]) -> None:
    """One immediate attempt per message, after its transaction committed."""
    await outbox.send_now(app.state.sessionmaker, OutboxMessage, senders(app), messages)


async def deliver_outbox(app: FastAPI) -> None:
    """The outbox worker's job."""
    await outbox.deliver_due(app.state.sessionmaker, OutboxMessage, senders(app))
