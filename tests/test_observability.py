"""Observability seen from outside: every service answers `/metrics`; the gateway's
`/metrics` is its own and no path through the gateway reaches a service's; the
access log lines of a request, in JSON, across services."""

import json
import socket
import threading
import time
import uuid

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api_gateway.config import GatewaySettings
from api_gateway.main import create_app as create_gateway
from api_gateway.routing import UPSTREAMS, resolve
from scripts.services import MPESA_SIMULATOR
from shared.auth_client import JWKS_PATH
from shared.metrics import read_samples
from shared.testing import TestKeys, started

# Ways one might try to reach a service's /metrics through the gateway.
PROBES = (
    "/metrics/",
    "/api/metrics",
    "/api/auth/metrics",
    "/api/products/../../metrics",
    "/api/products/%2e%2e/%2e%2e/metrics",
    "/api/auth/..%2f..%2fmetrics",
    "/api/products/%2F..%2F..%2Fmetrics",
    "/api//metrics",
    "/api/internal/../metrics",
    "/api/orders/admin/../../../metrics",
    "/admin/../metrics",
    "/admin/%2e%2e/metrics",
    "/admin/..%2fmetrics",
)


def test_no_gateway_route_reaches_a_path_outside_a_services_api():
    """Services serve /metrics, /health and /ready at their root; the gateway only ever
    forwards to paths under /api/ (the admin console's: under /admin, its pages), and to
    the auth service's one public key set."""
    for upstream in UPSTREAMS:
        if upstream.prefix == JWKS_PATH:
            assert upstream.service == "auth" and upstream.rewrite_to is None
            continue
        below = "/admin" if upstream.service == "console" else "/api"
        assert (upstream.rewrite_to or upstream.prefix).startswith(below)
    for path in PROBES:
        for method in ("GET", "POST"):
            route = resolve(method, path)
            assert route is None or route.upstream_path.startswith(("/api/", "/admin")), (
                path,
                route,
            )


@pytest.fixture(scope="module")
def recorder():
    """One fake upstream for every service: records the paths it is asked for."""
    paths: list[str] = []

    async def record(request: Request) -> JSONResponse:
        paths.append(request.url.path)
        return JSONResponse({"path": request.url.path})

    app = Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST"])])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", paths
    server.should_exit = True
    thread.join(timeout=5)


async def test_the_gateway_metrics_are_its_own_and_never_a_services(recorder):
    url, paths = recorder
    settings = GatewaySettings(
        _env_file=None,
        **TestKeys().settings_for("gateway"),
        RATE_LIMIT_ENABLED="false",
        **{f"{name}_SERVICE_URL": url for name in ("AUTH", "PRODUCT", "CART", "ORDER", "PAYMENT")},
    )
    app = create_gateway(settings)
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            before = _samples((await client.get("/metrics")).text)
            assert (await client.get("/api/products")).status_code == 200
            for path in PROBES:
                await client.get(path)
            response = await client.get("/metrics")

    assert response.status_code == 200
    # What the gateway asked for itself: the auth service's keys (at start).
    assert paths and all(path.startswith("/api/") or path == JWKS_PATH for path in paths), paths
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert "http_requests" in families
    # What these requests counted (other apps of this test process share the registry):
    # the proxy's route template, never the paths the clients asked for.
    after = _samples(response.text)
    counted_routes = {
        dict(labels)["route"]
        for (name, labels), value in after.items()
        if name == "http_requests_total" and value != before.get((name, labels), 0)
    }
    assert "/api/{path}" in counted_routes
    assert all(not route.startswith("/api/") or route == "/api/{path}" for route in counted_routes)


_samples = read_samples


@pytest.mark.e2e
def test_every_service_answers_metrics_and_logs_requests_as_json(stack, gateway):
    email = f"metrics-{uuid.uuid4().hex[:8]}@example.com"
    registered = gateway.post(
        "/api/auth/register",
        json={"name": "Wanjiku", "email": email, "password": "password123"},
        headers={"X-Request-ID": "metrics-req-1"},
    )
    assert registered.status_code == 201, registered.text

    for service, port in stack.ports.items():
        if service == MPESA_SIMULATOR:  # a development tool, not a service of the shop
            continue
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert response.status_code == 200, service
        assert response.headers["content-type"].startswith("text/plain")
        assert "http_requests_total" in response.text, service

    auth = _samples(httpx.get(f"{stack.url('auth')}/metrics", timeout=10).text)
    key = frozenset({"method": "POST", "route": "/api/register", "status": "201"}.items())
    assert auth[("http_requests_total", key)] >= 1
    own = gateway.get("/metrics").text
    proxied = frozenset({"method": "POST", "route": "/api/{path}", "status": "201"}.items())
    assert _samples(own)[("http_requests_total", proxied)] >= 1
    assert 'route="/api/register"' not in own  # the auth service's figures stay there

    # One JSON object per line, the request id the same in the gateway's and auth's lines.
    lines = {}
    for line in stack.lines:
        name, _, text = line.partition(" | ")
        if '"metrics-req-1"' in text and '"message": "request"' in text:
            lines[name.strip()] = json.loads(text)
    assert set(lines) >= {"gateway", "auth"}, stack.output()[-3000:]
    for record in lines.values():
        assert {"time", "level", "service", "requestId", "method", "path", "status"} <= set(record)
        assert record["requestId"] == "metrics-req-1"
        assert isinstance(record["durationMs"], float)
    assert lines["auth"]["path"] == "/api/register" and lines["auth"]["status"] == 201
    assert "password123" not in stack.output()
