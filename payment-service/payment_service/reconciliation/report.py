"""The report (the admin route, `make reconcile`) and the worker's run
("money-reconciliation"): gather, analyse, look again before reporting, repair."""

import logging
from datetime import UTC, datetime

from payment_service import metrics, repository
from payment_service.reconciliation.analysis import KINDS, Figure, Report, analyse
from payment_service.reconciliation.evidence import (
    Evidence,
    fetch_orders,
    gather,
    refunds_and_outbox,
)
from payment_service.reconciliation.repair import repair
from payment_service.reconciliation.window import Window
from payment_service.schemas import (
    CurrencyTotals,
    DiscrepancyOut,
    FigureOut,
    ReconciliationReport,
)
from payment_service.state import PaymentState
from shared.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

metrics.declare_discrepancy_kinds(KINDS)


async def confirm(state: PaymentState, report: Report, evidence: Evidence) -> Report:
    """Keeps only the discrepancies that are still there when their orders and payments are
    read again (a payment settling while the report was made is not a discrepancy)."""
    if not report.discrepancies:
        return report
    order_ids = {d.order_id for d in report.discrepancies if d.order_id}
    payment_ids = {p for d in report.discrepancies for p in d.payment_ids}
    async with state.sessionmaker() as session:
        payments = await repository.payments_by_order_or_id(
            session, order_ids=list(order_ids), payment_ids=list(payment_ids)
        )
        refunds, undelivered = await refunds_and_outbox(session, payments)
    order_ids |= {p.order_id for p in payments}
    again = await fetch_orders(state, order_ids)
    second = Evidence(
        window=evidence.window,
        payments={p.id: p for p in payments},
        orders=again,
        missing_orders=order_ids - set(again),
        refunds=refunds,
        undelivered=undelivered,
        provider_views=evidence.provider_views,
        providers=evidence.providers,
    )
    still = {d.key for d in analyse(second, state.settings, report.generated_at).discrepancies}
    report.discrepancies = [d for d in report.discrepancies if d.key in still]
    return report


async def build_report(state: PaymentState, window: Window) -> Report:
    evidence = await gather(state, window)
    report = analyse(evidence, state.settings, datetime.now(UTC))
    return await confirm(state, report, evidence)


async def reconcile_money(state: PaymentState) -> int:
    """The worker's run: the report over the last RECONCILIATION_WINDOW_DAYS, its counts on
    /metrics, and the safe repairs."""
    window = Window.of(None, None, state.settings.reconciliation_window_days)
    try:
        report = await build_report(state, window)
    except ServiceUnavailable:
        logger.warning("reconciliation skipped: the order service is unavailable")
        return 0
    metrics.reconciliation_discrepancies(report.counts())
    if report.discrepancies:
        logger.warning(
            "reconciliation found discrepancies",
            extra={"counts": {k: n for k, n in report.counts().items() if n}},
        )
    return await repair(state, report)


def report_out(report: Report) -> ReconciliationReport:
    now = report.generated_at
    return ReconciliationReport(
        window_from=report.window.start,
        window_to=report.window.end,
        generated_at=now,
        ok=report.ok,
        providers=report.providers,
        totals=[
            CurrencyTotals(
                currency=currency,
                payments_completed=_figure(totals.payments_completed),
                refunds=_figure(totals.refunds),
                payments_kept=_figure(totals.payments_kept),
                orders_paid=_figure(totals.orders_paid),
                orders_paid_in_cash=_figure(totals.orders_paid_in_cash),
                difference=totals.difference,
            )
            for currency, totals in report.totals.items()
        ],
        counts=report.counts(),
        discrepancies=[
            DiscrepancyOut(
                kind=d.kind,
                description=KINDS[d.kind],
                order_id=d.order_id,
                payment_ids=d.payment_ids,
                provider=d.provider,
                amount=d.amount,
                order_amount=d.order_amount,
                currency=d.currency,
                since=d.since,
                age_seconds=max(0, int((now - d.since).total_seconds())),
                action=d.action,
                repair=d.repair,
            )
            for d in report.discrepancies
        ],
    )


def _figure(figure: Figure) -> FigureOut:
    return FigureOut(count=figure.count, amount=figure.amount)
