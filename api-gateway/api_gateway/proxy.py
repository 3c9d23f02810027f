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
from collections.abc import Mapping
from urllib.parse import quote

import httpx
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

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


def upstream_headers(
    request: Request, client_ip: str, trusted_peer: bool
) -> list[tuple[bytes, bytes]]:
    """As bytes, as they came: a value that is not ASCII (`User-Agent: café`) is the
    service's to judge, not an encoding error here."""
    drop = REPLACED_REQUEST_HEADERS | _connection_tokens(request.headers)
    headers = [(k, v) for k, v in request.headers.raw if k.decode("latin-1").lower() not in drop]
    peer = request.client.host if request.client else client_ip
    incoming_forwarded = request.headers.get("x-forwarded-for") if trusted_peer else None
    forwarded_for = f"{incoming_forwarded}, {peer}" if incoming_forwarded else peer
    proto = (
        request.headers.get("x-forwarded-proto") if trusted_peer else None
    ) or request.url.scheme
    host = (
        request.headers.get("x-forwarded-host") if trusted_peer else None
    ) or request.headers.get("host", "")
    added = [
        ("x-forwarded-for", forwarded_for),
        ("x-forwarded-proto", proto),
        ("x-forwarded-host", host),
        ("x-real-ip", client_ip),
        ("x-request-id", current_request_id() or ""),
    ]
    # Starlette decoded these as latin-1: encoding them back gives the bytes that came.
    headers += [(name.encode(), value.encode("latin-1")) for name, value in added]
    return headers


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
    transport: httpx.AsyncBaseTransport,
    base_url: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    timeout: float,
) -> Response:
    """Sends through the transport itself, not an `httpx.AsyncClient`: a client keeps a
    cookie jar, and a jar shared by every user of the gateway would hand one user's
    cookies to the next. It is also cheaper."""
    url = base_url.rstrip("/") + upstream_target(
        route.upstream_path, request.scope.get("query_string", b"")
    )
    name = route.upstream.display_name
    outgoing = httpx.Request(
        request.method,
        url,
        headers=headers,
        content=body,
        extensions={
            "timeout": {
                "connect": min(timeout, 3.0),
                "read": timeout,
                "write": timeout,
                "pool": timeout,
            }
        },
    )
    try:
        async with asyncio.timeout(timeout):
            upstream = await transport.handle_async_request(outgoing)
    except (TimeoutError, httpx.ReadTimeout):
        logger.warning("upstream timed out", extra={"upstream": route.upstream.service})
        raise GatewayTimeout(f"{name} service timed out") from None
    except httpx.TransportError as exc:
        logger.warning(
            "upstream unavailable",
            extra={"upstream": route.upstream.service, "reason": type(exc).__name__},
        )
        raise ServiceUnavailable(f"{name} service unavailable") from None

    drop = REPLACED_RESPONSE_HEADERS | _connection_tokens(upstream.headers)
    raw_headers = [
        (k.lower(), v) for k, v in upstream.headers.raw if k.decode("latin-1").lower() not in drop
    ]
    length = upstream.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) <= SMALL_RESPONSE:
        try:
            content = await upstream.aread()
        except httpx.TransportError:
            raise ServiceUnavailable(f"{name} service unavailable") from None
        finally:
            await upstream.aclose()
        response = Response(content=content, status_code=upstream.status_code)
        response.raw_headers = raw_headers
        return response

    response = StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        background=BackgroundTask(upstream.aclose),
    )
    response.raw_headers = raw_headers
    return response
