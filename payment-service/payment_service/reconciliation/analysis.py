"""From the evidence to the discrepancies and the totals: pure functions, no I/O.

Every paid order keeps exactly one payment of its total, and no other payment is kept:
the kept payments and the paid orders must sum the same, currency by currency.
"""

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from payment_service.config import PaymentSettings
from payment_service.lifecycle import IN_FLIGHT, KEPT, SETTLED_PAID, Provider
from payment_service.models import Payment
from payment_service.order_client import CLOSED_ORDER_STATUSES
from payment_service.reconciliation.evidence import Evidence, OrderView, ProviderView
from payment_service.reconciliation.window import Window


class Kind(StrEnum):
    PAYMENT_NOT_ON_ORDER = "payment_not_on_order"
    ORDER_WITHOUT_PAYMENT = "order_without_payment"
    ORDER_PAID_TWICE = "order_paid_twice"
    AMOUNT_MISMATCH = "amount_mismatch"
    REFUND_PENDING = "refund_pending"
    STALE_PROCESSING = "stale_processing"
    PROVIDER_PAID_NOT_RECORDED = "provider_paid_not_recorded"
    RECORDED_PAID_NOT_AT_PROVIDER = "recorded_paid_not_at_provider"


# What each kind of discrepancy means (the README and docs/reconciliation.md say more).
KINDS: dict[Kind, str] = {
    Kind.PAYMENT_NOT_ON_ORDER: "a completed payment whose order is not paid, or does not exist",
    Kind.ORDER_WITHOUT_PAYMENT: "a paid order without a completed payment",
    Kind.ORDER_PAID_TWICE: "a paid order with two or more completed payments (a double charge)",
    Kind.AMOUNT_MISMATCH: "a payment whose amount or currency is not its order's total",
    Kind.REFUND_PENDING: "a completed payment on a cancelled order, not refunded",
    Kind.STALE_PROCESSING: "an M-Pesa payment still open past MPESA_EXPIRE_AFTER",
    Kind.PROVIDER_PAID_NOT_RECORDED: "paid at the provider, not completed here (a lost webhook)",
    Kind.RECORDED_PAID_NOT_AT_PROVIDER: "completed here, not paid at the provider",
}
CASH_ON_DELIVERY = "cash_on_delivery"


class Repair(StrEnum):
    """How the worker repairs a discrepancy (reconciliation/repair.py)."""

    STRIPE_EVENT = "stripe event"  # the lost webhook, replayed from the PaymentIntent
    STK_QUERY = "stk query"  # settled from STK Query's answer, as the callback would
    ORDER_PAID = "order paid"  # the order's paid update sent again


@dataclass
class Discrepancy:
    kind: Kind
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
    # How, and from what provider's answer (None for ORDER_PAID).
    repair_with: tuple["Repair", ProviderView | None] | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[Kind, uuid.UUID | None, tuple[str, ...]]:
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
        counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        for discrepancy in self.discrepancies:
            counts[discrepancy.kind] += 1
        return counts


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

    def discrepancy(kind: Kind, action: str, **fields: Any) -> Discrepancy:
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
                Kind.AMOUNT_MISMATCH,
                f"The payment took {payment.amount} {payment.currency} for an order of "
                f"{order.total} {order.currency}: refund or collect the difference, and find "
                "out how the amounts parted.",
            )
        )

    if payment.status in KEPT:
        if order is None:
            found.append(
                discrepancy(
                    Kind.PAYMENT_NOT_ON_ORDER,
                    "The order service has no such order: find the customer (the payment's "
                    f"phone or receipt) and refund payment {payment.id}.",
                )
            )
        elif order.status in CLOSED_ORDER_STATUSES:
            found.append(
                discrepancy(
                    Kind.REFUND_PENDING,
                    f"The order was {order.status} after it was paid: refund payment "
                    f"{payment.id} (POST /api/payments/{payment.id}/refund).",
                )
            )
        elif not order.paid:
            found.append(_not_on_order(evidence, payment, order, discrepancy))

    if (
        payment.provider == Provider.MPESA
        and payment.status in IN_FLIGHT
        and now - payment.created_at > timedelta(seconds=settings.mpesa_expire_after)
    ):
        view = evidence.provider_views.get(payment.external_reference or "")
        if view is None or not view.succeeded:
            found.append(
                discrepancy(
                    Kind.STALE_PROCESSING,
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
            name = "PaymentIntent" if view.provider == Provider.STRIPE else "STK Query"
            found.append(
                discrepancy(
                    Kind.PROVIDER_PAID_NOT_RECORDED,
                    f"{name} says {view.reference} was paid; it is {payment.status} here. "
                    "The reconciliation worker settles it from the provider's answer, as its "
                    "webhook or callback would have; if it stays, read the payment's events "
                    "(an amount that does not match is never settled).",
                    since=view.created_at or payment.created_at,
                    repair="settle the payment from the provider's answer",
                    repair_with=(
                        Repair.STRIPE_EVENT
                        if view.provider == Provider.STRIPE
                        else Repair.STK_QUERY,
                        view,
                    ),
                )
            )
        elif payment.provider == Provider.STRIPE and received and not view.succeeded:
            found.append(
                discrepancy(
                    Kind.RECORDED_PAID_NOT_AT_PROVIDER,
                    f"Completed here, but Stripe says PaymentIntent {view.reference} is "
                    f"{view.status}: do not ship; compare with the Stripe Dashboard and the "
                    "webhook events received.",
                )
            )
    return found


def _repair_from(view: ProviderView) -> Repair:
    return Repair.STRIPE_EVENT if view.provider == Provider.STRIPE else Repair.STK_QUERY


def _not_on_order(
    evidence: Evidence,
    payment: Payment,
    order: OrderView,
    discrepancy: Callable[..., Discrepancy],
) -> Discrepancy:
    """A kept payment whose order is neither paid nor closed."""
    waiting = evidence.undelivered.get(str(payment.id))
    if waiting is not None:
        attempts, error = waiting
        return discrepancy(
            Kind.PAYMENT_NOT_ON_ORDER,
            f"The order is {order.status}: its update is waiting in the outbox ({attempts} "
            f"attempts, last error: {error or 'none'}). Check that the order service is "
            "reachable; delivery goes on by itself.",
        )
    if order.status == "pending":
        return discrepancy(
            Kind.PAYMENT_NOT_ON_ORDER,
            "The order is pending although its payment completed: its paid update is sent "
            "again through the outbox.",
            repair="send the order its paid update again",
            repair_with=(Repair.ORDER_PAID, None),
        )
    return discrepancy(
        Kind.PAYMENT_NOT_ON_ORDER,
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
                kind=Kind.ORDER_WITHOUT_PAYMENT,
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
            kind=Kind.ORDER_PAID_TWICE,
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
        if view.provider != Provider.STRIPE or not view.succeeded or view.reference in references:
            continue
        if not view.payment_id:
            continue  # not made by this service (another integration on the same account)
        found.append(
            Discrepancy(
                kind=Kind.PROVIDER_PAID_NOT_RECORDED,
                order_id=_uuid_or_none(view.order_id),
                payment_ids=[p for p in [_uuid_or_none(view.payment_id)] if p],
                provider=Provider.STRIPE,
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
