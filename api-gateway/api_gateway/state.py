"""What the running gateway holds (shared.state): no database; the proxy's own connection
pool, the rate limiter, the cache of anonymous reads, who may set X-Forwarded-For, where
each service is, and the merged API docs."""

from dataclasses import dataclass

import aiohttp

from api_gateway.api_docs import ApiDocs, http_fetch
from api_gateway.config import GatewaySettings
from api_gateway.rate_limit import RateLimiter, make_storage
from api_gateway.response_cache import ResponseCache
from api_gateway.routing import RateClass
from shared import tracing
from shared.client_address import Network
from shared.state import ServiceState

# The proxy's own connection pool, sized for the traffic of the whole system.
UPSTREAM_CONNECTIONS = 512
# An idle connection to a service is closed by the gateway before the service closes it
# (uvicorn: after 5 s), never reused in the instant the service drops it.
UPSTREAM_KEEPALIVE_SECONDS = 4.0


@dataclass(frozen=True, kw_only=True)
class GatewayState(ServiceState[GatewaySettings]):
    upstream: aiohttp.ClientSession
    rate_limiter: RateLimiter | None  # None: RATE_LIMIT_ENABLED=false
    response_cache: ResponseCache | None  # None: GATEWAY_CACHE_ENABLED=false
    trusted_proxies: list[Network]
    service_urls: dict[str, str]
    # Where the proxy forwards: the services, and the admin console (not in the API docs).
    upstream_urls: dict[str, str]
    api_docs: ApiDocs


async def open_gateway_state(
    base: ServiceState[GatewaySettings], response_cache: ResponseCache | None = None
) -> GatewayState:
    """`response_cache`: made with the app (the load limiter asks it too)."""
    settings = base.settings
    service_urls = settings.service_urls()
    rate_limiter = (
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
    return GatewayState(
        **base.base(),
        upstream=aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=UPSTREAM_CONNECTIONS, keepalive_timeout=UPSTREAM_KEEPALIVE_SECONDS
            ),
            # One session for every user: no cookies kept from one response to the next.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trace_configs=tracing.aiohttp_trace_configs(),  # only with tracing on
        ),
        rate_limiter=rate_limiter,
        response_cache=response_cache,
        trusted_proxies=settings.trusted_proxy_networks,
        service_urls=service_urls,
        upstream_urls={**service_urls, "console": settings.admin_console_url},
        api_docs=ApiDocs(service_urls, http_fetch(base.services), settings.api_docs_cache_seconds),
    )


async def close_gateway_state(state: GatewayState) -> None:
    await state.upstream.close()
