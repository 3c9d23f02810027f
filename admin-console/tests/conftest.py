"""The console's views against a fake of the gateway (an httpx MockTransport: the API is a
neighbour here; the browser tests use the real stack)."""

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from admin_console.config import ConsoleSettings
from admin_console.main import create_app
from shared.testing import started

GATEWAY = "http://gateway.test"
BROWSER_IP = "198.51.100.23"


def token_for(role: str = "admin", email: str = "admin@example.com", exp: float | None = None):
    """A JWT-shaped token (the console reads only its email and exp; the API checks it)."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"id": "u-1", "email": email, "role": role, "exp": exp or time.time() + 3600}
    return f"{part({'alg': 'HS256'})}.{part(claims)}.signature"


@dataclass
class FakeGateway:
    """Answers by (method, path): a dict body (200), or (status, body[, headers]), or an
    exception to raise. Keeps every request."""

    routes: dict[tuple[str, str], object] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def answer(self, method: str, path: str, reply: object) -> None:
        self.routes[(method, path)] = reply

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.routes.get((request.method, request.url.path))
        if reply is None:
            return httpx.Response(404, json={"error": "Route not found"})
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            reply = reply(request)
        if isinstance(reply, tuple):
            status, body, *headers = reply
            return httpx.Response(status, json=body, headers=headers[0] if headers else None)
        return httpx.Response(200, json=reply)

    def last(self, path: str) -> httpx.Request:
        return next(r for r in reversed(self.requests) if r.url.path == path)


@pytest.fixture
def fake_gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
async def make_console(fake_gateway, keys) -> Callable:
    running = []

    async def make(**overrides) -> httpx.AsyncClient:
        settings = ConsoleSettings(
            _env_file=None,
            **{
                "GATEWAY_URL": GATEWAY,
                "INTERNAL_PRIVATE_KEY": keys.settings_for("admin-console")["INTERNAL_PRIVATE_KEY"],
                **overrides,
            },
        )
        app = create_app(settings, api_transport=httpx.MockTransport(fake_gateway.handle))
        manager = started(app)
        await manager.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://console.test",
            headers={"X-Real-IP": BROWSER_IP},
        )
        running.append((manager, client))
        return client

    yield make
    for manager, client in reversed(running):
        await client.aclose()
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def console(make_console):
    return await make_console()


@pytest.fixture
async def signed_in(console):
    """The console with an admin's session and the CSRF cookie of its forms."""
    console.cookies.set("admin_session", token_for(), domain="console.test", path="/admin")
    page = await console.get("/admin/login")
    return console, csrf_of(page.text)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]
