"""What a payment became, told to the order service through the outbox (shared.outbox):
written in the transaction of the change, delivered until the order service
acknowledges, applied there once per event id."""

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service.models import OutboxMessage, Payment
from payment_service.state import PaymentState
from shared import outbox

UPDATE_STATUS_TOPIC = "order.update-status"
ORDER_PAID = {"status": "paid", "paymentStatus": "paid"}
PAYMENT_FAILED = {"paymentStatus": "failed"}
PAYMENT_REFUNDED = {"paymentStatus": "refunded"}
# Messages sent per worker run, one at a time (see deliver_outbox).
MESSAGES_PER_RUN = 100


def queue_order_update(session: AsyncSession, payment: Payment, update: dict[str, str]) -> None:
    """Tells the order service what the payment became: sent once this transaction
    commits, retried until the order service acknowledges."""
    outbox.enqueue(
        session,
        OutboxMessage,
        topic=UPDATE_STATUS_TOPIC,
        payload={"orderId": str(payment.order_id), "paymentId": str(payment.id), **update},
    )


async def deliver_outbox(state: PaymentState) -> int:
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
