"""The money reconciliation report (docs/reconciliation.md): did every shilling customers
paid end on the right order, exactly once?

It compares this service's payments with the order service's orders (its internal
`GET /api/internal/orders` route) and, where credentials are configured, with the
providers: Stripe's PaymentIntents of the window, and Daraja's STK Query for M-Pesa
payments still open. Three steps:

- `gather`: what each side says (payments and refunds here, orders there, providers).
- `analyse`: a pure function from that evidence to the discrepancies and the totals.
- `repair`: what is safe to repair, repaired through the code path of the webhook or
  callback that was lost (the worker runs it; the admin route only reports).

A discrepancy found once is looked at again before it is reported (`confirm`): a payment
settling while the report is made must not be reported as missing.
"""

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from fastapi import FastAPI

from payment_service import metrics, orders, repository
from payment_service.config import PaymentSettings
from payment_service.daraja import DarajaError, StkQueryResult
from payment_service.models import IN_FLIGHT, KEPT, SETTLED_PAID, Payment
from payment_service.schemas import (
    CurrencyTotals,
    DiscrepancyOut,
    FigureOut,
    ReconciliationReport,
)
from payment_service.service import (
    ORDER_PAID,
    handle_stripe_event,
    queue_order_update,
    settle_from_stk_query,
)
from payment_service.stripe_gateway import from_minor_units
from shared.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

# What each kind of discrepancy means (the README and docs/reconciliation.md say more).
KINDS = {
    "payment_not_on_order": "a completed payment whose order is not paid, or does not exist",
    "order_without_payment": "a paid order without a completed payment",
    "order_paid_twice": "a paid order with two or more completed payments (a double charge)",
    "amount_mismatch": "a payment whose amount or currency is not its order's total",
    "refund_pending": "a completed payment on a cancelled order, not refunded",
    "stale_processing": "an M-Pesa payment still open past MPESA_EXPIRE_AFTER",
    "provider_paid_not_recorded": "paid at the provider, not completed here (a lost webhook)",
    "recorded_paid_not_at_provider": "completed here, not paid at the provider",
}
metrics.declare_discrepancy_kinds(KINDS)
PAID_ORDER_STATUSES = orders.PAID_ORDER_STATUSES
CLOSED_ORDER_STATUSES = frozenset({"cancelled", "failed"})
CASH_ON_DELIVERY = "cash_on_delivery"
STRIPE_PAGE_SIZE = 100
ORDER_PAGE_SIZE = 100
# STK Queries one report makes at most (Daraja limits its callers' rate).
MAX_STK_QUERIES = 50


class InvalidWindow(ValueError):
    pass


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: datetime | None, end: datetime | None, default_days: float) -> "Window":
        """The report's window, [start, end): by default the last `default_days` days."""
        for name, moment in (("from", start), ("to", end)):
            if moment is not None and moment.tzinfo is None:
                raise InvalidWindow(f"{name} must carry a timezone (e.g. Z)")
        end = end or datetime.now(UTC)
        start = start or end - timedelta(days=default_days)
        if start >= end:
            raise InvalidWindow("from must be before to")
        if end - start > timedelta(days=366):
            raise InvalidWindow("the window is at most 366 days")
        return cls(start, end)


@dataclass(frozen=True)
class OrderView:
    """An order as the order service shows it."""

    id: uuid.UUID
    status: str
    payment_status: str
    total: Decimal
    currency: str
    payment_method: str | None
    created_at: datetime

    @classmethod
    def of(cls, order: dict[str, Any]) -> "OrderView":
        return cls(
            id=uuid.UUID(str(order["id"])),
            status=str(order["status"]),
            payment_status=str(order["paymentStatus"]),
            total=Decimal(str(order["totalAmount"])),
            currency=str(order.get("currency") or "").upper(),
            payment_method=order.get("paymentMethod"),
            created_at=datetime.fromisoformat(str(order["createdAt"])),
        )

    @property
    def paid(self) -> bool:
        """The order keeps a payment's money: it must have exactly one kept payment."""
        return self.status in PAID_ORDER_STATUSES and self.payment_status == "paid"


@dataclass(frozen=True)
class ProviderView:
    """What a provider says about one payment: a PaymentIntent's status, or STK Query's
    state ("completed", "failed", "pending")."""

    provider: str
    reference: str
    status: str
    succeeded: bool
    amount: Decimal | None = None
    currency: str | None = None
    payment_id: str | None = None  # from the PaymentIntent's metadata
    order_id: str | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] | None = field(default=None, compare=False)
    query: StkQueryResult | None = field(default=None, compare=False)


@dataclass
class Evidence:
    window: Window
    payments: dict[uuid.UUID, Payment]
    orders: dict[uuid.UUID, OrderView]
    # Orders payments point at that the order service does not have.
    missing_orders: set[uuid.UUID]
    refunds: list[tuple[uuid.UUID, Decimal]]
    # Payment id -> (attempts, last error) of order updates still in the outbox.
    undelivered: dict[str, tuple[int, str | None]]
    # Stripe: PaymentIntent id -> view; M-Pesa: CheckoutRequestID -> view.
    provider_views: dict[str, ProviderView]
    providers: dict[str, str]


@dataclass
class Discrepancy:
    kind: str
    order_id: uuid.UUID | None
    payment_ids: list[uuid.UUID]
    provider: str | None
    amount: Decimal | None
    order_amount: Decimal | None
    currency: str | None
    since: datetime
    action: str
    # What the worker does about it (None: a person must act).
    repair: str | None = None
    # How: ("stripe", ProviderView), ("mpesa", ProviderView) or ("order_paid", None).
    repair_with: tuple[str, ProviderView | None] | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple:
        return (self.kind, self.order_id, tuple(sorted(map(str, self.payment_ids))))


@dataclass
class Figure:
    count: int = 0
    amount: Decimal = Decimal("0.00")

    def add(self, amount: Decimal) -> None:
        self.count += 1
        self.amount += amount


@dataclass
class Totals:
    """One currency's totals. Every paid order keeps exactly one payment of its total, and
    no other payment is kept: the kept payments and the paid orders must sum the same."""

    payments_completed: Figure = field(default_factory=Figure)  # money received
    refunds: Figure = field(default_factory=Figure)  # money given back
    payments_kept: Figure = field(default_factory=Figure)  # received, not refunded in full
    orders_paid: Figure = field(default_factory=Figure)
    # Cash on delivery marked paid by an admin: money this service never sees.
    orders_paid_in_cash: Figure = field(default_factory=Figure)

    @property
    def difference(self) -> Decimal:
        return self.payments_kept.amount - self.orders_paid.amount


@dataclass
class Report:
    window: Window
    generated_at: datetime
    providers: dict[str, str]
    totals: dict[str, Totals]
    discrepancies: list[Discrepancy]

    @property
    def ok(self) -> bool:
        return not self.discrepancies and all(t.difference == 0 for t in self.totals.values())

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for discrepancy in self.discrepancies:
            counts[discrepancy.kind] += 1
        return counts


# --- Gathering ---------------------------------------------------------------------------


async def gather(app: FastAPI, window: Window) -> Evidence:
    """What this service, the order service and the providers say about the window.

    This service's side is read first: a payment that settles meanwhile shows as not yet
    settled here, and `confirm` looks again before reporting anything."""
    settings: PaymentSettings = app.state.settings
    listed = await orders.list_orders(
        app.state.services,
        settings.order_service_url,
        window.start,
        window.end,
        page_size=ORDER_PAGE_SIZE,
    )
    order_views = {view.id: view for view in map(OrderView.of, listed)}
    async with app.state.sessionmaker() as session:
        payments = await repository.payments_for_reconciliation(
            session,
            created_from=window.start,
            created_to=window.end,
            order_ids=list(order_views),
        )
        refunds, undelivered = await _refunds_and_outbox(session, payments)
    missing = await _fetch_orders(app, {p.order_id for p in payments} - set(order_views))
    for view in missing.values():
        order_views[view.id] = view
    provider_views, providers = await _ask_providers(app, window, payments)
    return Evidence(
        window=window,
        payments={p.id: p for p in payments},
        orders=order_views,
        missing_orders={p.order_id for p in payments} - set(order_views),
        refunds=refunds,
        undelivered=undelivered,
        provider_views=provider_views,
        providers=providers,
    )


async def _refunds_and_outbox(session, payments: list[Payment]):
    refunds = await repository.succeeded_refunds(session, [p.id for p in payments])
    undelivered = await repository.undelivered_order_updates(session, orders.UPDATE_STATUS_TOPIC)
    return refunds, undelivered


async def _fetch_orders(app: FastAPI, order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, OrderView]:
    """Orders outside the window that payments of the window point at (absent: 404)."""
    settings: PaymentSettings = app.state.settings
    found: dict[uuid.UUID, OrderView] = {}
    for order_id in order_ids:
        order = await orders.fetch_order(app.state.services, settings.order_service_url, order_id)
        if order is not None:
            found[order_id] = OrderView.of(order)
    return found


async def _ask_providers(
    app: FastAPI, window: Window, payments: list[Payment]
) -> tuple[dict[str, ProviderView], dict[str, str]]:
    views: dict[str, ProviderView] = {}
    providers: dict[str, str] = {}
    client: stripe.StripeClient | None = app.state.providers.stripe
    if client is None:
        providers["stripe"] = "not configured"
    else:
        try:
            views |= await _stripe_views(client, window, payments)
            providers["stripe"] = f"compared: {len(views)} PaymentIntents"
        except stripe.StripeError as exc:
            logger.warning(
                "stripe could not be read for reconciliation", extra={"reason": str(exc)}
            )
            providers["stripe"] = f"unavailable: {type(exc).__name__}"

    daraja = app.state.providers.daraja
    if daraja is None:
        providers["mpesa"] = "not configured"
    else:
        settings: PaymentSettings = app.state.settings
        asked_before = datetime.now(UTC) - timedelta(seconds=settings.mpesa_query_after)
        open_payments = [
            p
            for p in payments
            if p.provider == "mpesa"
            and p.status in IN_FLIGHT
            and p.external_reference
            and p.created_at <= asked_before
        ][:MAX_STK_QUERIES]
        answered = 0
        for payment in open_payments:
            try:
                query = await daraja.stk_query(payment.external_reference)
            except DarajaError as exc:
                logger.warning(
                    "stk query failed during reconciliation",
                    extra={"paymentId": str(payment.id), "reason": str(exc)},
                )
                continue
            answered += 1
            views[payment.external_reference] = ProviderView(
                provider="mpesa",
                reference=payment.external_reference,
                status=query.state,
                succeeded=query.state == "completed",
                query=query,
            )
        providers["mpesa"] = (
            f"asked STK Query about {len(open_payments)} open payments, {answered} answered"
        )
    return views, providers


async def _stripe_views(
    client: stripe.StripeClient, window: Window, payments: list[Payment]
) -> dict[str, ProviderView]:
    """The PaymentIntents created in the window, and those of this window's Stripe payments
    created outside it (read one by one)."""
    views: dict[str, ProviderView] = {}
    params: dict[str, Any] = {
        "created": {"gte": int(window.start.timestamp()), "lt": int(window.end.timestamp()) + 1},
        "limit": STRIPE_PAGE_SIZE,
    }
    while True:
        page = await client.v1.payment_intents.list_async(params)
        for intent in page.data:
            views[intent.id] = _stripe_view(intent)
        if not page.has_more or not page.data:
            break
        params = {**params, "starting_after": page.data[-1].id}
    for payment in payments:
        reference = payment.external_reference
        if payment.provider == "stripe" and reference and reference not in views:
            try:
                intent = await client.v1.payment_intents.retrieve_async(reference)
            except stripe.InvalidRequestError:
                # Not at Stripe (another account's key, or test mode against live data).
                views[reference] = ProviderView("stripe", reference, "missing", succeeded=False)
                continue
            views[reference] = _stripe_view(intent)
    return views


def _stripe_view(intent: Any) -> ProviderView:
    raw = intent.to_dict()
    metadata = raw.get("metadata") or {}
    currency = str(raw.get("currency") or "").upper()
    received = raw.get("amount_received") or raw.get("amount") or 0
    return ProviderView(
        provider="stripe",
        reference=raw["id"],
        status=str(raw.get("status")),
        succeeded=raw.get("status") == "succeeded",
        amount=from_minor_units(int(received), currency) if currency else None,
        currency=currency or None,
        payment_id=metadata.get("paymentId"),
        order_id=metadata.get("orderId"),
        created_at=datetime.fromtimestamp(raw["created"], UTC) if raw.get("created") else None,
        raw=raw,
    )


# --- Analysis ----------------------------------------------------------------------------


def analyse(evidence: Evidence, settings: PaymentSettings, now: datetime) -> Report:
    """The discrepancies and totals the evidence shows. Pure: no I/O."""
    found: list[Discrepancy] = []
    by_order: dict[uuid.UUID, list[Payment]] = defaultdict(list)
    for payment in evidence.payments.values():
        by_order[payment.order_id].append(payment)
        found += _payment_discrepancies(evidence, settings, now, payment)
    for order in evidence.orders.values():
        found += _order_discrepancies(order, by_order.get(order.id, []))
    found += _unknown_intents(evidence)
    found.sort(key=lambda d: (d.since, d.kind))
    return Report(
        window=evidence.window,
        generated_at=now,
        providers=evidence.providers,
        totals=_totals(evidence, by_order),
        discrepancies=found,
    )


def _paid_in_cash(order: OrderView, payments: list[Payment]) -> bool:
    """A cash-on-delivery order an admin marked paid, without any payment here."""
    return (
        order.paid
        and order.payment_method == CASH_ON_DELIVERY
        and not any(p.status in KEPT for p in payments)
    )


def _payment_discrepancies(
    evidence: Evidence, settings: PaymentSettings, now: datetime, payment: Payment
) -> list[Discrepancy]:
    order = evidence.orders.get(payment.order_id)
    found: list[Discrepancy] = []

    def discrepancy(kind: str, action: str, **fields: Any) -> Discrepancy:
        values = {
            "kind": kind,
            "order_id": payment.order_id,
            "payment_ids": [payment.id],
            "provider": payment.provider,
            "amount": payment.amount,
            "order_amount": order.total if order else None,
            "currency": payment.currency,
            "since": payment.completed_at or payment.created_at,
            "action": action,
            **fields,
        }
        return Discrepancy(**values)

    received = payment.status in SETTLED_PAID
    if (
        received
        and order is not None
        and (payment.amount != order.total or payment.currency != order.currency)
    ):
        found.append(
            discrepancy(
                "amount_mismatch",
                f"The payment took {payment.amount} {payment.currency} for an order of "
                f"{order.total} {order.currency}: refund or collect the difference, and find "
                "out how the amounts parted.",
            )
        )

    if payment.status in KEPT:
        if order is None:
            found.append(
                discrepancy(
                    "payment_not_on_order",
                    "The order service has no such order: find the customer (the payment's "
                    f"phone or receipt) and refund payment {payment.id}.",
                )
            )
        elif order.status in CLOSED_ORDER_STATUSES:
            found.append(
                discrepancy(
                    "refund_pending",
                    f"The order was {order.status} after it was paid: refund payment "
                    f"{payment.id} (POST /api/payments/{payment.id}/refund).",
                )
            )
        elif not order.paid:
            found.append(_not_on_order(evidence, payment, order, discrepancy))

    if (
        payment.provider == "mpesa"
        and payment.status in IN_FLIGHT
        and now - payment.created_at > timedelta(seconds=settings.mpesa_expire_after)
    ):
        view = evidence.provider_views.get(payment.external_reference or "")
        if view is None or not view.succeeded:
            found.append(
                discrepancy(
                    "stale_processing",
                    f"No result from M-Pesa after MPESA_EXPIRE_AFTER "
                    f"({settings.mpesa_expire_after:g} s): the payment service's workers are "
                    "not settling it. Check that they run (WORKERS_ENABLED) and that Daraja "
                    "answers STK Query.",
                    since=payment.created_at,
                )
            )

    view = evidence.provider_views.get(payment.external_reference or "")
    if view is not None and view.provider == payment.provider:
        if view.succeeded and payment.status not in SETTLED_PAID:
            name = "PaymentIntent" if view.provider == "stripe" else "STK Query"
            found.append(
                discrepancy(
                    "provider_paid_not_recorded",
                    f"{name} says {view.reference} was paid; it is {payment.status} here. "
                    "The reconciliation worker settles it from the provider's answer, as its "
                    "webhook or callback would have; if it stays, read the payment's events "
                    "(an amount that does not match is never settled).",
                    since=view.created_at or payment.created_at,
                    repair="settle the payment from the provider's answer",
                    repair_with=(view.provider, view),
                )
            )
        elif payment.provider == "stripe" and received and not view.succeeded:
            found.append(
                discrepancy(
                    "recorded_paid_not_at_provider",
                    f"Completed here, but Stripe says PaymentIntent {view.reference} is "
                    f"{view.status}: do not ship; compare with the Stripe Dashboard and the "
                    "webhook events received.",
                )
            )
    return found


def _not_on_order(evidence: Evidence, payment: Payment, order: OrderView, discrepancy):
    """A kept payment whose order is neither paid nor closed."""
    waiting = evidence.undelivered.get(str(payment.id))
    if waiting is not None:
        attempts, error = waiting
        return discrepancy(
            "payment_not_on_order",
            f"The order is {order.status}: its update is waiting in the outbox ({attempts} "
            f"attempts, last error: {error or 'none'}). Check that the order service is "
            "reachable; delivery goes on by itself.",
        )
    if order.status == "pending":
        return discrepancy(
            "payment_not_on_order",
            "The order is pending although its payment completed: its paid update is sent "
            "again through the outbox.",
            repair="send the order its paid update again",
            repair_with=("order_paid", None),
        )
    return discrepancy(
        "payment_not_on_order",
        f"The order is {order.status} with payment status {order.payment_status}: read its "
        "history (GET /api/orders/:id) and set what is right.",
    )


def _order_discrepancies(order: OrderView, payments: list[Payment]) -> list[Discrepancy]:
    if not order.paid or _paid_in_cash(order, payments):
        return []
    kept = sorted((p for p in payments if p.status in KEPT), key=lambda p: p.created_at)
    if len(kept) == 1:
        return []
    if not kept:
        return [
            Discrepancy(
                kind="order_without_payment",
                order_id=order.id,
                payment_ids=[p.id for p in payments],
                provider=None,
                amount=None,
                order_amount=order.total,
                currency=order.currency,
                since=order.created_at,
                action="The order is paid but no completed payment here belongs to it: do not "
                "ship until the money is found at the provider, then correct the order.",
            )
        ]
    later = ", ".join(str(p.id) for p in kept[1:])
    return [
        Discrepancy(
            kind="order_paid_twice",
            order_id=order.id,
            payment_ids=[p.id for p in kept],
            provider=",".join(sorted({p.provider for p in kept})),
            amount=sum((p.amount for p in kept), Decimal("0.00")),
            order_amount=order.total,
            currency=order.currency,
            since=kept[1].completed_at or kept[1].created_at,
            action=f"The customer paid {len(kept)} times: refund {later} "
            "(POST /api/payments/:id/refund).",
        )
    ]


def _unknown_intents(evidence: Evidence) -> list[Discrepancy]:
    """PaymentIntents that succeeded at Stripe with this service's metadata but no payment
    here (a payment row lost, or made with another database)."""
    references = {p.external_reference for p in evidence.payments.values()}
    found = []
    for view in evidence.provider_views.values():
        if view.provider != "stripe" or not view.succeeded or view.reference in references:
            continue
        if not view.payment_id:
            continue  # not made by this service (another integration on the same account)
        found.append(
            Discrepancy(
                kind="provider_paid_not_recorded",
                order_id=_uuid_or_none(view.order_id),
                payment_ids=[p for p in [_uuid_or_none(view.payment_id)] if p],
                provider="stripe",
                amount=view.amount,
                order_amount=None,
                currency=view.currency,
                since=view.created_at or evidence.window.start,
                action=f"PaymentIntent {view.reference} succeeded at Stripe but no payment here "
                "has it: look it up in the Stripe Dashboard and refund it or record it by hand.",
            )
        )
    return found


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _totals(evidence: Evidence, by_order: dict[uuid.UUID, list[Payment]]) -> dict[str, Totals]:
    totals: dict[str, Totals] = defaultdict(Totals)
    currencies = {p.id: p.currency for p in evidence.payments.values()}
    for payment in evidence.payments.values():
        if payment.status in SETTLED_PAID:
            totals[payment.currency].payments_completed.add(payment.amount)
        if payment.status in KEPT:
            totals[payment.currency].payments_kept.add(payment.amount)
    for payment_id, amount in evidence.refunds:
        totals[currencies[payment_id]].refunds.add(amount)
    for order in evidence.orders.values():
        if _paid_in_cash(order, by_order.get(order.id, [])):
            totals[order.currency].orders_paid_in_cash.add(order.total)
        elif order.paid:
            totals[order.currency].orders_paid.add(order.total)
    return dict(sorted(totals.items()))


# --- Confirming, reporting, repairing -------------------------------------------------------


async def confirm(app: FastAPI, report: Report, evidence: Evidence) -> Report:
    """Keeps only the discrepancies that are still there when their orders and payments are
    read again (a payment settling while the report was made is not a discrepancy)."""
    if not report.discrepancies:
        return report
    order_ids = {d.order_id for d in report.discrepancies if d.order_id}
    payment_ids = {p for d in report.discrepancies for p in d.payment_ids}
    async with app.state.sessionmaker() as session:
        payments = await repository.payments_by_order_or_id(
            session, order_ids=list(order_ids), payment_ids=list(payment_ids)
        )
        refunds, undelivered = await _refunds_and_outbox(session, payments)
    order_ids |= {p.order_id for p in payments}
    again = await _fetch_orders(app, order_ids)
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
    still = {d.key for d in analyse(second, app.state.settings, report.generated_at).discrepancies}
    report.discrepancies = [d for d in report.discrepancies if d.key in still]
    return report


async def build_report(app: FastAPI, window: Window) -> Report:
    evidence = await gather(app, window)
    report = analyse(evidence, app.state.settings, datetime.now(UTC))
    return await confirm(app, report, evidence)


async def repair(app: FastAPI, report: Report) -> int:
    """Repairs what is safe to repair; returns how many were. Each repair is idempotent:
    a replayed Stripe event has an id of its own, recorded once; a payment is settled only
    from an open status; an order's paid update is sent again only when none is waiting."""
    repaired = 0
    for discrepancy in report.discrepancies:
        if discrepancy.repair_with is None:
            continue
        how, view = discrepancy.repair_with
        try:
            if how == "stripe" and view is not None and view.raw is not None:
                changed = await _replay_stripe_success(app, view)
            elif how == "mpesa" and view is not None and view.query is not None:
                changed = await _settle_mpesa(app, discrepancy.payment_ids[0], view.query)
            elif how == "order_paid":
                changed = await _resend_order_paid(app, discrepancy.payment_ids[0])
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


async def _replay_stripe_success(app: FastAPI, view: ProviderView) -> bool:
    """The lost `payment_intent.succeeded` webhook, rebuilt from the PaymentIntent Stripe
    returned, and handled as the webhook is (its event id is recorded once)."""
    event = {
        "id": f"reconciliation:{view.reference}:succeeded",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": view.raw},
    }
    outcome = await handle_stripe_event(app, event)
    return outcome == "completed"


async def _settle_mpesa(app: FastAPI, payment_id: uuid.UUID, query: StkQueryResult) -> bool:
    async with app.state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        if payment is None or payment.status not in IN_FLIGHT:
            return False
        return await settle_from_stk_query(session, payment, query, settled_by="reconciliation")


async def _resend_order_paid(app: FastAPI, payment_id: uuid.UUID) -> bool:
    async with app.state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        if payment is None or payment.status not in KEPT:
            return False
        waiting = await repository.undelivered_order_updates(session, orders.UPDATE_STATUS_TOPIC)
        if str(payment.id) in waiting:
            return False
        queue_order_update(session, payment, ORDER_PAID)
        return True


async def reconcile_money(app: FastAPI) -> int:
    """The worker's run: the report over the last RECONCILIATION_WINDOW_DAYS, its counts on
    /metrics, and the safe repairs."""
    settings: PaymentSettings = app.state.settings
    window = Window.of(None, None, settings.reconciliation_window_days)
    try:
        report = await build_report(app, window)
    except ServiceUnavailable:
        logger.warning("reconciliation skipped: the order service is unavailable")
        return 0
    metrics.reconciliation_discrepancies(report.counts())
    if report.discrepancies:
        logger.warning(
            "reconciliation found discrepancies",
            extra={"counts": {k: n for k, n in report.counts().items() if n}},
        )
    return await repair(app, report)


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
