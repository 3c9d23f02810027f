"""The gateway under test runs in-process; behind it, a fake of the five services
answers over real HTTP (uvicorn in a thread), one port per service. It echoes
what it received and plays the auth service's internal user-status route (checking the
gateway's internal token) and its JWKS."""

import asyncio
import base64
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from api_gateway.config import GatewaySettings
from api_gateway.main import create_app
from shared.keys import load_public_key_map
from shared.testing import FakeClock, TestKeys, started
from shared.tokens import InvalidToken, decode_internal_token

SERVICES = ("auth", "product", "cart", "order", "payment", "console")
CLIENT_IP = "203.0.113.7"


@dataclass
class FakeServices:
    ports: dict[str, int]
    users: dict[str, dict] = field(default_factory=dict)
    received: list[dict] = field(default_factory=list)
    slow_seconds: float = 3.0
    # service -> the OpenAPI document its /openapi.json answers (absent: 503).
    openapi: dict[str, dict] = field(default_factory=dict)
    openapi_requests: list[str] = field(default_factory=list)
    # What the auth service's /.well-known/jwks.json answers, and how often it was asked.
    jwks: dict = field(default_factory=dict)
    jwks_requests: int = 0
    internal_public_keys: dict = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def service_on(self, port: int) -> str:
        return next(name for name, p in self.ports.items() if p == port)


def _fake_app(fake: FakeServices) -> Starlette:
    async def user_status(request: Request) -> Response:
        try:
            decode_internal_token(
                request.headers.get("x-internal-token", ""),
                audience="auth",
                public_keys=fake.internal_public_keys,
            )
        except InvalidToken:
            return JSONResponse({"error": "Invalid internal service token"}, status_code=401)
        user = fake.users.get(request.path_params["user_id"])
        if user is None:
            return JSONResponse({"error": "User not found"}, status_code=404)
        return JSONResponse({"user": user})

    async def jwks(request: Request) -> Response:
        fake.jwks_requests += 1
        return JSONResponse(fake.jwks, headers={"Cache-Control": "public, max-age=300"})

    async def openapi(request: Request) -> Response:
        service = fake.service_on(request.scope["server"][1])
        fake.openapi_requests.append(service)
        document = fake.openapi.get(service)
        if document is None:
            return JSONResponse({"error": "Internal server error"}, status_code=503)
        return JSONResponse(document)

    async def echo(request: Request) -> Response:
        body = await request.body()
        record = {
            "service": fake.service_on(request.scope["server"][1]),
            "method": request.method,
            "path": request.url.path,
            "query": request.scope["query_string"].decode(),
            "headers": {k: v for k, v in request.headers.items()},
            "body": base64.b64encode(body).decode(),
        }
        fake.received.append(record)
        if request.url.path.endswith("/slow"):
            await asyncio.sleep(fake.slow_seconds)
        if request.url.path.endswith("/big"):
            chunk = b"0123456789abcdef" * 4096  # 64 KiB

            async def chunks():
                for _ in range(16):
                    yield chunk

            return StreamingResponse(chunks(), media_type="application/octet-stream")
        response = JSONResponse(record, headers={"X-Upstream": "yes"})
        # Caching headers asked for by the test (tests/test_response_cache.py).
        for param, header in (("cc", "Cache-Control"), ("vary", "Vary"), ("etag", "ETag")):
            if param in request.query_params:
                response.headers[header] = request.query_params[param]
        if request.url.path.endswith("/set-cookie"):
            response.set_cookie("session", "user-a-secret")
            response.set_cookie("theme", "dark")
        return response

    return Starlette(
        routes=[
            Route("/api/internal/users/{user_id}", user_status, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/.well-known/jwks.json", jwks, methods=["GET"]),
            Route("/{path:path}", echo, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
        ]
    )


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="session")
def fake_services(keys):
    sockets = {name: _listening_socket() for name in SERVICES}
    fake = FakeServices(
        ports={name: s.getsockname()[1] for name, s in sockets.items()},
        internal_public_keys=load_public_key_map(keys.internal_public_keys()),
    )
    server = uvicorn.Server(
        uvicorn.Config(_fake_app(fake), log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": list(sockets.values())}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake services did not start"
        time.sleep(0.02)
    yield fake
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _reset_fake(fake_services, keys):
    fake_services.jwks = keys.jwks()
    fake_services.jwks_requests = 0
    fake_services.received.clear()
    fake_services.users.clear()
    fake_services.openapi.clear()
    fake_services.openapi_requests.clear()
    fake_services.slow_seconds = 3.0


@pytest.fixture
def make_settings(fake_services, keys: TestKeys):
    def make(**overrides) -> GatewaySettings:
        values = {
            **keys.settings_for("gateway"),
            "RATE_LIMIT_ENABLED": "false",
            **{f"{name.upper()}_SERVICE_URL": fake_services.url(name) for name in SERVICES},
            "ADMIN_CONSOLE_URL": fake_services.url("console"),
            **overrides,
        }
        return GatewaySettings(_env_file=None, **values)

    return make


@pytest.fixture
async def make_client(make_settings):
    """Starts a gateway with the given settings; returns an HTTP client to it."""
    running = []

    async def make(
        client_ip: str = CLIENT_IP, clock: FakeClock | None = None, **overrides
    ) -> httpx.AsyncClient:
        """`clock`: the user-status cache's, moved by the test (real time otherwise)."""
        app = create_app(make_settings(**overrides), **({"clock": clock} if clock else {}))
        manager = started(app)
        await manager.__aenter__()
        transport = httpx.ASGITransport(
            app=app, client=(client_ip, 40000), raise_app_exceptions=False
        )
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway")
        running.append((manager, client))
        return client

    yield make
    for manager, client in reversed(running):
        await client.aclose()
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def gateway(make_client):
    return await make_client()


@pytest.fixture
def make_user(fake_services, keys):
    """A user the fake auth service knows; returns (user id, token)."""

    def make(role: str = "customer", active: bool = True) -> tuple[str, str]:
        user_id = str(uuid.uuid4())
        fake_services.users[user_id] = {
            "id": user_id,
            "role": role,
            "isActive": active,
            "tokensValidAfter": 0,
        }
        token = keys.user_token(user_id, role=role)
        return user_id, token

    return make
