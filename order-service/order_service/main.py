"""The order service's app factory (`uvicorn --factory order_service.main:create_app`)."""

from collections.abc import Callable
from datetime import timedelta

from fastapi import FastAPI

from order_service.clients import CartClient, ProductClient
from order_service.config import OrderSettings, get_settings
from order_service.messages import deliver_outbox
from order_service.metrics import OUTBOX_FIGURES
from order_service.models import IdempotencyKey
from order_service.placement import sweep_abandoned_placements
from order_service.routes import admin_router, internal_router, router
from order_service.service import expire_unpaid_orders
from shared.app import create_app as create_service_app
from shared.auth import UserStatusSource
from shared.idempotency import IdempotencyKeys
from shared.workers import PeriodicWorker


async def _neighbours(app: FastAPI) -> None:
    settings: OrderSettings = app.state.settings
    app.state.products = ProductClient(app.state.services, settings.product_service_url)
    app.state.carts = CartClient(app.state.services, settings.cart_service_url)
    app.state.idempotency_keys = IdempotencyKeys(
        IdempotencyKey,
        ttl=timedelta(seconds=settings.idempotency_key_ttl),
        wait=settings.service_timeout + 3,
    )


def create_app(
    settings: OrderSettings | None = None,
    *,
    user_status_source: Callable[[FastAPI], UserStatusSource] | None = None,
) -> FastAPI:
    """`user_status_source` replaces the auth service lookup (tests)."""
    settings = settings or get_settings()
    return create_service_app(
        name="order",
        title="Order Service",
        description="Orders, checkout and the order lifecycle.",
        settings=settings,
        routers=[router, admin_router, internal_router],
        database_url=settings.database_url,
        user_status_source=user_status_source,
        on_startup=[_neighbours],
        metrics_hooks=[OUTBOX_FIGURES],
        workers=[
            PeriodicWorker("order-outbox", settings.outbox_interval, deliver_outbox),
            PeriodicWorker("order-expiry", settings.order_expiry_interval, expire_unpaid_orders),
            PeriodicWorker(
                "order-placement-sweeper",
                settings.order_sweep_interval,
                sweep_abandoned_placements,
            ),
        ],
    )
