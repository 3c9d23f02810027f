"""`create_app`: every service is built the same way.

It wires the request-id middleware, the error handlers, `/health` and `/ready`,
and a lifespan that opens (and closes) the database engine, the pooled client
for calls to other services and the user status cache.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from shared.auth import UserStatusCache, UserStatusSource, auth_service_status_source
from shared.db import create_engine, create_sessionmaker
from shared.errors import install_error_handlers
from shared.health import health_router
from shared.http_client import ServiceClient
from shared.logging import configure_logging
from shared.request_context import RequestContextMiddleware
from shared.settings import ServiceSettings
from shared.workers import PeriodicWorker

Hook = Callable[[FastAPI], Awaitable[None]]
QUIET_PATHS = frozenset({"/health", "/ready"})


def create_app(
    *,
    name: str,
    title: str,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    database_url: str | None = None,
    user_status_source: Callable[[FastAPI], UserStatusSource] | None = None,
    user_status_ttl: float | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    workers: Sequence[PeriodicWorker] = (),
    description: str = "",
) -> FastAPI:
    """`name` is the service's short name (logs, internal tokens); `title` its health name
    ("Auth Service"). `user_status_source` defaults to asking the auth service.
    `workers` run in the background while the app runs, unless `WORKERS_ENABLED=false`
    (tests run their jobs directly)."""
    configure_logging(name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = (
            create_engine(
                database_url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
            )
            if database_url
            else None
        )
        app.state.sessionmaker = create_sessionmaker(app.state.engine) if database_url else None
        app.state.services = ServiceClient(
            service=name,
            internal_secret=settings.internal_service_secret.get_secret_value(),
            timeout=settings.service_timeout,
        )
        source = (
            user_status_source(app)
            if user_status_source
            else auth_service_status_source(app.state.services, settings.auth_service_url)
        )
        ttl = settings.user_status_ttl if user_status_ttl is None else user_status_ttl
        app.state.user_status = UserStatusCache(source, ttl=ttl)
        running: list[PeriodicWorker] = []
        try:
            for hook in on_startup:
                await hook(app)
            if settings.workers_enabled:
                for worker in workers:
                    worker.start(app)
                    running.append(worker)
            yield
        finally:
            # Stop taking new background work first, then finish what is in flight.
            for worker in running:
                await worker.stop()
            for hook in reversed(on_shutdown):
                await hook(app)
            await app.state.services.aclose()
            if app.state.engine is not None:
                await app.state.engine.dispose()

    app = FastAPI(title=title, description=description, lifespan=lifespan)
    app.add_middleware(RequestContextMiddleware, quiet_paths=QUIET_PATHS)
    install_error_handlers(app)
    app.include_router(health_router(title))
    for router in routers:
        app.include_router(router)
    return app
