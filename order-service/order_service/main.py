"""The order service's app factory (`uvicorn --factory order_service.main:create_app`)."""

from fastapi import FastAPI

from order_service.config import OrderSettings, get_settings
from order_service.routes import internal_router, router
from shared.app import create_app as create_service_app


def create_app(settings: OrderSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        name="order",
        title="Order Service",
        description="Orders, checkout and the order lifecycle.",
        settings=settings,
        routers=[router, internal_router],
        database_url=settings.database_url,
    )
