"""What a payment became, told to the order service through the outbox (shared.outbox):
written in the transaction of the change, sent as soon as that transaction commits (in a
task of its own: a provider's callback does not wait for the order service), delivered
by the worker until the order service acknowledges if that first attempt fails, applied
there once per event id."""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payment_service.models import OutboxMessage, Payment
from shared import outbox
from shared.db import after_commit

if TYPE_CHECKING:
    from payment_service.state import PaymentState

logger = logging.getLogger(__name__)

UPDATE_STATUS_TOPIC = "order.update-status"
ORDER_PAID = {"status": "paid", "paymentStatus": "paid"}
PAYMENT_FAILED = {"paymentStatus": "failed"}
PAYMENT_REFUNDED = {"paymentStatus": "refunded"}
# Messages sent per worker run, one at a time (see deliver_outbox).
MESSAGES_PER_RUN = 100


# session.info's key for the service's `OrderUpdates` (its sessions carry it: state.py).
ORDER_UPDATES = "order_updates"


class OrderUpdates:
    """Sends an order update once its transaction has committed, in a task of its own.
    What a task could not deliver (the order service down, the process stopping) the
    outbox worker sends after the lease."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        update_status: Callable[[dict[str, Any]], Coroutine[Any, Any, None]],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._senders = {UPDATE_STATUS_TOPIC: update_status}
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivered = 0

    def send_soon(self, message: OutboxMessage) -> None:
        task = asyncio.get_running_loop().create_task(self._send(message))
        self._tasks.add(task)  # a task nobody holds may be collected before it ends
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> int:
        """Waits for the sends under way; how many were delivered since the last call (the
        tests). At a stop, sends cut short are the worker's after the lease."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        delivered, self._delivered = self._delivered, 0
        return delivered

    async def _send(self, message: OutboxMessage) -> None:
        try:
            self._delivered += await outbox.send_now(
                self._sessionmaker, OutboxMessage, self._senders, [message]
            )
        except Exception:  # the database, recording the attempt: the worker sends it later
            logger.exception("order update left to the outbox worker")


def queue_order_update(session: AsyncSession, payment: Payment, update: dict[str, str]) -> None:
    """Tells the order service what the payment became: sent once this transaction
    commits, retried until the order service acknowledges."""
    updates = session.info.get(ORDER_UPDATES)
    message = outbox.enqueue(
        session,
        OutboxMessage,
        topic=UPDATE_STATUS_TOPIC,
        payload={"orderId": str(payment.order_id), "paymentId": str(payment.id), **update},
        sent_by_writer=isinstance(updates, OrderUpdates),
    )
    if isinstance(updates, OrderUpdates):
        after_commit(session, lambda: updates.send_soon(message))


async def deliver_outbox(state: "PaymentState") -> int:
    """The outbox worker's job. One message per claim, oldest first: a batch claimed at
    once comes back in no particular order, and an order must hear "paid" before
    "refunded"."""
    senders = {UPDATE_STATUS_TOPIC: state.orders.update_status}
    delivered = 0
    for _ in range(MESSAGES_PER_RUN):
        sent = await outbox.deliver_due(state.sessionmaker, OutboxMessage, senders, batch_size=1)
        if not sent:
            break
        delivered += sent
    return delivered
