"""What each side says about a window: this service's payments and refunds, the order
service's orders, and the providers (Stripe's PaymentIntents, STK Query for M-Pesa
payments still open). The only part of the report that reads anything."""

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import repository
from payment_service.daraja_client import DarajaError, StkQueryResult, StkQueryState
from payment_service.lifecycle import IN_FLIGHT, Provider
from payment_service.models import Payment
from payment_service.order_client import PAID_ORDER_STATUSES
from payment_service.outbox import UPDATE_STATUS_TOPIC
from payment_service.reconciliation.window import Window
from payment_service.state import PaymentState
from payment_service.stripe_client import from_minor_units

if TYPE_CHECKING:
    import stripe
    from stripe.params import PaymentIntentListParams

logger = logging.getLogger(__name__)

STRIPE_PAGE_SIZE = 100
ORDER_PAGE_SIZE = 100
# STK Queries one report makes at most (Daraja limits its callers' rate).
MAX_STK_QUERIES = 50


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


async def gather(state: PaymentState, window: Window) -> Evidence:
    """What this service, the order service and the providers say about the window.

    This service's side is read first: a payment that settles meanwhile shows as not yet
    settled here, and `confirm` looks again before reporting anything."""
    listed = await state.orders.list_orders(window.start, window.end, page_size=ORDER_PAGE_SIZE)
    order_views = {view.id: view for view in map(OrderView.of, listed)}
    async with state.sessionmaker() as session:
        payments = await repository.payments_for_reconciliation(
            session,
            created_from=window.start,
            created_to=window.end,
            order_ids=list(order_views),
        )
        refunds, undelivered = await refunds_and_outbox(session, payments)
    missing = await fetch_orders(state, {p.order_id for p in payments} - set(order_views))
    for view in missing.values():
        order_views[view.id] = view
    provider_views, providers = await _ask_providers(state, window, payments)
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


async def refunds_and_outbox(
    session: AsyncSession, payments: list[Payment]
) -> tuple[list[tuple[uuid.UUID, Decimal]], dict[str, tuple[int, str | None]]]:
    """The payments' succeeded refunds, and the order updates still in the outbox."""
    refunds = await repository.succeeded_refunds(session, [p.id for p in payments])
    undelivered = await repository.undelivered_order_updates(session, UPDATE_STATUS_TOPIC)
    return refunds, undelivered


async def fetch_orders(
    state: PaymentState, order_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, OrderView]:
    """Orders outside the window that payments of the window point at (absent: 404)."""
    found: dict[uuid.UUID, OrderView] = {}
    for order_id in order_ids:
        order = await state.orders.fetch_order(order_id)
        if order is not None:
            found[order_id] = OrderView.of(order)
    return found


async def _ask_providers(
    state: PaymentState, window: Window, payments: list[Payment]
) -> tuple[dict[str, ProviderView], dict[str, str]]:
    views: dict[str, ProviderView] = {}
    providers: dict[str, str] = {}
    client = state.stripe
    if client is None:
        providers["stripe"] = "not configured"
    else:
        import stripe  # here: the SDK is loaded at the first Stripe call (state.py)

        try:
            views |= await _stripe_views(client, window, payments)
            providers["stripe"] = f"compared: {len(views)} PaymentIntents"
        except stripe.StripeError as exc:
            logger.warning(
                "stripe could not be read for reconciliation", extra={"reason": str(exc)}
            )
            providers["stripe"] = f"unavailable: {type(exc).__name__}"

    daraja = state.daraja
    if daraja is None:
        providers["mpesa"] = "not configured"
    else:
        asked_before = datetime.now(UTC) - timedelta(seconds=state.settings.mpesa_query_after)
        open_payments = [
            p
            for p in payments
            if p.provider == Provider.MPESA
            and p.status in IN_FLIGHT
            and p.external_reference
            and p.created_at <= asked_before
        ][:MAX_STK_QUERIES]
        answered = 0
        for payment in open_payments:
            assert payment.external_reference is not None  # filtered above
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
                provider=Provider.MPESA,
                reference=payment.external_reference,
                status=query.state,
                succeeded=query.state is StkQueryState.COMPLETED,
                query=query,
            )
        providers["mpesa"] = (
            f"asked STK Query about {len(open_payments)} open payments, {answered} answered"
        )
    return views, providers


async def _stripe_views(
    client: "stripe.StripeClient", window: Window, payments: list[Payment]
) -> dict[str, ProviderView]:
    """The PaymentIntents created in the window, and those of this window's Stripe payments
    created outside it (read one by one)."""
    import stripe  # here: the SDK is loaded at the first Stripe call (state.py)

    views: dict[str, ProviderView] = {}
    params: PaymentIntentListParams = {
        "created": {"gte": int(window.start.timestamp()), "lt": int(window.end.timestamp()) + 1},
        "limit": STRIPE_PAGE_SIZE,
    }
    while True:
        page = await client.v1.payment_intents.list_async(params)
        for intent in page.data:
            views[intent.id] = _stripe_view(intent)
        if not page.has_more or not page.data:
            break
        params["starting_after"] = page.data[-1].id
    for payment in payments:
        reference = payment.external_reference
        if payment.provider == Provider.STRIPE and reference and reference not in views:
            try:
                intent = await client.v1.payment_intents.retrieve_async(reference)
            except stripe.InvalidRequestError:
                # Not at Stripe (another account's key, or test mode against live data).
                views[reference] = ProviderView(
                    Provider.STRIPE, reference, "missing", succeeded=False
                )
                continue
            views[reference] = _stripe_view(intent)
    return views


def _stripe_view(intent: Any) -> ProviderView:
    raw = intent.to_dict()
    metadata = raw.get("metadata") or {}
    currency = str(raw.get("currency") or "").upper()
    received = raw.get("amount_received") or raw.get("amount") or 0
    return ProviderView(
        provider=Provider.STRIPE,
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
