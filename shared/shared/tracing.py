"""OpenTelemetry tracing, switched on by `OTEL_EXPORTER_OTLP_ENDPOINT`.

Unset (the default), nothing here runs and no OpenTelemetry module is even
imported: no middleware, no patched client, no cost per request.

Set (e.g. `http://otel-collector:4318`, OTLP over HTTP/protobuf), each service:
- traces every request it serves: FastAPI's own OpenTelemetry support (FastAPI
  >= 0.142 traces requests, dependencies and endpoints as soon as a tracer
  provider is set; `create_app` excludes `/health`, `/ready` and `/metrics`),
  each server span tagged with the request id (`http.request_id`);
- traces every query (SQLAlchemy instrumentation of its engine; `query_span` for the
  reads sent with asyncpg itself, shared.db.HotPath);
- traces every call it makes (httpx instrumentation, plus the aiohttp transport
  our service client uses, and the gateway's proxy's aiohttp session through
  `aiohttp_trace_configs`) and sends the W3C
  `traceparent` header with it, so one trace follows a request from the gateway
  through every service it touches (the request id follows it too, as
  `X-Request-ID`);
- writes `traceId` and `spanId` into its log lines;
- masks secrets, tokens and phone numbers in span attributes as in logs (a URL
  can carry one: the M-Pesa callback's).
The exporter's other settings are OpenTelemetry's standard variables
(`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_SCHEDULE_DELAY`...).
"""

import contextlib
import logging
import os
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from shared import logging as shared_logging
from shared import request_context
from shared.redaction import redact_text

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import aiohttp
    import httpx
    from httpx_aiohttp import AiohttpTransport
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span, TracerProvider
    from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
_provider: Any = None  # the SDK's TracerProvider once tracing is on


def tracing_requested() -> bool:
    return bool(os.environ.get(ENDPOINT_VARIABLE, "").strip())


def tracing_enabled() -> bool:
    return _provider is not None


def configure_tracing(service: str) -> bool:
    """Once per process: the tracer provider, its exporter and the client
    instrumentation. Returns whether tracing is on."""
    global _provider
    if _provider is not None:
        return True
    if not tracing_requested():
        return False

    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    class RedactingSpanProcessor(SpanProcessor):
        """Masks attribute values as logs are masked. Instrumentations pass a span's
        request attributes (URL, path) when they start it, so masking them here, before
        anything can read them, is enough."""

        def on_start(self, span: "Span", parent_context: "Context | None" = None) -> None:
            for key, value in list((span.attributes or {}).items()):
                if isinstance(value, str):
                    masked = redact_text(value)
                    if masked != value:
                        span.set_attribute(key, masked)

    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "ecommerce"})
    )
    provider.add_span_processor(RedactingSpanProcessor())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _instrument_aiohttp_transport(provider)

    def current_trace_ids() -> tuple[str, str] | None:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return format(context.trace_id, "032x"), format(context.span_id, "016x")

    def tag_request(request_id: str) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("http.request_id", request_id)

    shared_logging.current_trace_ids = current_trace_ids
    request_context.on_request_start = tag_request
    _provider = provider
    logger.info("tracing on", extra={"endpoint": os.environ[ENDPOINT_VARIABLE]})
    return True


def _instrument_aiohttp_transport(provider: "TracerProvider") -> None:
    """Our service client and the gateway's proxy send through httpx-aiohttp's transport,
    which the httpx instrumentation does not know: give it a client span and the
    `traceparent` header."""
    from httpx_aiohttp import AiohttpTransport
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from wrapt import wrap_function_wrapper

    tracer = provider.get_tracer("shared.http_client")

    async def handle_async_request(
        wrapped: "Callable[..., Awaitable[httpx.Response]]",
        instance: "AiohttpTransport",
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> "httpx.Response":
        request = args[0] if args else kwargs["request"]
        attributes = {
            "http.request.method": request.method,
            "url.full": str(request.url.copy_with(query=None)),
            "server.address": request.url.host,
        }
        if request.url.port:
            attributes["server.port"] = request.url.port
        with tracer.start_as_current_span(
            request.method, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            propagate.inject(request.headers)
            response = await wrapped(*args, **kwargs)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    wrap_function_wrapper(AiohttpTransport, "handle_async_request", handle_async_request)


def aiohttp_trace_configs() -> list["aiohttp.TraceConfig"]:
    """For an `aiohttp.ClientSession` made after `configure_tracing` (the gateway's proxy):
    with tracing on, a client span per request and the `traceparent` header; else none."""
    if _provider is None:
        return []
    import aiohttp
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tracer = _provider.get_tracer("api_gateway.proxy")

    async def started(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        url = params.url
        attributes: dict[str, str | int] = {
            "http.request.method": params.method,
            "url.full": str(url.with_query(None)),
            "server.address": url.host or "",
        }
        if url.port:
            attributes["server.port"] = url.port
        span = tracer.start_span(params.method, kind=SpanKind.CLIENT, attributes=attributes)
        context.span = span
        propagate.inject(params.headers, context=trace.set_span_in_context(span))

    async def ended(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        span = context.span
        span.set_attribute("http.response.status_code", params.response.status)
        if params.response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    async def failed(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        span = context.span
        span.record_exception(params.exception)
        span.set_status(Status(StatusCode.ERROR))
        span.end()

    config = aiohttp.TraceConfig()
    config.on_request_start.append(started)
    config.on_request_end.append(ended)
    config.on_request_exception.append(failed)
    return [config]


def query_span(statement: str) -> AbstractContextManager[object]:
    """A client span for a query sent without SQLAlchemy (shared.db.HotPath), named and
    tagged as the SQLAlchemy instrumentation's are; nothing with tracing off."""
    if _provider is None:
        return contextlib.nullcontext()
    from opentelemetry.trace import SpanKind

    span: AbstractContextManager[object] = _provider.get_tracer("shared.db").start_as_current_span(
        statement.split(maxsplit=1)[0],
        kind=SpanKind.CLIENT,
        attributes={"db.system": "postgresql", "db.statement": statement},
    )
    return span


def instrument_engine(engine: "AsyncEngine") -> None:
    if _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation declares SQLAlchemy < 2.1; the engine events it listens to
    # (before/after_cursor_execute, handle_error) are unchanged in 2.1, and
    # shared/tests/test_tracing.py proves the query spans arrive.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=_provider, skip_dep_check=True
    )


def flush() -> None:
    """Send the spans still buffered (at shutdown: the last requests' spans)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)
