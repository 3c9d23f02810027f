"""The payment service's app factory (`uvicorn --factory payment_service.main:create_app`)."""

from fastapi import FastAPI

from payment_service import reconciliation
from payment_service.config import PaymentSettings, get_settings
from payment_service.metrics import OUTBOX_FIGURES
from payment_service.mpesa_status_poller import poll
from payment_service.outbox import deliver_outbox
from payment_service.routes import admin_router, router, webhook_router
from payment_service.state import close_state, open_state
from shared.app import create_app as create_service_app
from shared.workers import PeriodicWorker


def create_app(settings: PaymentSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        name="payment",
        title="Payment Service",
        description="M-Pesa (Daraja STK Push) and Stripe payments, webhooks, refunds.",
        settings=settings,
        routers=[router, webhook_router, admin_router],
        database_url=settings.database_url,
        state=open_state,
        on_shutdown=[close_state],
        metrics_hooks=[OUTBOX_FIGURES],
        workers=[
            PeriodicWorker("payment-outbox", settings.outbox_interval, deliver_outbox),
            PeriodicWorker("mpesa-status-poller", settings.mpesa_reconcile_interval, poll),
            PeriodicWorker(
                "money-reconciliation",
                settings.reconciliation_interval,
                reconciliation.reconcile_money,
            ),
        ],
    )
