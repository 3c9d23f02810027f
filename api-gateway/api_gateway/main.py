"""The gateway's app factory (`uvicorn --factory api_gateway.main:create_app`).

Per request: resolve the route (404 for unknown and internal paths), limit the
rate per client IP, check the token and the user's current status on protected
routes (401/403 before any service sees the request), forward.
"""

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from httpx_aiohttp import AiohttpTransport
from starlette.requests import Request
from starlette.responses import Response

from api_gateway import api_docs
from api_gateway.client_ip import client_ip, is_trusted
from api_gateway.config import GatewaySettings, get_settings
from api_gateway.proxy import forward, read_body, upstream_headers
from api_gateway.rate_limit import RateLimiter, make_storage
from api_gateway.routing import Access, RateClass, resolve
from api_gateway.security_headers import SecurityHeadersMiddleware
from shared.app import create_app as create_service_app
from shared.auth import authenticate, bearer_token
from shared.errors import AppError, Forbidden, NotFound, Unauthorized

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class TooManyRequests(AppError):
    status_code = 429
    message = "Too many requests, please try again later."


async def _start(app: FastAPI) -> None:
    settings: GatewaySettings = app.state.settings
    # The proxy's own connection pool, sized for the traffic of the whole system.
    app.state.upstream = AiohttpTransport(
        limits=httpx.Limits(max_connections=512, max_keepalive_connections=512)
    )
    app.state.rate_limiter = (
        RateLimiter(
            make_storage(settings.redis_url),
            {
                RateClass.DEFAULT: settings.rate_limit_default,
                RateClass.AUTH: settings.rate_limit_auth,
                RateClass.WEBHOOK: settings.rate_limit_webhook,
            },
        )
        if settings.rate_limit_enabled
        else None
    )
    app.state.trusted_proxies = settings.trusted_proxy_networks
    app.state.service_urls = settings.service_urls()
    await api_docs.open_api_docs(app, app.state.service_urls, settings.api_docs_cache_seconds)


async def _stop(app: FastAPI) -> None:
    await app.state.upstream.aclose()


async def proxy(request: Request) -> Response:
    state = request.app.state
    settings: GatewaySettings = state.settings
    route = resolve(request.method, request.url.path)
    # The path as sent (still percent-encoded) must be as acceptable as the decoded one.
    # Who may call is decided on the decoded path (what the service will route on); the
    # path forwarded is the one sent, escapes kept (proxy.upstream_target).
    raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    sent_route = resolve(request.method, raw_path)
    if route is None or sent_route is None:
        raise NotFound("Route not found")

    peer = request.client.host if request.client else None
    trusted_peer = peer is not None and is_trusted(peer, state.trusted_proxies)
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), state.trusted_proxies)

    rate_headers: dict[str, str] = {}
    if state.rate_limiter is not None:
        result = await state.rate_limiter.hit(route.rate_class, ip)
        if result is not None:
            rate_headers = result.headers()
            if not result.allowed:
                raise TooManyRequests(headers=rate_headers)

    if route.access is not Access.PUBLIC:
        token = bearer_token(request)
        if token is None:
            raise Unauthorized("No token provided")
        user = await authenticate(
            token, secret=settings.jwt_secret.get_secret_value(), user_status=state.user_status
        )
        if route.access is Access.ADMIN and not user.is_admin:
            raise Forbidden("Access denied. Admin only.")

    body = await read_body(request, settings.max_body_size)
    response = await forward(
        request,
        sent_route,
        transport=state.upstream,
        base_url=state.service_urls[route.upstream.service],
        body=body,
        headers=upstream_headers(request, ip, trusted_peer),
        timeout=settings.upstream_timeout,
    )
    for name, value in rate_headers.items():
        response.headers[name] = value
    return response


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = create_service_app(
        name="gateway",
        title="API Gateway",
        description="The single entry point of the shop's API.",
        settings=settings,
        routers=[],
        on_startup=[_start],
        on_shutdown=[_stop],
    )
    app.router.add_route(
        "/api/{path:path}", proxy, methods=PROXIED_METHODS, include_in_schema=False
    )
    app.router.add_route("/api", proxy, methods=PROXIED_METHODS, include_in_schema=False)
    # /openapi.json, /docs and /redoc: the whole public API, merged from the services.
    api_docs.install(app)
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
    app.add_middleware(SecurityHeadersMiddleware, skip_prefixes=("/docs", "/redoc"))
    return app
