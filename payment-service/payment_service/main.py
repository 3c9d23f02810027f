"""The payment service's app factory (`uvicorn --factory payment_service.main:create_app`)."""

from fastapi import FastAPI

from payment_service.config import PaymentSettings, get_settings
from payment_service.routes import internal_router, router
from shared.app import create_app as create_service_app


def create_app(settings: PaymentSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        name="payment",
        title="Payment Service",
        description="M-Pesa (Daraja STK Push) and Stripe payments, webhooks, refunds.",
        settings=settings,
        routers=[router, internal_router],
        database_url=settings.database_url,
    )
