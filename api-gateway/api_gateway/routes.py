"""The gateway's one route: every `/api/...` (and `/admin/...`) request, checked and
forwarded.

Per request, once the service's bound let it in (load_limits.py): resolve the route (404
for unknown and internal paths), limit the rate per client IP, answer from the cache of
anonymous reads when it can (response_cache.py), check the token and the user's current
status on protected routes (401/403 before any service sees the request), forward
(proxy.py).
"""

from starlette.requests import Request
from starlette.responses import Response

from api_gateway.client_ip import console_vouched_ip
from api_gateway.exceptions import TooManyRequests
from api_gateway.proxy import forward, read_body, upstream_headers
from api_gateway.routing import Access, Route, resolve
from api_gateway.state import GatewayState
from shared.auth import authenticate, bearer_token
from shared.client_address import client_ip, is_trusted
from shared.errors import Forbidden, NotFound, Unauthorized
from shared.state import state_of

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def proxy(request: Request) -> Response:
    state = state_of(request.app, GatewayState)
    settings = state.settings
    route = resolve(request.method, request.url.path)
    # The path as sent (still percent-encoded) must be as acceptable as the decoded one.
    # Who may call is decided on the decoded path (what the service will route on); the
    # path forwarded is the one sent, escapes kept (proxy.upstream_target).
    raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    sent_route = resolve(request.method, raw_path)
    if route is None or sent_route is None:
        raise NotFound("Route not found")

    peer = request.client.host if request.client else None
    vouched = console_vouched_ip(request, settings.internal_public_keys)
    trusted_peer = vouched is not None or (
        peer is not None and is_trusted(peer, state.trusted_proxies)
    )
    ip = vouched or client_ip(peer, request.headers.get("x-forwarded-for"), state.trusted_proxies)

    rate_headers: dict[str, str] = {}
    if state.rate_limiter is not None:
        result = await state.rate_limiter.hit(route.rate_class, ip)
        if result is not None:
            rate_headers = result.headers()
            if not result.allowed:
                raise TooManyRequests(headers=rate_headers)

    cache = state.response_cache
    if cache is not None:
        stored = cache.answer(request.scope)
        if stored is None:
            # Another request is fetching this answer: wait for it rather than ask again.
            stored = await cache.answer_after_fetch(request.scope, settings.upstream_timeout)
        if stored is not None:
            stored.headers.update(rate_headers)
            return stored
    try:
        response = await _checked_and_forwarded(request, state, route, sent_route, ip, trusted_peer)
    finally:
        if cache is not None:
            cache.fetched(request.scope)
    for name, value in rate_headers.items():
        response.headers[name] = value
    return response


async def _checked_and_forwarded(
    request: Request,
    state: GatewayState,
    route: Route,
    sent_route: Route,
    ip: str,
    trusted_peer: bool,
) -> Response:
    if route.access is not Access.PUBLIC:
        token = bearer_token(request)
        if token is None:
            raise Unauthorized("No token provided")
        user = await authenticate(token, keys=state.user_token_keys, user_status=state.user_status)
        if route.access is Access.ADMIN and not user.is_admin:
            raise Forbidden("Access denied. Admin only.")

    settings = state.settings
    body = await read_body(request, settings.max_body_size)
    cache = state.response_cache
    generation = cache.begin(request.scope) if cache is not None else 0
    response: Response | None = None
    try:
        response = await forward(
            request,
            sent_route,
            session=state.upstream,
            base_url=state.upstream_urls[route.upstream.service],
            body=body,
            headers=upstream_headers(request, ip, trusted_peer),
            timeout=settings.upstream_timeout,
        )
    finally:
        if cache is not None:
            cache.end(request.scope, response, generation)
    return response
