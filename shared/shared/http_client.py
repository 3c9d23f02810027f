"""The one pooled HTTP client a service uses to call its neighbours.

httpx API on the aiohttp transport (`httpx-aiohttp`): httpx's own connection
pool degrades badly under concurrency (encode/httpx#3215), aiohttp's does not.
Every call carries the current `X-Request-ID`; internal calls also carry a
short-lived internal token, signed with this service's own key, for the service called.
The client (and with it aiohttp, ~4 MiB) is made at a service's first call: the auth
service never makes one.
"""

import functools
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.request_context import current_request_id
from shared.tokens import issue_internal_token

if TYPE_CHECKING:
    import httpx

INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 (a header name, not a secret)
# Reuse an internal token for this long (its life is 60 s).
_TOKEN_REUSE_SECONDS = 30


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default (certifi's CA bundle), made once a process and shared by its
    clients: each made its own, ~1 MiB of parsed certificates apiece."""
    import httpx

    return httpx.create_ssl_context()


def create_http_client(
    *,
    timeout: float,
    connect_timeout: float | None = None,
    max_connections: int = 200,
    transport: "httpx.AsyncBaseTransport | None" = None,
) -> "httpx.AsyncClient":
    import httpx
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        transport=transport or AiohttpTransport(limits=limits, verify=tls_context()),
        timeout=httpx.Timeout(timeout, connect=connect_timeout or min(timeout, 3.0)),
        limits=limits,
        follow_redirects=False,
    )


class ServiceClient:
    """Calls to other services of this system."""

    def __init__(
        self,
        *,
        service: str,
        private_key: Ed25519PrivateKey,
        audiences: Mapping[str, str],
        timeout: float,
        transport: "httpx.AsyncBaseTransport | None" = None,
    ) -> None:
        """`service` is this service's name (the tokens' `sub`), `private_key` its own key;
        `audiences` maps where each neighbour is (its base URL) to its name."""
        self.service = service
        self._private_key = private_key
        self._audiences = {url.rstrip("/"): name for url, name in audiences.items()}
        self._timeout = timeout
        self._transport = transport
        self._http: httpx.AsyncClient | None = None  # made at the first call
        self._tokens: dict[str, tuple[str, float]] = {}

    def audience_of(self, url: str) -> str:
        """The name of the service `url` belongs to."""
        for base, name in self._audiences.items():
            if url == base or url.startswith(base + "/"):
                return name
        raise ValueError(f"{url} is no service of this system (an internal call must name one)")

    def internal_token(self, audience: str) -> str:
        now = time.monotonic()
        token, made_at = self._tokens.get(audience, ("", 0.0))
        if not token or now - made_at > _TOKEN_REUSE_SECONDS:
            token = issue_internal_token(
                service=self.service, audience=audience, private_key=self._private_key
            )
            self._tokens[audience] = (token, now)
        return token

    async def request(
        self,
        method: str,
        url: str,
        *,
        internal: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> "httpx.Response":
        """Raises httpx.TransportError (connect, timeout) for the caller to map to a 503."""
        outgoing = dict(headers or {})
        request_id = current_request_id()
        if request_id:
            outgoing["X-Request-ID"] = request_id
        if internal:
            outgoing[INTERNAL_TOKEN_HEADER] = self.internal_token(self.audience_of(url))
        if self._http is None:
            self._http = create_http_client(timeout=self._timeout, transport=self._transport)
        return await self._http.request(method, url, headers=outgoing, **kwargs)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()


def json_object(response: "httpx.Response") -> dict[str, Any] | None:
    """The response's JSON object; None when the body is not one (an HTML error page, a
    list, nothing): an odd answer is a refusal to handle, not a crash."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
