"""The gateway's app factory (`uvicorn --factory api_gateway.main:create_app`): the one
proxy route (routes.py), the merged API docs, CORS and the security headers."""

import time
from collections.abc import Callable
from functools import partial

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api_gateway import api_docs
from api_gateway.config import GatewaySettings, get_settings
from api_gateway.load_limits import upstream_limits
from api_gateway.response_cache import ResponseCache
from api_gateway.routes import PROXIED_METHODS, proxy
from api_gateway.security_headers import SecurityHeadersMiddleware
from api_gateway.state import GatewayState, close_gateway_state, open_gateway_state
from shared.app import create_app as create_service_app
from shared.state import state_of


def create_app(
    settings: GatewaySettings | None = None, *, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """`clock`: the user-status cache's and the response cache's (a test moves it instead
    of sleeping)."""
    settings = settings or get_settings()
    response_cache = (
        ResponseCache(
            max_entries=settings.gateway_cache_max_entries,
            max_bytes=settings.gateway_cache_max_bytes,
            max_age=settings.gateway_cache_max_age,
            clock=clock,
        )
        if settings.gateway_cache_enabled
        else None
    )
    app = create_service_app(
        name="gateway",
        title="API Gateway",
        description="The single entry point of the shop's API.",
        settings=settings,
        routers=[],
        state=partial(open_gateway_state, response_cache=response_cache),
        on_shutdown=[close_gateway_state],
        serve_metrics=settings.metrics_enabled,
        clock=clock,
        load_limits=upstream_limits(settings, response_cache),
    )
    app.router.add_route(
        "/api/{path:path}", proxy, methods=PROXIED_METHODS, include_in_schema=False
    )
    app.router.add_route("/api", proxy, methods=PROXIED_METHODS, include_in_schema=False)
    # The auth service's JWKS, where clients look for it.
    app.router.add_route(
        "/.well-known/jwks.json", proxy, methods=PROXIED_METHODS, include_in_schema=False
    )
    # The admin console's pages and assets (admin-console/), behind the same checks.
    app.router.add_route(
        "/admin/{path:path}", proxy, methods=PROXIED_METHODS, include_in_schema=False
    )
    app.router.add_route("/admin", proxy, methods=PROXIED_METHODS, include_in_schema=False)
    # /openapi.json, /docs and /redoc: the whole public API, merged from the services.
    api_docs.install(app, lambda request: state_of(request.app, GatewayState).api_docs)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[
            "X-Request-ID",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "Retry-After",
        ],
        max_age=600,
    )
    # The console sends a stricter policy of its own (admin_console/security_headers.py).
    app.add_middleware(
        SecurityHeadersMiddleware,
        skip_prefixes=("/admin",),
        own_policy_paths=api_docs.DOCS_PAGES,
    )
    return app
