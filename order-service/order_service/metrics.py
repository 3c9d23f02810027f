"""The order service's figures on `/metrics` (docs/operations.md, "Metrics catalogue").
Changes are counted once their transaction has committed, never when it rolls back."""

from sqlalchemy.ext.asyncio import AsyncSession

from order_service.lifecycle import Actor
from order_service.models import OutboxMessage
from shared import metrics
from shared.db import after_commit

ORDERS_CREATED = metrics.counter("orders_created_total", "Orders placed (their stock reserved)")
ORDERS_CANCELLED = metrics.counter(
    "orders_cancelled_total",
    "Orders cancelled, by who cancelled them: customer, admin or expiry (not paid in time)",
    ["reason"],
)
for _actor in (Actor.CUSTOMER, Actor.ADMIN, Actor.EXPIRY):  # every series from the start, at 0
    ORDERS_CANCELLED.labels(reason=_actor.value)

# outbox_backlog and outbox_oldest_age_seconds, read at each scrape.
OUTBOX_FIGURES = metrics.outbox_hook(OutboxMessage)


def order_created() -> None:
    """Once its placement has committed."""
    ORDERS_CREATED.inc()


def order_cancelled(session: AsyncSession, actor: Actor) -> None:
    after_commit(session, ORDERS_CANCELLED.labels(reason=actor.value).inc)
