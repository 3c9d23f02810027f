"""Test session setup shared by every suite: a clean environment and a real
PostgreSQL server (found or provisioned as `make run` does; see scripts/postgres.py)."""

import os

import pytest

# The library first: its tests live in shared/tests, and pytest would otherwise name
# them as modules of a `shared` package of its own making.
import shared.testing
from scripts.postgres import find_or_start_postgres

# Tests build their settings explicitly; a developer's shell or .env must not leak in.
_SETTINGS_PREFIXES = (
    "AUTH_",
    "PRODUCT_",
    "CART_",
    "ORDER_",
    "PAYMENT_",
    "GATEWAY_",
    "JWT_",
    "ADMIN_",
    "MPESA_",
    "STRIPE_",
    "RATE_LIMIT_",
    "INTERNAL_",
    "JWKS_",
    "USER_STATUS_TTL",
    "UPSTREAM_TIMEOUT",
    "TRUSTED_PROXIES",
    "CORS_ORIGINS",
    "REDIS_URL",
    "ENVIRONMENT",
    "NODE_ENV",
    "HOST",
    "PORT",
    "OTEL_",
    "RUN_MIGRATIONS",
    "STORE_CURRENCY",
    "WORKERS_ENABLED",
    "STACK_SKIP",
    "DB_",
)
for _name in list(os.environ):
    if _name.startswith(_SETTINGS_PREFIXES):
        del os.environ[_name]


@pytest.fixture(scope="session")
def postgres_url():
    """A URL of the test PostgreSQL server (the database part is replaced per suite)."""
    server = find_or_start_postgres(lambda text: print(f"[postgres] {text}"))
    yield server.url("postgres")
    if server.stop is not None:
        server.stop()


@pytest.fixture(scope="session")
def keys() -> shared.testing.TestKeys:
    """The session's keys: the auth service's user-token key and every service's own."""
    return shared.testing.TestKeys()
