"""The gateway's bounds under overload (shared.load_shedding): one per service it forwards
to, so that a slow service takes only its own slots, and a request beyond a service's
bound and line is refused (503, Retry-After) before the gateway spends anything on it:
no token check, no log line, no connection upstream. The gateway's own routes (/health,
the API docs) are cheap and not bounded, nor are the reads its cache answers
(response_cache.py): they never reach the service."""

from starlette.types import Scope

from api_gateway.config import GatewaySettings
from api_gateway.response_cache import ResponseCache
from api_gateway.routing import UPSTREAMS, resolve
from shared.load_shedding import ConcurrencyLimiter, LimiterFor


def upstream_limits(
    settings: GatewaySettings, response_cache: ResponseCache | None = None
) -> LimiterFor:
    limiters = {
        upstream.service: ConcurrencyLimiter(
            settings.upstream_max_concurrency,
            settings.upstream_max_queue,
            settings.max_queue_wait,
            name=upstream.service,
            refusal=f"{upstream.display_name} service busy, please retry shortly",
        )
        for upstream in UPSTREAMS
    }

    def limiter_for(scope: Scope) -> ConcurrencyLimiter | None:
        route = resolve(scope["method"], scope["path"])
        if route is None or (response_cache is not None and response_cache.would_answer(scope)):
            return None
        return limiters[route.upstream.service]

    return limiter_for
