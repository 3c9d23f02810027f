"""What the running payment service holds (shared.state): its database, the client of
the order service, the payment providers and its Idempotency-Keys."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

import httpx

from payment_service.config import PaymentSettings
from payment_service.daraja_client import DarajaClient
from payment_service.models import IdempotencyKey
from payment_service.order_client import OrderClient
from payment_service.outbox import ORDER_UPDATES, OrderUpdates
from payment_service.stripe_client import create_stripe_client
from shared.http_client import create_http_client
from shared.idempotency import IdempotencyKeys
from shared.state import DatabaseState

if TYPE_CHECKING:
    import stripe

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PaymentState(DatabaseState[PaymentSettings]):
    orders: OrderClient
    # None: the provider is not configured, its payments answer 503.
    daraja: DarajaClient | None
    # Daraja's own HTTP client (closed at shutdown): never the internal one, which would
    # hand Safaricom our internal token.
    daraja_http: httpx.AsyncClient | None
    idempotency_keys: IdempotencyKeys
    # Order updates sent as soon as their settlement commits (payment_service.outbox).
    order_updates: OrderUpdates

    @cached_property
    def stripe(self) -> "stripe.StripeClient | None":
        """None: Stripe is not configured, its payments answer 503. Made at the first
        Stripe call (a payment, a refund, a reconciliation run), not at start: the SDK is
        ~8 MiB of every payment process's memory, which a shop paid through M-Pesa never
        needs. The modules that call Stripe import it there, for the same reason."""
        return create_stripe_client(self.settings)


async def open_state(base: DatabaseState[PaymentSettings]) -> PaymentState:
    settings = base.settings
    daraja_http: httpx.AsyncClient | None = None
    daraja: DarajaClient | None = None
    if settings.mpesa_configured:
        assert settings.mpesa_consumer_key and settings.mpesa_consumer_secret
        assert settings.mpesa_shortcode and settings.mpesa_passkey
        # The pooled client of calls to other services (aiohttp underneath): httpx's own
        # transport cost a fifth of the payment service's CPU under load (STK Push, Query).
        daraja_http = create_http_client(
            timeout=settings.mpesa_timeout, connect_timeout=min(settings.mpesa_timeout, 10)
        )
        daraja = DarajaClient(
            base_url=settings.daraja_base_url,
            consumer_key=settings.mpesa_consumer_key.get_secret_value(),
            consumer_secret=settings.mpesa_consumer_secret.get_secret_value(),
            shortcode=settings.mpesa_shortcode,
            passkey=settings.mpesa_passkey.get_secret_value(),
            http=daraja_http,
        )
        logger.info(
            "m-pesa enabled",
            extra={"environment": settings.mpesa_environment, "baseUrl": settings.daraja_base_url},
        )
    else:
        logger.warning("m-pesa is not configured: M-Pesa payments answer 503")
    if settings.stripe_secret_key is None:
        logger.warning("STRIPE_SECRET_KEY is not set: Stripe payments answer 503")
    orders = OrderClient(base.services, settings.order_service_url)
    order_updates = OrderUpdates(base.sessionmaker, orders.update_status)
    # Every session of the service carries them: a settlement's order update is sent once
    # its transaction commits, whoever settled (callback, poller, webhook, repair).
    base.sessionmaker.configure(info={ORDER_UPDATES: order_updates})
    return PaymentState(
        **base.base(),
        orders=orders,
        order_updates=order_updates,
        daraja=daraja,
        daraja_http=daraja_http,
        idempotency_keys=IdempotencyKeys(
            IdempotencyKey,
            ttl=timedelta(seconds=settings.idempotency_key_ttl),
            wait=settings.service_timeout + 3,
        ),
    )


async def close_state(state: PaymentState) -> None:
    if state.daraja_http is not None:
        await state.daraja_http.aclose()
