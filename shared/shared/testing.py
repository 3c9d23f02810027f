"""Helpers for the services' test suites (real PostgreSQL, never a mock of it)."""

import asyncio
import json
import logging
import re
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.http_client import INTERNAL_TOKEN_HEADER
from shared.internal_access import IDENTITIES, INTERNAL_ROUTES
from shared.keys import (
    generate_private_key,
    jwks,
    keys_of_jwks,
    private_pem,
    public_pem,
    thumbprint,
)
from shared.provisioning import create_database, drop_database, quote_identifier
from shared.server import LISTEN_FD
from shared.settings import database_url_for_asyncpg
from shared.tokens import issue_internal_token, issue_user_token
from shared.user_token_keys import UserTokenKeys


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def listening_socket() -> socket.socket:
    """A socket listening on a port the kernel chose, for a process to serve on: hand it
    over (`LISTEN_FD`, shared.server) instead of a port number, which anything could
    take between being chosen and being bound."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def handed_over(sock: socket.socket, env: dict[str, str]) -> dict[str, Any]:
    """`subprocess.Popen` arguments that start a service on `sock` (shared.server):
    `Popen(argv, **handed_over(sock, env))`."""
    return {"env": {**env, LISTEN_FD: str(sock.fileno())}, "pass_fds": (sock.fileno(),)}


class ReservedPort:
    """A port kept for a service a test stops and starts again. Held here bound but not
    listening (connections are refused while the service is down, nothing else can take
    the port); each start is handed a listening socket of its own on it (`listening()`,
    both sockets SO_REUSEPORT), which closes when that process exits."""

    def __init__(self) -> None:
        self._placeholder = _reusable_socket(0)
        self.port: int = self._placeholder.getsockname()[1]

    def listening(self) -> socket.socket:
        sock = _reusable_socket(self.port)
        sock.listen(128)
        return sock

    def close(self) -> None:
        self._placeholder.close()


def _reusable_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextmanager
def refused_port() -> Iterator[int]:
    """A port nothing can listen on while the block runs: bound here but not listening,
    so a connection to it is refused (an unreachable service, database or Redis)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


class FakeClock:
    """A clock a test moves (`advance`) instead of sleeping: give it where code takes a
    `clock` (monotonic seconds), e.g. `UserStatusCache(source, ttl, clock=clock)`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def random_secret() -> str:
    return secrets.token_urlsafe(48)


@dataclass
class TestKeys:
    """A test session's keys, as `make run` makes them: the auth service's user-token key
    and each identity's internal key. `settings_for(name)` is what a service's settings
    take; the other methods mint what a real service would send."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    user_token_key: Ed25519PrivateKey = field(default_factory=generate_private_key)
    internal_keys: dict[str, Ed25519PrivateKey] = field(
        default_factory=lambda: {name: generate_private_key() for name in IDENTITIES}
    )

    def internal_public_keys(self) -> str:
        """`INTERNAL_PUBLIC_KEYS`: every identity's public key, by name."""
        return json.dumps(
            {name: public_pem(key.public_key()) for name, key in self.internal_keys.items()}
        )

    def settings_for(self, name: str) -> dict[str, str]:
        values = {
            "INTERNAL_PRIVATE_KEY": private_pem(self.internal_keys[name]),
            "INTERNAL_PUBLIC_KEYS": self.internal_public_keys(),
        }
        if name == "auth":
            values["JWT_PRIVATE_KEY"] = private_pem(self.user_token_key)
        return values

    def jwks(self) -> dict[str, Any]:
        """What the auth service publishes at /.well-known/jwks.json."""
        return jwks([self.user_token_key.public_key()])

    def user_token_keys(self, _settings: Any = None) -> UserTokenKeys:
        """The auth service's public keys handed over directly (no JWKS fetch): a
        `user_token_keys` factory for create_app."""
        return UserTokenKeys(keys_of_jwks(self.jwks()))

    def user_token(
        self,
        user_id: uuid.UUID | str,
        *,
        email: str = "",
        role: str = "customer",
        expires_in: str = "1h",
    ) -> str:
        return issue_user_token(
            user_id=uuid.UUID(str(user_id)),
            email=email or f"{str(user_id)[:8]}@example.com",
            role=role,
            signing_key=self.user_token_key,
            expires_in=expires_in,
        )

    def internal_token(self, caller: str, audience: str) -> str:
        return issue_internal_token(
            service=caller, audience=audience, private_key=self.internal_keys[caller]
        )

    def internal_headers(self, caller: str, audience: str) -> dict[str, str]:
        return {"X-Internal-Token": self.internal_token(caller, audience)}

    def forged_internal_tokens(self, caller: str, audience: str) -> dict[str, str]:
        """Internal tokens that claim to be `caller` calling `audience` and must be refused,
        by what is wrong with them."""
        now = int(time.time())
        claims = {"sub": caller, "aud": audience, "iat": now, "exp": now + 60}
        other = next(name for name in IDENTITIES if name not in (caller, audience))
        wrong_audience = next(name for name in IDENTITIES if name != audience)
        return {
            "signed with another service's key": jwt.encode(
                claims, self.internal_keys[other], algorithm="EdDSA"
            ),
            "signed with a key of no service": jwt.encode(
                claims, generate_private_key(), algorithm="EdDSA"
            ),
            "for another service": jwt.encode(
                {**claims, "aud": wrong_audience}, self.internal_keys[caller], algorithm="EdDSA"
            ),
            "expired": jwt.encode(
                {**claims, "iat": now - 120, "exp": now - 60},
                self.internal_keys[caller],
                algorithm="EdDSA",
            ),
            "of an unknown caller": jwt.encode(
                {**claims, "sub": "stranger"}, generate_private_key(), algorithm="EdDSA"
            ),
            "HS256 with a shared secret (before)": jwt.encode(
                {"iss": caller, "aud": "ecommerce-internal", "iat": now, "exp": now + 60},
                random_secret(),
                algorithm="HS256",
            ),
            "alg none": jwt.encode(claims, "", algorithm="none"),
            "a user token": self.user_token(uuid.uuid4(), role="admin"),
            "garbage": "garbage",
        }

    def forged_user_tokens(
        self, user_id: uuid.UUID | str, role: str = "customer"
    ) -> dict[str, str]:
        """User tokens for a user who exists that must be refused, by what is wrong with
        them: made with any key or secret but the auth service's."""
        now = int(time.time())
        claims = {
            "id": str(user_id),
            "email": f"{str(user_id)[:8]}@example.com",
            "role": role,
            "iat": now,
            "exp": now + 3600,
        }
        real_kid = thumbprint(self.user_token_key.public_key())
        stranger = generate_private_key()
        return {
            "HS256 with the old JWT_SECRET": jwt.encode(claims, random_secret(), algorithm="HS256"),
            "another Ed25519 key": jwt.encode(
                claims,
                stranger,
                algorithm="EdDSA",
                headers={"kid": thumbprint(stranger.public_key())},
            ),
            "another key under the real kid": jwt.encode(
                claims, stranger, algorithm="EdDSA", headers={"kid": real_kid}
            ),
            "the right key, an unknown kid": jwt.encode(
                claims, self.user_token_key, algorithm="EdDSA", headers={"kid": "unknown-kid"}
            ),
            "the right key, no kid": jwt.encode(claims, self.user_token_key, algorithm="EdDSA"),
            "alg none": jwt.encode(claims, "", algorithm="none", headers={"kid": real_kid}),
            "a service's internal key": jwt.encode(
                claims, self.internal_keys["gateway"], algorithm="EdDSA", headers={"kid": real_kid}
            ),
            "expired": jwt.encode(
                {**claims, "iat": now - 7200, "exp": now - 3600},
                self.user_token_key,
                algorithm="EdDSA",
                headers={"kid": real_kid},
            ),
        }


def _upgrade(service_dir: Path, url: str) -> None:
    config = Config(str(service_dir / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def _check(service_dir: Path, url: str) -> None:
    config = Config(str(service_dir / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logging"] = False
    command.check(config)  # raises when autogenerate would find a difference


async def assert_migrations_match_models(service_dir: Path, url: str) -> None:
    """The schema is only made by migrations: a model change without its migration fails."""
    await asyncio.to_thread(_check, service_dir, url)


async def migrate(service_dir: Path, url: str) -> None:
    """Alembic `upgrade head`, in a thread: env.py runs its own event loop."""
    await asyncio.to_thread(_upgrade, service_dir, url)


@asynccontextmanager
async def migrated_database(server_url: str, name: str, service_dir: Path) -> AsyncIterator[str]:
    """A throwaway database with the service's migrations applied, dropped afterwards.
    `server_url` is any URL of the test server (its database part is replaced)."""
    database = f"test_{name}_{uuid.uuid4().hex[:10]}"
    url = database_url_for_asyncpg(
        make_url(server_url).set(database=database).render_as_string(hide_password=False)
    )
    await create_database(url)
    try:
        await migrate(service_dir, url)
        yield url
    finally:
        await drop_database(url)


async def truncate_all(engine: AsyncEngine, metadata: MetaData) -> None:
    tables = ", ".join(quote_identifier(table.name) for table in metadata.sorted_tables)
    if tables:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


async def delete_all(engine: AsyncEngine, metadata: MetaData) -> None:
    """DELETE, not TRUNCATE: when tests leave a few rows, emptying small tables row by row
    is much cheaper than TRUNCATE's new files for every table and index."""
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(table.delete())


def internal_headers(keys: "TestKeys", caller: str, audience: str) -> dict[str, str]:
    """The header of an internal call made by the service `caller` to `audience`."""
    return {INTERNAL_TOKEN_HEADER: keys.internal_token(caller, audience)}


def internal_routes_of(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every internal route the app has."""
    return {
        (method, path)
        for route in iter_route_contexts(app.router.routes)
        if isinstance(route.original_route, APIRoute)
        and (path := route.path_format or "").startswith("/api/internal/")
        for method in route.methods or ()
    }


def internal_access_cases(service: str) -> list[tuple[str, str, str, bool]]:
    """(method, path, caller, allowed) for every internal route of `service` in
    shared.internal_access and every identity of the system."""
    return [
        (method, path, caller, caller in callers)
        for (callee, method, path), callers in INTERNAL_ROUTES.items()
        if callee == service
        for caller in IDENTITIES
    ]


REFUSED_CALLER = {"error": "Access denied. This service may not call this route."}


async def assert_internal_access(
    client: httpx.AsyncClient,
    keys: "TestKeys",
    service: str,
    case: tuple[str, str, str, bool],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One case of `internal_access_cases`: an allowed caller gets the route's own answer to
    a request it cannot fulfil (400 for an empty body, 404 for an unknown id, 200 for a
    list); any other caller gets 403 in the error format and one warning line naming it."""
    method, path, caller, allowed = case
    url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
    headers = internal_headers(keys, caller, service)
    with caplog.at_level(logging.WARNING, logger="shared.internal_access"):
        if method == "POST":
            response, admitted = await client.post(url, json={}, headers=headers), 400
        else:
            response = await client.request(method, url, headers=headers)
            admitted = 404 if url != path else 200
    refusals = [r.getMessage() for r in caplog.records if r.name == "shared.internal_access"]
    if allowed:
        assert response.status_code == admitted, response.text
        assert refusals == []
    else:
        assert response.status_code == 403, response.text
        assert response.json() == REFUSED_CALLER
        assert len(refusals) == 1
        assert f"caller={caller} " in refusals[0]
        assert refusals[0].endswith(f"{method} {path}")


async def assert_only_the_auth_services_tokens_are_taken(
    client: httpx.AsyncClient,
    keys: TestKeys,
    user_id: uuid.UUID | str,
    method: str,
    path: str,
    role: str = "customer",
) -> None:
    """A user the service knows, on one of its routes: a token the auth service signed is
    taken; every token made with another key or secret is 401 `Invalid token`."""
    real = await client.request(method, path, headers=bearer(keys.user_token(user_id, role=role)))
    assert real.status_code not in (401, 403), real.text
    for why, token in keys.forged_user_tokens(user_id, role).items():
        response = await client.request(method, path, headers=bearer(token))
        assert response.status_code == 401, (why, response.text)
        assert response.json() == {"error": "Invalid token"}, why


# asgi-lifespan gives an app 5 s to start or stop. A loaded machine (a CI runner; argon2
# hashing an admin's password, a first database connection) may need more: the test would
# then fail for the machine's speed, not for the code.
APP_LIFESPAN_TIMEOUT = 60.0


def started(app: Any) -> LifespanManager:
    """`async with started(app):` the app's startup has run, and its shutdown runs at the end."""
    return LifespanManager(
        app, startup_timeout=APP_LIFESPAN_TIMEOUT, shutdown_timeout=APP_LIFESPAN_TIMEOUT
    )
