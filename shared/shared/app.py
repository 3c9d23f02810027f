"""`create_app`: every service is built the same way.

It wires the request-id middleware (access log and request metrics), the error
handlers, `/health`, `/ready` and `/metrics`, tracing when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, and a lifespan that opens (and closes) the
database engine, the pooled client for calls to other services and the user
status cache.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from shared import tracing
from shared.auth import UserStatusCache, UserStatusSource, auth_service_status_source
from shared.db import create_engine, create_sessionmaker
from shared.errors import install_error_handlers
from shared.health import health_router
from shared.http_client import ServiceClient
from shared.logging import configure_logging
from shared.methods import HeadAsGetMiddleware
from shared.metrics import MetricsHook, metrics_router
from shared.request_context import RequestContextMiddleware
from shared.settings import ServiceSettings
from shared.text_guard import refuse_unstorable_text
from shared.workers import PeriodicWorker

Hook = Callable[[FastAPI], Awaitable[None]]
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


def _is_quiet(scope) -> bool:
    return scope.get("path") in QUIET_PATHS


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
    metrics_hooks: Sequence[MetricsHook] = (),
    description: str = "",
) -> FastAPI:
    """`name` is the service's short name (logs, internal tokens, traces); `title` its
    health name ("Auth Service"). `user_status_source` defaults to asking the auth
    service. `workers` run in the background while the app runs, unless
    `WORKERS_ENABLED=false` (tests run their jobs directly). `metrics_hooks` run before
    each `/metrics` scrape to set gauges that need a query (see shared.metrics)."""
    configure_logging(name, settings.log_level)
    tracing.configure_tracing(name)

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
        if app.state.engine is not None:
            tracing.instrument_engine(app.state.engine)
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
            tracing.flush()

    app = FastAPI(
        title=title,
        description=description,
        lifespan=lifespan,
        # FastAPI traces requests itself once tracing is on (shared.tracing); probes and
        # scrapes, several a second, are not worth a trace.
        telemetry={"exclude": _is_quiet},
        dependencies=[Depends(refuse_unstorable_text)],
    )
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(RequestContextMiddleware, quiet_paths=QUIET_PATHS)
    install_error_handlers(app)
    app.include_router(health_router(title))
    app.include_router(metrics_router(metrics_hooks))
    for router in routers:
        app.include_router(router)
    return app
