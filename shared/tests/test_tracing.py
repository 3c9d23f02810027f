"""Tracing: off and costless without OTEL_EXPORTER_OTLP_ENDPOINT; with it, one
trace follows a request from the gateway through two services and into the
database, exported over OTLP/HTTP (to a collector this test plays)."""

import gzip
import json
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

pytestmark = pytest.mark.e2e

_OFF_PROBE = """
import sys
from fastapi import APIRouter
from httpx_aiohttp import AiohttpTransport
from shared.app import create_app
from shared.settings import ServiceSettings
from shared.testing import TestKeys
app = create_app(
    name="probe", title="Probe", routers=[APIRouter()],
    settings=ServiceSettings(_env_file=None, **TestKeys().settings_for("gateway")),
)
from opentelemetry import trace
# FastAPI itself imports the OpenTelemetry API (a no-op without an SDK); nothing more.
loaded = sorted(
    name for name in sys.modules
    if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instr"))
)
print(loaded)
print(hasattr(AiohttpTransport.handle_async_request, "__wrapped__"))
print(type(trace.get_tracer_provider()).__name__)
"""


def test_without_an_endpoint_tracing_is_off_and_nothing_of_it_is_loaded():
    env = {"PATH": "", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    result = subprocess.run(
        [sys.executable, "-c", _OFF_PROBE], env=env, capture_output=True, text=True, check=True
    )
    loaded, wrapped, provider = result.stdout.strip().splitlines()[-3:]
    assert loaded == "[]"  # not even imported: no exporter, no patch, no cost
    assert wrapped == "False"
    # No provider set: FastAPI's own tracing stays off too.
    assert provider == "ProxyTracerProvider"


class Collector:
    """An OTLP/HTTP trace receiver on loopback: keeps (service name, span) pairs."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                encoding = self.headers.get("Content-Encoding")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    attributes = {
                        a.key: a.value.string_value for a in resource_spans.resource.attributes
                    }
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            collector.spans.append((attributes["service.name"], span))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, service: str, kind: int) -> list[Span]:
        return [span for name, span in self.spans if name == service and span.kind == kind]


@pytest.fixture
def collector():
    collector = Collector()
    yield collector
    collector.server.shutdown()


def attributes(span: Span) -> dict:
    values = {}
    for attribute in span.attributes:
        value = attribute.value
        values[attribute.key] = value.string_value or value.int_value
    return values


def _descends_from(span: Span, ancestor: Span, by_id: dict[bytes, Span]) -> bool:
    while span.parent_span_id:
        if span.parent_span_id == ancestor.span_id:
            return True
        span = by_id[span.parent_span_id]
    return False


def test_one_trace_crosses_the_gateway_two_services_and_the_database(
    start_sample, start_process, service_environment, collector, postgres_url
):
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    inventory = start_sample(SAMPLE_NAME="inventory", SAMPLE_DATABASE_URL=postgres_url, **tracing)
    catalogue = start_sample(SAMPLE_NAME="catalogue", SAMPLE_NEXT_URL=inventory.url, **tracing)
    gateway = start_process(
        [sys.executable, "-m", "api_gateway"],
        service_environment(
            GATEWAY_HOST="127.0.0.1",
            PRODUCT_SERVICE_URL=catalogue.url,
            PAYMENT_SERVICE_URL=catalogue.url,
            RATE_LIMIT_ENABLED="false",
            **tracing,
        ),
    )

    response = httpx.get(
        f"{gateway.url}/api/products/p-1", headers={"X-Request-ID": "trace-req-1"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"product": "p-1", "next": {"db": 1}}
    assert response.headers["x-request-id"] == "trace-req-1"
    # A secret in a URL (the M-Pesa callback's) must not reach the traces either.
    callback = httpx.post(f"{gateway.url}/api/payments/webhook/mpesa/cb-secret-777", timeout=10)
    assert callback.status_code == 404  # the sample service has no such route

    for service in (gateway, catalogue, inventory):
        service.stop()  # flushes the spans still buffered

    gateway_server = next(
        span
        for span in collector.of("gateway", Span.SPAN_KIND_SERVER)
        if attributes(span).get("http.request_id") == "trace-req-1"
    )
    trace_id = gateway_server.trace_id
    spans = [span for _, span in collector.spans if span.trace_id == trace_id]
    by_id = {span.span_id: span for span in spans}
    [gateway_call] = [s for s in collector.of("gateway", Span.SPAN_KIND_CLIENT) if s in spans]
    [catalogue_server] = [s for s in collector.of("catalogue", Span.SPAN_KIND_SERVER) if s in spans]
    [catalogue_call] = [s for s in collector.of("catalogue", Span.SPAN_KIND_CLIENT) if s in spans]
    [inventory_server] = [s for s in collector.of("inventory", Span.SPAN_KIND_SERVER) if s in spans]
    queries = [
        s
        for s in collector.of("inventory", Span.SPAN_KIND_CLIENT)
        if s in spans and "SELECT 1" in attributes(s).get("db.statement", "") + s.name
    ]

    # gateway -> catalogue -> inventory -> PostgreSQL: one trace, each hop the child of the call.
    assert _descends_from(gateway_call, gateway_server, by_id)
    assert catalogue_server.parent_span_id == gateway_call.span_id
    assert _descends_from(catalogue_call, catalogue_server, by_id)
    assert inventory_server.parent_span_id == catalogue_call.span_id
    assert queries and all(_descends_from(q, inventory_server, by_id) for q in queries)
    # The request id crossed with it, and each server span carries it.
    for server in (gateway_server, catalogue_server, inventory_server):
        assert attributes(server)["http.request_id"] == "trace-req-1"
    # Log lines carry the trace id: a log line leads to its trace and back.
    [access] = [
        r
        for r in inventory.json_lines()
        if r.get("message") == "request" and r.get("requestId") == "trace-req-1"
    ]
    assert access["traceId"] == trace_id.hex()
    # Probes are not traced; secrets in URLs are masked in every span.
    everything = [(span.name, attributes(span)) for _, span in collector.spans]
    assert not any("/health" in str(attrs.get("url.path", "")) for _, attrs in everything)
    assert "cb-secret-777" not in json.dumps(everything)
    assert any("[REDACTED]" in json.dumps(attrs) for _, attrs in everything)
