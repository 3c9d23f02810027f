"""The payment service's figures on `/metrics` (docs/operations.md, "Metrics catalogue").
A payment's change is counted once its transaction has committed, never when it rolls
back; a refused webhook or an STK Query answer changes nothing and is counted as it
happens."""

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service.lifecycle import PaymentStatus, Provider
from payment_service.models import OutboxMessage, Payment
from shared import metrics
from shared.db import after_commit

PAYMENTS = metrics.counter(
    "payments_total",
    "Payments entering a status (pending when created, processing, completed, failed, "
    "cancelled, refunded, partially_refunded), by provider",
    ["provider", "status"],
)
MPESA_RECONCILIATION_QUERIES = metrics.counter(
    "mpesa_reconciliation_queries_total",
    "STK Queries the M-Pesa status poller made, by Daraja's answer: completed, failed, "
    "pending, or error (no usable answer)",
    ["result"],
)
MPESA_RECONCILIATIONS = metrics.counter(
    "mpesa_reconciliations_total",
    "Payments the M-Pesa status poller looked at, by outcome: completed, failed, cancelled, "
    "expired (no result in time), pending (asked again later), unchanged, abandoned (an "
    "initiation that never reached Daraja, failed)",
    ["outcome"],
)
WEBHOOKS_REJECTED = metrics.counter(
    "webhooks_rejected_total",
    "Webhooks and callbacks refused before anything was read from them, by provider and "
    "reason: bad_signature (Stripe), bad_secret or bad_source (M-Pesa)",
    ["provider", "reason"],
)
QUERY_RESULTS = ("completed", "failed", "pending", "error")
RECONCILIATION_OUTCOMES = (
    "completed",
    "failed",
    "cancelled",
    "expired",
    "pending",
    "unchanged",
    "abandoned",
)
WEBHOOK_REJECTIONS = (("stripe", "bad_signature"), ("mpesa", "bad_secret"), ("mpesa", "bad_source"))

# Every series from the start, at 0.
for _provider in Provider:
    for _status in PaymentStatus:
        PAYMENTS.labels(provider=_provider, status=_status)
for _result in QUERY_RESULTS:
    MPESA_RECONCILIATION_QUERIES.labels(result=_result)
for _outcome in RECONCILIATION_OUTCOMES:
    MPESA_RECONCILIATIONS.labels(outcome=_outcome)
for _webhook, _reason in WEBHOOK_REJECTIONS:
    WEBHOOKS_REJECTED.labels(provider=_webhook, reason=_reason)

# outbox_backlog and outbox_oldest_age_seconds, read at each scrape.
OUTBOX_FIGURES = metrics.outbox_hook(OutboxMessage)


def payment_status(session: AsyncSession, payment: Payment) -> None:
    """The payment has just entered `payment.status`."""
    counter = PAYMENTS.labels(provider=payment.provider, status=payment.status)
    after_commit(session, counter.inc)


def payment_entered(payment: Payment) -> None:
    """`payment_status` for a change already committed (written with asyncpg)."""
    PAYMENTS.labels(provider=payment.provider, status=payment.status).inc()


def reconciliation_query(result: str) -> None:
    MPESA_RECONCILIATION_QUERIES.labels(result=result).inc()


def reconciliation(session: AsyncSession, outcome: str) -> None:
    after_commit(session, MPESA_RECONCILIATIONS.labels(outcome=outcome).inc)


def webhook_rejected(provider: str, reason: str) -> None:
    WEBHOOKS_REJECTED.labels(provider=provider, reason=reason).inc()


RECONCILIATION_DISCREPANCIES = metrics.gauge(
    "reconciliation_discrepancies",
    "Discrepancies the money reconciliation worker found at its last run, by kind "
    "(docs/reconciliation.md); repaired ones are gone at the next run",
    ["kind"],
)
RECONCILIATION_REPAIRS = metrics.counter(
    "reconciliation_repairs_total",
    "Discrepancies the money reconciliation worker repaired, by kind",
    ["kind"],
)


def declare_discrepancy_kinds(kinds: Iterable[str]) -> None:
    """Every series from the start, at 0."""
    for kind in kinds:
        RECONCILIATION_DISCREPANCIES.labels(kind=kind)
        RECONCILIATION_REPAIRS.labels(kind=kind)


def reconciliation_discrepancies(counts: dict[str, int]) -> None:
    for kind, count in counts.items():
        RECONCILIATION_DISCREPANCIES.labels(kind=kind).set(count)


def reconciliation_repaired(kind: str) -> None:
    RECONCILIATION_REPAIRS.labels(kind=kind).inc()
