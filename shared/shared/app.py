"""`create_app`: every service is built the same way.

It wires the request-id middleware (access log and request metrics), the error
handlers, `/health`, `/ready` and `/metrics`, tracing when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, and a lifespan that opens what the service
holds, typed (shared.state): the database engine and sessionmaker, the pooled client
for calls to other services, the auth service's public keys (fetched in the background
from its JWKS, shared.user_token_keys) and the user status cache, plus whatever the service's
own `state` factory adds (clients of its neighbours, payment providers). It closes
them again at shutdown, after the workers have stopped.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.types import Scope

from shared import tracing
from shared.auth_client import auth_service_jwks, auth_service_status_source
from shared.errors import install_error_handlers
from shared.health import health_router
from shared.http_client import ServiceClient
from shared.load_shedding import (
    ConcurrencyLimiter,
    ConcurrencyLimitMiddleware,
    LimiterFor,
    one_limiter,
)
from shared.logging import configure_logging
from shared.methods import HeadAsGetMiddleware
from shared.metrics import MetricsHook, metrics_router
from shared.openapi import install_openapi
from shared.read_retry import RetryReadOnLostConnection
from shared.request_context import RequestContextMiddleware
from shared.settings import ServiceSettings
from shared.state import DatabaseState, ServiceState, state_of
from shared.text_guard import refuse_unstorable_text
from shared.user_status import UserStatusCache, UserStatusSource
from shared.user_token_keys import UserTokenKeys
from shared.workers import PeriodicWorker, runs_periodic_workers

# Given the service's state: startup and shutdown work (an admin to create, a client to close).
Hook = Callable[[Any], Awaitable[None]]
# Builds the service's own state from the base every service gets (ServiceState, or
# DatabaseState with a database).
StateFactory = Callable[[Any], Awaitable[ServiceState[Any]]]
# Where the user status cache asks: given the sessionmaker (None without a database).
StatusSourceFactory = Callable[[Any], UserStatusSource]
# The keys user tokens are verified with, given the settings (the auth service: its own).
UserTokenKeysFactory = Callable[[Any], UserTokenKeys]
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})

logger = logging.getLogger(__name__)


def _is_quiet(scope: Scope) -> bool:
    return scope.get("path") in QUIET_PATHS


def _state(request: Request) -> ServiceState[Any]:
    return state_of(request.app, ServiceState)


async def _same(base: ServiceState[Any]) -> ServiceState[Any]:
    return base


def create_app(
    *,
    name: str,
    title: str,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    database_url: str | None = None,
    state: StateFactory = _same,
    user_status_source: StatusSourceFactory | None = None,
    user_status_ttl: float | None = None,
    user_token_keys: UserTokenKeysFactory | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    workers: Sequence[PeriodicWorker[Any]] = (),
    metrics_hooks: Sequence[MetricsHook] = (),
    serve_metrics: bool = True,
    description: str = "",
    clock: Callable[[], float] = time.monotonic,
    load_limits: LimiterFor | None = None,
) -> FastAPI:
    """`name` is the service's short name (logs, internal tokens, traces); `title` its
    health name ("Auth Service"). `state` builds the service's state from the base one
    (the base itself by default). `user_status_source` defaults to asking the auth
    service, `user_token_keys` to its JWKS. `workers` run in the background while the
    app runs, unless `WORKERS_ENABLED=false` (tests run their jobs directly). Hooks,
    workers and scrape hooks (`metrics_hooks`, see shared.metrics) are all given the
    service's state. `serve_metrics=False` leaves `/metrics` out (a port the world
    reaches). `clock` (monotonic seconds) is the user-status cache's: a test moves it
    (FakeClock). `load_limits` bounds the requests worked on at once
    (shared.load_shedding); by default one bound from the settings for all but the
    probes."""
    configure_logging(name, settings.log_level)
    tracing.configure_tracing(name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, sessionmaker, read_sessionmaker, hot_path = None, None, None, None
        if database_url:
            # Here: only a service with a database loads SQLAlchemy (~20 MiB a process).
            from shared.db import (
                HotPath,
                create_engine,
                create_read_sessionmaker,
                create_sessionmaker,
            )

            engine = create_engine(
                database_url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                pre_ping=settings.db_pool_pre_ping,
            )
            tracing.instrument_engine(engine)
            sessionmaker = create_sessionmaker(engine)
            read_sessionmaker = create_read_sessionmaker(engine)
            hot_path = HotPath(database_url, max_size=settings.db_hot_pool_size)
        services = ServiceClient(
            service=name,
            private_key=settings.internal_private_key,
            audiences=settings.service_audiences(),
            timeout=settings.service_timeout,
        )
        token_keys = (
            user_token_keys(settings)
            if user_token_keys
            else UserTokenKeys(
                source=auth_service_jwks(services, settings.auth_service_url),
                refetch_interval=settings.jwks_refetch_interval,
            )
        )
        # In the background: the auth service may come up after this one; then again every
        # JWKS_REFRESH_INTERVAL in every process (not a worker: WORKERS_ENABLED=false on a
        # replica must not leave it with a key the auth service no longer publishes).
        loading_keys = asyncio.create_task(token_keys.keep_fresh(settings.jwks_refresh_interval))
        source = (
            user_status_source(sessionmaker)
            if user_status_source
            else auth_service_status_source(services, settings.auth_service_url)
        )
        ttl = settings.user_status_ttl if user_status_ttl is None else user_status_ttl
        user_status = UserStatusCache(source, ttl=ttl, clock=clock)
        base: ServiceState[Any] = (
            DatabaseState(
                settings=settings,
                services=services,
                user_status=user_status,
                user_token_keys=token_keys,
                engine=engine,
                sessionmaker=sessionmaker,
                read_sessionmaker=read_sessionmaker,
                hot_path=hot_path,
            )
            if engine is not None
            and sessionmaker is not None
            and read_sessionmaker is not None
            and hot_path is not None
            else ServiceState(
                settings=settings,
                services=services,
                user_status=user_status,
                user_token_keys=token_keys,
            )
        )
        running: list[PeriodicWorker[Any]] = []
        service_state: ServiceState[Any] | None = None
        try:
            service_state = await state(base)
            app.state.service = service_state
            for hook in on_startup:
                await hook(service_state)
            # One process of the service runs them (WEB_CONCURRENCY: worker 0).
            if settings.workers_enabled and workers:
                if runs_periodic_workers():
                    for worker in workers:
                        worker.start(service_state)
                        running.append(worker)
                    logger.info(
                        "periodic workers started",
                        extra={"workers": [worker.name for worker in workers]},
                    )
                else:
                    logger.info("periodic workers run in worker process 0, not here")
            yield
        finally:
            # Stop taking new background work first, then finish what is in flight.
            for worker in running:
                await worker.stop()
            if service_state is not None:
                for hook in reversed(on_shutdown):
                    await hook(service_state)
            loading_keys.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading_keys
            await services.aclose()
            if hot_path is not None:
                await hot_path.close()
            if engine is not None:
                await engine.dispose()
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
    app.add_middleware(RetryReadOnLostConnection)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(RequestContextMiddleware, quiet_paths=QUIET_PATHS)
    # Outermost of the service's own: a refusal under overload costs next to nothing.
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        limiter_for=load_limits
        or one_limiter(
            ConcurrencyLimiter(
                settings.max_concurrent_requests,
                settings.max_queued_requests,
                settings.max_queue_wait,
            ),
            QUIET_PATHS,
        ),
    )
    install_error_handlers(app, database=bool(database_url))
    app.include_router(health_router(title))
    if serve_metrics:
        app.include_router(metrics_router(_state, metrics_hooks))
    for router in routers:
        app.include_router(router)
    install_openapi(app)
    return app
