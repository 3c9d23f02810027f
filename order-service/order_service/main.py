"""The order service's app factory (`uvicorn --factory order_service.main:create_app`)."""

from fastapi import FastAPI

from order_service.config import OrderSettings, get_settings
from order_service.metrics import OUTBOX_FIGURES
from order_service.orders import expire_unpaid_orders
from order_service.outbox import deliver_outbox
from order_service.placement import sweep_abandoned_placements
from order_service.routes import admin_router, internal_router, router
from order_service.state import open_state
from shared.app import StatusSourceFactory, UserTokenKeysFactory
from shared.app import create_app as create_service_app
from shared.workers import PeriodicWorker


def create_app(
    settings: OrderSettings | None = None,
    *,
    user_status_source: StatusSourceFactory | None = None,
    user_token_keys: UserTokenKeysFactory | None = None,
) -> FastAPI:
    """`user_status_source` and `user_token_keys` replace asking the auth service (tests)."""
    settings = settings or get_settings()
    return create_service_app(
        name="order",
        title="Order Service",
        description="Orders, checkout and the order lifecycle.",
        settings=settings,
        routers=[router, admin_router, internal_router],
        database_url=settings.database_url,
        state=open_state,
        user_status_source=user_status_source,
        user_token_keys=user_token_keys,
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
