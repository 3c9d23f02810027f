"""The M-Pesa status poller (worker "mpesa-status-poller"): callbacks get lost, so a
payment still processing MPESA_QUERY_AFTER seconds after its STK Push is asked about
with STK Query and settled as its callback would have settled it; one with no result
after MPESA_EXPIRE_AFTER seconds is cancelled, and its order may be paid again.

It also fails initiations that never reached Daraja (the process died between the
payment row and the STK Push) and forgets expired Idempotency-Keys.

Safe with several replicas: payments are claimed with a lease (`next_check_at`, taken
with FOR UPDATE SKIP LOCKED), and each is settled under its row lock.
"""

import logging
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import metrics, repository
from payment_service.daraja_client import DarajaError, StkQueryResult, StkQueryState
from payment_service.lifecycle import By, PaymentStatus, Provider, move_payment
from payment_service.models import Payment
from payment_service.mpesa_callbacks import failure_status
from payment_service.settlement import settle
from payment_service.state import PaymentState

logger = logging.getLogger(__name__)

ABANDONED_MESSAGE = "Payment initiation was interrupted"
EXPIRED_MESSAGE = "No answer from M-Pesa in time"


class PollOutcome(StrEnum):
    """What the poller did with a payment (the label of mpesa_reconciliations_total)."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # no result in time: cancelled
    PENDING = "pending"  # asked again later
    UNCHANGED = "unchanged"  # STK Query had an answer, the payment was settled already
    ABANDONED = "abandoned"  # an initiation that never reached Daraja: failed


async def poll(state: PaymentState) -> int:
    """The worker's run; returns how many payments it settled."""
    settings = state.settings
    now = datetime.now(UTC)
    expire_after = timedelta(seconds=settings.mpesa_expire_after)
    settled = await _fail_abandoned_initiations(state, now - expire_after)

    daraja = state.daraja
    if daraja is None:
        return settled
    async with state.sessionmaker() as session, session.begin():
        claimed = await repository.claim_due_payments(
            session,
            provider=Provider.MPESA,
            status=PaymentStatus.PROCESSING,
            created_before=now - timedelta(seconds=settings.mpesa_query_after),
            now=now,
            lease_until=now + timedelta(seconds=settings.mpesa_reconcile_interval),
        )
    for payment_id, checkout_id, created_at in claimed:
        query = None
        if checkout_id:
            try:
                query = await daraja.stk_query(checkout_id)
            except DarajaError as exc:
                logger.warning(
                    "stk query failed", extra={"paymentId": str(payment_id), "reason": str(exc)}
                )
            metrics.reconciliation_query(query.state if query is not None else "error")
        expired = datetime.now(UTC) - created_at >= expire_after
        async with state.sessionmaker() as session, session.begin():
            payment = await repository.lock_payment(session, payment_id)
            if payment is None or payment.status != PaymentStatus.PROCESSING:
                continue
            if query is not None and query.state is not StkQueryState.PENDING:
                changed = await settle_from_stk_query(session, payment, query)
            elif expired:
                changed = await settle(
                    session,
                    payment,
                    PaymentStatus.CANCELLED,
                    error_message=EXPIRED_MESSAGE,
                    details={"settledBy": "expiry"},
                    by=By.EXPIRY,
                )
            else:
                changed = False
            settled += int(changed)
            metrics.reconciliation(session, _outcome(payment, changed, query))
    return settled


async def settle_from_stk_query(
    session: AsyncSession, payment: Payment, query: StkQueryResult, settled_by: str = "stk_query"
) -> bool:
    """Daraja's STK Query answered with a result: the locked payment is settled as the
    callback would have settled it (a success is Daraja's own word: a confirmation)."""
    if query.state is StkQueryState.COMPLETED:
        return await settle(
            session,
            payment,
            PaymentStatus.COMPLETED,
            details={"settledBy": settled_by},
            by=By.CONFIRMATION,
        )
    if query.state is StkQueryState.FAILED:
        return await settle(
            session,
            payment,
            failure_status(query.result_code or ""),
            error_message=query.result_desc or f"M-Pesa result {query.result_code}",
            details={"resultCode": query.result_code, "settledBy": settled_by},
        )
    return False


async def _fail_abandoned_initiations(state: PaymentState, created_before: datetime) -> int:
    """Pending payments whose STK Push never happened, older than MPESA_EXPIRE_AFTER:
    failed (nothing was charged). Expired Idempotency-Keys are forgotten on the way."""
    async with state.sessionmaker() as session, session.begin():
        abandoned = await repository.lock_abandoned_initiations(
            session, created_before=created_before
        )
        for payment in abandoned:
            if move_payment(payment, PaymentStatus.FAILED, By.EXPIRY):
                payment.error_message = ABANDONED_MESSAGE
                metrics.payment_status(session, payment)
                metrics.reconciliation(session, PollOutcome.ABANDONED)
        await state.idempotency_keys.forget_expired(session)
    return len(abandoned)


def _outcome(payment: Payment, changed: bool, query: StkQueryResult | None) -> PollOutcome:
    decisive = query is not None and query.state is not StkQueryState.PENDING
    if changed:
        return PollOutcome(payment.status) if decisive else PollOutcome.EXPIRED
    return PollOutcome.UNCHANGED if decisive else PollOutcome.PENDING
