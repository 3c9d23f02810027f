"""A small shared cache of anonymous reads (RFC 9111), in the gateway's memory.

Stored: the `200` answer to a `GET` (or `HEAD`, which the gateway forwards as a `GET`)
on a public route, asked without `Authorization` and without `Cookie`, that its service
marked `Cache-Control: public, max-age=N` (or `s-maxage`) with 0 < N <= the ceiling
(GATEWAY_CACHE_MAX_AGE), whole in memory (not streamed), without `Set-Cookie`, and
varying on nothing but `Accept-Encoding` (one variant kept) and the credentials a stored
request never has (`Authorization`, `Cookie`). The key is the service and the path and
query as sent.

A hit is answered from here, with `Age` and the stored `ETag` and `Cache-Control`, or
`304` when `If-None-Match` names the stored tag: no body read, no headers built for the
service, no connection to it (routes.py). A request that says `Cache-Control: no-cache`
(a reload) or `no-store` goes to the service. When a stored answer expires, the first
request for it fetches it again and those that come meanwhile wait for that one (the
service sees one request per answer and max-age, not one per waiting client).

An unsafe request (POST, PUT, PATCH, DELETE) forwarded to a service drops every entry of
that service, before it is sent and again once it is answered (RFC 9111 §4.4): the next
read sees the change. An answer fetched while such a request was under way is not
stored (a generation per service), so it cannot bring the old state back. Changes made
without the gateway (stock taken by orders through internal calls) show after at most N
seconds.

Bounded in entries and in bytes of bodies, least recently used out first. One per
gateway process.
"""

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Scope

from api_gateway.routing import Access, resolve
from shared.http_cache import cache_directives, etag_matches, seconds

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CACHED_METHODS = frozenset({"GET", "HEAD"})
# A stored request never carries these, nor does any request served from here.
_CREDENTIALS = frozenset({"authorization", "cookie"})
_VARY_ALLOWED = _CREDENTIALS | {"accept-encoding"}
# Sent with a 304 (RFC 9110 §15.4.5), of the stored answer's headers.
_NOT_MODIFIED_HEADERS = frozenset({b"etag", b"cache-control", b"vary", b"expires"})

# The service, the path as sent, the query as sent.
CacheKey = tuple[str, bytes, bytes]


@dataclass(frozen=True)
class _Request:
    key: CacheKey
    service: str
    accept_encoding: bytes
    if_none_match: str | None
    may_use_stored: bool  # not a reload (`Cache-Control: no-cache`)
    may_store: bool  # not `Cache-Control: no-store`


@dataclass(frozen=True)
class Entry:
    body: bytes
    headers: list[tuple[bytes, bytes]]
    etag: str | None
    stored_at: float
    initial_age: int
    max_age: int
    # The request's Accept-Encoding when the answer varies on it, else None.
    accept_encoding: bytes | None

    def age(self, now: float) -> int:
        return self.initial_age + int(now - self.stored_at)

    def fresh(self, now: float) -> bool:
        return self.initial_age + (now - self.stored_at) < self.max_age


def _cacheable_request(scope: Scope) -> _Request | None:
    if scope["method"] not in CACHED_METHODS:
        return None
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    route = resolve("GET", raw_path.decode("latin-1"))
    if route is None or route.access is not Access.PUBLIC:
        return None
    accept_encoding = b""
    if_none_match: str | None = None
    request_directives: dict[str, str | None] = {}
    for name, value in scope["headers"]:
        if name in (b"authorization", b"cookie"):
            return None
        if name == b"accept-encoding":
            accept_encoding = value
        elif name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name in (b"cache-control", b"pragma"):
            request_directives |= cache_directives(value.decode("latin-1"))
    no_store = "no-store" in request_directives
    return _Request(
        key=(route.upstream.service, raw_path, scope.get("query_string", b"")),
        service=route.upstream.service,
        accept_encoding=accept_encoding,
        if_none_match=if_none_match,
        may_use_stored=not (no_store or "no-cache" in request_directives),
        may_store=not no_store,
    )


class ResponseCache:
    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        max_age: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_age = max_age  # the ceiling: longer-lived answers are not stored
        self.clock = clock
        self.bytes = 0
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._generations: dict[str, int] = {}
        # The answers being fetched, by key: the future the leading request's scope sets.
        self._fetching: dict[CacheKey, tuple[asyncio.Future[None], Scope]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _fresh(self, request: _Request) -> Entry | None:
        entry = self._entries.get(request.key)
        if entry is None or not entry.fresh(self.clock()):
            return None  # a stale one stays until replaced: its key is worth one fetch
        if entry.accept_encoding is not None and entry.accept_encoding != request.accept_encoding:
            return None
        return entry

    def would_answer(self, scope: Scope) -> bool:
        """Whether this request would be answered from here now (the load limiter lets
        such requests by without a slot)."""
        request = _cacheable_request(scope)
        return request is not None and request.may_use_stored and self._fresh(request) is not None

    def answer(self, scope: Scope) -> Response | None:
        """The stored answer for this request (200, or 304 for a matching If-None-Match),
        or None: then forward it."""
        request = _cacheable_request(scope)
        if request is None or not request.may_use_stored:
            return None
        entry = self._fresh(request)
        if entry is None:
            return None
        self._entries.move_to_end(request.key)
        age = (b"age", str(entry.age(self.clock())).encode())
        if etag_matches(request.if_none_match, entry.etag):
            response = Response(status_code=304)
            response.raw_headers = [
                *((k, v) for k, v in entry.headers if k in _NOT_MODIFIED_HEADERS),
                age,
            ]
            return response
        response = Response(entry.body)
        response.raw_headers = [*entry.headers, age]
        return response

    async def answer_after_fetch(self, scope: Scope, timeout: float) -> Response | None:
        """A miss on a stale entry: when another request is already fetching this answer
        (the entry just expired, and every client asks at once), wait for it and answer
        what it stored,
        rather than send the service one request per client. None: forward this one
        (then it leads: call `fetched` once it is answered, whatever happened)."""
        request = _cacheable_request(scope)
        if request is None or not request.may_use_stored or request.key not in self._entries:
            return None  # only what was stored (and is stale now) is fetched once for all
        fetching = self._fetching.get(request.key)
        if fetching is None:
            future = asyncio.get_running_loop().create_future()
            self._fetching[request.key] = (future, scope)
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(fetching[0])
        return self.answer(scope)  # None when it was not stored: forward this one too

    def fetched(self, scope: Scope) -> None:
        """The request that led the fetch of its answer is done: its waiters go on."""
        request = _cacheable_request(scope)
        if request is None:
            return
        fetching = self._fetching.get(request.key)
        if fetching is not None and fetching[1] is scope:
            del self._fetching[request.key]
            if not fetching[0].done():
                fetching[0].set_result(None)

    # Around a forwarded request: `begin` before it is sent (it returns the generation to
    # hand to `end`), `end` once it is answered (None: it failed, 503 or 504).

    def begin(self, scope: Scope) -> int:
        service = self._service_of(scope)
        if service is None:
            return 0
        if scope["method"] not in SAFE_METHODS:
            self.invalidate(service)
        return self._generations.get(service, 0)

    def end(self, scope: Scope, response: Response | None, generation: int) -> None:
        if scope["method"] not in SAFE_METHODS:
            # Even a failed one: the service may have made the change and then been slow.
            service = self._service_of(scope)
            if service is not None:
                self.invalidate(service)
            return
        request = _cacheable_request(scope)
        if response is None or request is None or not request.may_store:
            return
        if self._generations.get(request.service, 0) != generation:
            return  # a write to the service was under way: this answer may be the old state
        entry = self._storable(request, response)
        if entry is not None:
            self._put(request.key, entry)
        else:
            self._drop(request.key)  # the stale one: its key no longer makes stored answers

    def invalidate(self, service: str) -> None:
        """Every entry of the service out, and answers fetched before now not stored."""
        self._generations[service] = self._generations.get(service, 0) + 1
        for key in [key for key in self._entries if key[0] == service]:
            self._drop(key)

    @staticmethod
    def _service_of(scope: Scope) -> str | None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        route = resolve("GET", raw_path.decode("latin-1"))
        return route.upstream.service if route is not None else None

    def _storable(self, request: _Request, response: Response) -> Entry | None:
        if response.status_code != 200 or type(response) is not Response:
            return None  # streamed answers (large ones) are not held whole
        body = bytes(response.body)
        if len(body) > self.max_bytes:
            return None
        cache_control: str | None = None
        vary: list[str] = []
        etag: str | None = None
        initial_age = 0
        headers: list[tuple[bytes, bytes]] = []
        for name, value in response.raw_headers:
            if name == b"set-cookie":
                return None
            if name == b"cache-control":
                cache_control = value.decode("latin-1")
            elif name == b"vary":
                vary += [v.strip().lower() for v in value.decode("latin-1").split(",")]
            elif name == b"etag":
                etag = value.decode("latin-1")
            elif name == b"age":
                initial_age = seconds(value.decode("latin-1").strip()) or 0
                continue  # ours is sent instead
            headers.append((name, value))
        directives = cache_directives(cache_control)
        if "public" not in directives or any(
            d in directives for d in ("private", "no-store", "no-cache")
        ):
            return None
        max_age = seconds(directives.get("s-maxage", directives.get("max-age")))
        if max_age is None or not 0 < max_age <= self.max_age or initial_age >= max_age:
            return None
        if any(field not in _VARY_ALLOWED for field in vary if field):
            return None
        return Entry(
            body=body,
            headers=headers,
            etag=etag,
            stored_at=self.clock(),
            initial_age=initial_age,
            max_age=max_age,
            accept_encoding=request.accept_encoding if "accept-encoding" in vary else None,
        )

    def _put(self, key: CacheKey, entry: Entry) -> None:
        self._drop(key)
        self._entries[key] = entry
        self.bytes += len(entry.body)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry.body)
