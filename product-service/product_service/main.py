"""The product service's app factory (`uvicorn --factory product_service.main:create_app`)."""

from fastapi import FastAPI

from product_service.config import ProductSettings, get_settings
from product_service.routes import internal_router, router
from product_service.state import open_state
from shared.app import StatusSourceFactory, UserTokenKeysFactory
from shared.app import create_app as create_service_app


def create_app(
    settings: ProductSettings | None = None,
    *,
    user_status_source: StatusSourceFactory | None = None,
    user_token_keys: UserTokenKeysFactory | None = None,
) -> FastAPI:
    """`user_status_source` and `user_token_keys` default to asking the auth service
    (tests give their own)."""
    settings = settings or get_settings()
    return create_service_app(
        name="product",
        title="Product Service",
        description="Catalogue, stock and stock reservations.",
        settings=settings,
        routers=[router, internal_router],
        database_url=settings.database_url,
        state=open_state,
        user_status_source=user_status_source,
        user_token_keys=user_token_keys,
    )
