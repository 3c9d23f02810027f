"""The cart service's app factory (`uvicorn --factory cart_service.main:create_app`)."""

from fastapi import FastAPI

from cart_service.carts import purge_expired_carts
from cart_service.config import CartSettings, get_settings
from cart_service.routes import internal_router, router
from cart_service.state import open_state
from shared.app import create_app as create_service_app
from shared.workers import PeriodicWorker


def create_app(settings: CartSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        name="cart",
        title="Cart Service",
        description="Shopping carts.",
        settings=settings,
        routers=[router, internal_router],
        database_url=settings.database_url,
        state=open_state,
        workers=[
            PeriodicWorker("purge-expired-carts", settings.purge_interval, purge_expired_carts)
        ],
    )
