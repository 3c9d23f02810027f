"""The request id: taken from `X-Request-ID` or made, kept in a context variable
for logs and outbound calls, echoed on the response; plus one access log line
and the request metrics (`shared.metrics`) per request."""

import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics

REQUEST_ID_HEADER = "x-request-id"
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# An incoming id is trusted only if it looks like an id: it ends up in logs.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_logger = logging.getLogger("access")


def current_request_id() -> str | None:
    return request_id_var.get()


def _ignore_request_start(request_id: str) -> None:
    return None


# Replaced by shared.tracing when tracing is on: tags the server span with the request id.
on_request_start: Callable[[str], None] = _ignore_request_start


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), so that streaming responses are not buffered."""

    def __init__(self, app: ASGIApp, quiet_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        on_request_start(request_id)
        metrics.HTTP_IN_PROGRESS.inc()
        started = time.perf_counter()
        status_code = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            elapsed = time.perf_counter() - started
            metrics.HTTP_IN_PROGRESS.dec()
            metrics.observe_request(
                scope["method"], metrics.route_template(scope), status_code, elapsed
            )
            path = scope["path"]
            if path not in self.quiet_paths or status_code >= 400:
                access_logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status_code,
                        "durationMs": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)
