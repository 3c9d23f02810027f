"""Forwarding a request to its service.

Bodies go through byte for byte (the Stripe webhook signature is computed over
the raw bytes), hop-by-hop headers are dropped, `X-Forwarded-*` and
`X-Request-ID` added, any incoming internal-service token stripped. Responses
are streamed back; small ones with a known length are passed whole, which is
cheaper. A service that is down is a 503, one too slow a 504: never a 500,
never a hang.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import aiohttp
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from yarl import URL

from api_gateway.exceptions import GatewayTimeout, PayloadTooLarge
from api_gateway.routing import Route
from shared.errors import AppError, ServiceUnavailable
from shared.http_client import INTERNAL_TOKEN_HEADER
from shared.request_context import current_request_id

logger = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the gateway itself, whatever the client sent.
REPLACED_REQUEST_HEADERS = HOP_BY_HOP | {
    "host",
    "content-length",
    INTERNAL_TOKEN_HEADER.lower(),
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-real-ip",
}
REPLACED_RESPONSE_HEADERS = HOP_BY_HOP | {"date", "server", "x-request-id"}
# Characters kept as sent in a forwarded path and query (percent signs included: the
# client's own escapes go through unchanged); anything else is percent-encoded.
_PATH_SAFE = "/%!$&'()*+,;=:@"
_QUERY_SAFE = _PATH_SAFE + "?[]"
# Responses up to this size with a Content-Length are read whole rather than streamed.
SMALL_RESPONSE = 64 * 1024
STREAM_CHUNK = 16 * 1024


def _connection_tokens(headers: Mapping[str, str]) -> set[str]:
    return {token.strip().lower() for token in headers.get("connection", "").split(",") if token}


async def read_body(request: Request, max_size: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_size:
        raise PayloadTooLarge()
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_size:
                raise PayloadTooLarge()
            chunks.append(chunk)
    except ClientDisconnect:
        raise AppError("Client closed the request", status_code=400) from None
    return b"".join(chunks)


def upstream_headers(request: Request, client_ip: str, trusted_peer: bool) -> list[tuple[str, str]]:
    """As they came: a value that is not ASCII (`User-Agent: café`) is the service's to
    judge, not an encoding error here (UTF-8 goes through as UTF-8)."""
    drop = REPLACED_REQUEST_HEADERS | _connection_tokens(request.headers)
    headers = [
        (name, _header_text(value))
        for name, value in ((k.decode("latin-1"), v) for k, v in request.headers.raw)
        if name.lower() not in drop
    ]
    peer = request.client.host if request.client else client_ip
    incoming_forwarded = request.headers.get("x-forwarded-for") if trusted_peer else None
    forwarded_for = f"{incoming_forwarded}, {peer}" if incoming_forwarded else peer
    proto = (
        request.headers.get("x-forwarded-proto") if trusted_peer else None
    ) or request.url.scheme
    host = (
        request.headers.get("x-forwarded-host") if trusted_peer else None
    ) or request.headers.get("host", "")
    # Starlette decoded these as latin-1: the bytes that came, as text again.
    headers += [
        ("x-forwarded-for", _header_text(forwarded_for.encode("latin-1"))),
        ("x-forwarded-proto", _header_text(proto.encode("latin-1"))),
        ("x-forwarded-host", _header_text(host.encode("latin-1"))),
        ("x-real-ip", client_ip),
        ("x-request-id", current_request_id() or ""),
    ]
    return headers


def _header_text(value: bytes) -> str:
    """aiohttp sends header text as UTF-8: bytes that are UTF-8 go through unchanged."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def upstream_target(raw_path: str, query: bytes) -> str:
    """The path and query to send upstream, from the request's own percent-encoded bytes:
    a decoded path may hold control characters (`/api/products/%0E`) that no URL may carry,
    and re-encoding a decoded path could change what the service sees."""
    target = quote(raw_path.encode("latin-1"), safe=_PATH_SAFE)
    if query:
        target += "?" + quote(query, safe=_QUERY_SAFE)
    return target


async def forward(
    request: Request,
    route: Route,
    *,
    session: aiohttp.ClientSession,
    base_url: str,
    body: bytes,
    headers: list[tuple[str, str]],
    timeout: float,
) -> Response:
    """Sent with aiohttp itself (the connection pool the gateway holds, `state.upstream`),
    whose session keeps no cookies (`DummyCookieJar`): a jar shared by every user of the
    gateway would hand one user's cookies to the next."""
    url = base_url.rstrip("/") + upstream_target(
        route.upstream_path, request.scope.get("query_string", b"")
    )
    name = route.upstream.display_name
    try:
        async with asyncio.timeout(timeout):
            upstream = await session.request(
                request.method,
                URL(url, encoded=True),  # escaped already (upstream_target), sent as is
                headers=headers,
                data=body or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=min(timeout, 3.0), sock_read=timeout, connect=timeout
                ),
            )
    except aiohttp.ConnectionTimeoutError:
        raise _unavailable(route, name, "ConnectionTimeoutError") from None
    except (TimeoutError, aiohttp.ServerTimeoutError):
        logger.warning("upstream timed out", extra={"upstream": route.upstream.service})
        raise GatewayTimeout(f"{name} service timed out") from None
    except aiohttp.ClientError as exc:
        raise _unavailable(route, name, type(exc).__name__) from None

    drop = REPLACED_RESPONSE_HEADERS | _connection_tokens(upstream.headers)
    raw_headers = [
        (k.lower(), v) for k, v in upstream.raw_headers if k.decode("latin-1").lower() not in drop
    ]
    length = upstream.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) <= SMALL_RESPONSE:
        try:
            content = await upstream.read()
        except (aiohttp.ClientError, TimeoutError):
            raise ServiceUnavailable(f"{name} service unavailable") from None
        finally:
            upstream.release()
        response = Response(content=content, status_code=upstream.status)
        response.raw_headers = raw_headers
        return response

    response = StreamingResponse(
        _body_of(upstream),
        status_code=upstream.status,
        background=BackgroundTask(upstream.release),
    )
    response.raw_headers = raw_headers
    return response


async def _body_of(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.content.iter_chunked(STREAM_CHUNK):
            yield chunk
    finally:
        # Also when the client goes away mid-stream (the background task then never runs):
        # the upstream connection goes back to the pool rather than waiting for the GC.
        upstream.release()


def _unavailable(route: Route, name: str, reason: str) -> ServiceUnavailable:
    logger.warning(
        "upstream unavailable", extra={"upstream": route.upstream.service, "reason": reason}
    )
    return ServiceUnavailable(f"{name} service unavailable")
