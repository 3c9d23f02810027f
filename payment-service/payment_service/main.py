"""The payment service's app factory (`uvicorn --factory payment_service.main:create_app`)."""

import logging
from datetime import timedelta

import httpx
from fastapi import FastAPI

from payment_service import orders, reconciliation, service
from payment_service.config import PaymentSettings, get_settings
from payment_service.daraja import DarajaClient
from payment_service.metrics import OUTBOX_FIGURES
from payment_service.models import IdempotencyKey, OutboxMessage
from payment_service.routes import admin_router, internal_router, router, webhook_router
from payment_service.stripe_gateway import create_stripe_client
from shared.app import create_app as create_service_app
from shared.idempotency import IdempotencyKeys
from shared.outbox import deliver_due
from shared.workers import PeriodicWorker

logger = logging.getLogger(__name__)


async def _open_providers(app: FastAPI) -> None:
    settings: PaymentSettings = app.state.settings
    daraja = None
    app.state.daraja_http = None
    if settings.mpesa_configured:
        # Daraja is outside this system: its own client, never the internal one (which
        # would hand Safaricom our internal token).
        app.state.daraja_http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.mpesa_timeout, connect=min(settings.mpesa_timeout, 10))
        )
        daraja = DarajaClient(
            base_url=settings.daraja_base_url,
            consumer_key=settings.mpesa_consumer_key.get_secret_value(),
            consumer_secret=settings.mpesa_consumer_secret.get_secret_value(),
            shortcode=settings.mpesa_shortcode,
            passkey=settings.mpesa_passkey.get_secret_value(),
            http=app.state.daraja_http,
        )
        logger.info(
            "m-pesa enabled",
            extra={"environment": settings.mpesa_environment, "baseUrl": settings.daraja_base_url},
        )
    else:
        logger.warning("m-pesa is not configured: M-Pesa payments answer 503")
    stripe_client = create_stripe_client(settings)
    if stripe_client is None:
        logger.warning("STRIPE_SECRET_KEY is not set: Stripe payments answer 503")
    app.state.providers = service.Providers(daraja=daraja, stripe=stripe_client)
    app.state.idempotency_keys = IdempotencyKeys(
        IdempotencyKey,
        ttl=timedelta(seconds=settings.idempotency_key_ttl),
        wait=settings.service_timeout + 3,
    )


async def _close_providers(app: FastAPI) -> None:
    if getattr(app.state, "daraja_http", None) is not None:
        await app.state.daraja_http.aclose()


# Messages sent per worker run, one at a time (see deliver_outbox).
OUTBOX_MESSAGES_PER_RUN = 100


async def deliver_outbox(app: FastAPI) -> int:
    """Tells the order service what payments became, until it acknowledges. One message
    per claim, oldest first: a batch claimed at once comes back in no particular order,
    and an order must hear "paid" before "refunded"."""
    settings: PaymentSettings = app.state.settings
    sender = orders.update_status_sender(app.state.services, settings.order_service_url)
    delivered = 0
    for _ in range(OUTBOX_MESSAGES_PER_RUN):
        sent = await deliver_due(
            app.state.sessionmaker,
            OutboxMessage,
            {orders.UPDATE_STATUS_TOPIC: sender},
            batch_size=1,
        )
        if not sent:
            break
        delivered += sent
    return delivered


def create_app(settings: PaymentSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        name="payment",
        title="Payment Service",
        description="M-Pesa (Daraja STK Push) and Stripe payments, webhooks, refunds.",
        settings=settings,
        routers=[router, webhook_router, admin_router, internal_router],
        database_url=settings.database_url,
        on_startup=[_open_providers],
        on_shutdown=[_close_providers],
        metrics_hooks=[OUTBOX_FIGURES],
        workers=[
            PeriodicWorker("payment-outbox", settings.outbox_interval, deliver_outbox),
            PeriodicWorker(
                "mpesa-reconciliation", settings.mpesa_reconcile_interval, service.reconcile_mpesa
            ),
            PeriodicWorker(
                "money-reconciliation",
                settings.reconciliation_interval,
                reconciliation.reconcile_money,
            ),
        ],
    )
