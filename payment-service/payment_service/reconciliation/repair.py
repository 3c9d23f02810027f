"""What the worker repairs, through the code path of the webhook or callback that was
lost; money decisions (refunds) are reported, never guessed."""

import logging
import uuid

from payment_service import metrics, repository
from payment_service.daraja_client import StkQueryResult
from payment_service.lifecycle import IN_FLIGHT, KEPT, EventOutcome
from payment_service.mpesa_status_poller import settle_from_stk_query
from payment_service.outbox import ORDER_PAID, UPDATE_STATUS_TOPIC, queue_order_update
from payment_service.reconciliation.analysis import Repair, Report
from payment_service.reconciliation.evidence import ProviderView
from payment_service.state import PaymentState
from payment_service.stripe_webhooks import handle_stripe_event

logger = logging.getLogger(__name__)


async def repair(state: PaymentState, report: Report) -> int:
    """Repairs what is safe to repair; returns how many were. Each repair is idempotent:
    a replayed Stripe event has an id of its own, recorded once; a payment is settled only
    from an open status; an order's paid update is sent again only when none is waiting."""
    repaired = 0
    for discrepancy in report.discrepancies:
        if discrepancy.repair_with is None:
            continue
        how, view = discrepancy.repair_with
        try:
            if how == Repair.STRIPE_EVENT and view is not None and view.raw is not None:
                changed = await _replay_stripe_success(state, view)
            elif how == Repair.STK_QUERY and view is not None and view.query is not None:
                changed = await _settle_mpesa(state, discrepancy.payment_ids[0], view.query)
            elif how == Repair.ORDER_PAID:
                changed = await _resend_order_paid(state, discrepancy.payment_ids[0])
            else:
                continue
        except Exception:
            logger.exception("reconciliation repair failed", extra={"kind": discrepancy.kind})
            continue
        if changed:
            repaired += 1
            metrics.reconciliation_repaired(discrepancy.kind)
            logger.warning(
                "reconciliation repaired a discrepancy",
                extra={
                    "kind": discrepancy.kind,
                    "orderId": str(discrepancy.order_id),
                    "paymentIds": [str(p) for p in discrepancy.payment_ids],
                },
            )
    return repaired


async def _replay_stripe_success(state: PaymentState, view: ProviderView) -> bool:
    """The lost `payment_intent.succeeded` webhook, rebuilt from the PaymentIntent Stripe
    returned, and handled as the webhook is (its event id is recorded once)."""
    event = {
        "id": f"reconciliation:{view.reference}:succeeded",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": view.raw},
    }
    outcome = await handle_stripe_event(state.sessionmaker, event)
    return outcome.kind is EventOutcome.COMPLETED


async def _settle_mpesa(state: PaymentState, payment_id: uuid.UUID, query: StkQueryResult) -> bool:
    async with state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        if payment is None or payment.status not in IN_FLIGHT:
            return False
        return await settle_from_stk_query(session, payment, query, settled_by="reconciliation")


async def _resend_order_paid(state: PaymentState, payment_id: uuid.UUID) -> bool:
    async with state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        if payment is None or payment.status not in KEPT:
            return False
        waiting = await repository.undelivered_order_updates(session, UPDATE_STATUS_TOPIC)
        if str(payment.id) in waiting:
            return False
        queue_order_update(session, payment, ORDER_PAID)
        return True
