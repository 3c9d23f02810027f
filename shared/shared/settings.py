"""Settings common to every service, read from the environment and `.env`.

Each service subclasses `ServiceSettings` in its own `config.py` and adds what
only it reads (its database URL, its port, provider keys). The names are the
original system's (`JWT_EXPIRES_IN`, `AUTH_SERVICE_URL`, ...), so an existing
`.env` keeps working; `JWT_SECRET` is gone: user tokens are signed by the auth service's
private key alone (shared.tokens).
"""

from functools import cached_property
from pathlib import Path
from typing import Literal, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.keys import (
    InvalidKey,
    is_development_key,
    load_public_key_map,
    private_key_setting,
    read_setting,
)

# Secrets have no default in code. `make run` generates development secrets
# into `.data/dev-secrets.env` when none are set. In production a service also
# refuses short secrets and the placeholders of `.env.example` and the seed README.
MIN_SECRET_LENGTH = 32
PLACEHOLDER_MARKERS = ("change-me", "change_me", "changeme", "your-super-secret", "your_")


class ServiceSettings(BaseSettings):
    # A key or secret never appears in an error message (pydantic would show the input).
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    environment: Literal["development", "production", "test"] = Field(
        default="development", validation_alias=AliasChoices("ENVIRONMENT", "NODE_ENV")
    )
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    # asyncio's own event loop serves connections in turn; uvloop, a little faster, lets
    # some wait for seconds under a thousand connections (docs/operations.md, "Overload").
    event_loop: Literal["asyncio", "uvloop"] = Field(
        default="asyncio", validation_alias="EVENT_LOOP"
    )
    # Worker processes serving the port (shared.server); each has its own database pool
    # of DB_POOL_SIZE connections. Only the first runs the periodic workers.
    web_concurrency: int = Field(default=1, ge=1, le=64, validation_alias="WEB_CONCURRENCY")

    jwt_expires_in: str = Field(default="7d", validation_alias="JWT_EXPIRES_IN")
    # The auth service's public keys (user tokens) are fetched from it again at most this
    # often (seconds), when a token names a key not seen yet (shared.user_token_keys).
    jwks_refetch_interval: float = Field(
        default=30.0, gt=0, validation_alias="JWKS_REFETCH_INTERVAL"
    )
    # Seconds between two fetches of the auth service's JWKS in every process: a key it no
    # longer publishes stops verifying within this time (the JWKS' own max-age is 300).
    jwks_refresh_interval: float = Field(
        default=300.0, gt=0, validation_alias="JWKS_REFRESH_INTERVAL"
    )
    # This service's own identity in internal calls: its Ed25519 private key (PEM), that
    # nobody else holds; and the public keys of the services that may call it, as a JSON
    # object name -> PEM. Each as the value itself or as a file (`..._FILE`).
    internal_private_key_text: SecretStr | None = Field(
        default=None, validation_alias="INTERNAL_PRIVATE_KEY"
    )
    internal_private_key_file: Path | None = Field(
        default=None, validation_alias="INTERNAL_PRIVATE_KEY_FILE"
    )
    internal_public_keys_text: str | None = Field(
        default=None, validation_alias="INTERNAL_PUBLIC_KEYS"
    )
    internal_public_keys_file: Path | None = Field(
        default=None, validation_alias="INTERNAL_PUBLIC_KEYS_FILE"
    )
    # How stale the cached status and role of a user may be (seconds). An admin's
    # deactivation or demotion takes effect everywhere within this time.
    user_status_ttl: float = Field(default=30.0, gt=0, le=60, validation_alias="USER_STATUS_TTL")

    auth_service_url: str = Field(
        default="http://127.0.0.1:3001", validation_alias="AUTH_SERVICE_URL"
    )
    product_service_url: str = Field(
        default="http://127.0.0.1:3002", validation_alias="PRODUCT_SERVICE_URL"
    )
    order_service_url: str = Field(
        default="http://127.0.0.1:3003", validation_alias="ORDER_SERVICE_URL"
    )
    payment_service_url: str = Field(
        default="http://127.0.0.1:3004", validation_alias="PAYMENT_SERVICE_URL"
    )
    cart_service_url: str = Field(
        default="http://127.0.0.1:3005", validation_alias="CART_SERVICE_URL"
    )
    # Database connections per process, and extra ones opened (and closed) under bursts.
    # Five services share one PostgreSQL under `make run` (100 connections by default).
    db_pool_size: int = Field(default=10, ge=1, validation_alias="DB_POOL_SIZE")
    db_max_overflow: int = Field(default=0, ge=0, validation_alias="DB_MAX_OVERFLOW")
    # asyncpg's own connections for the busiest statements (shared.db.HotPath), opened
    # when first needed; on top of DB_POOL_SIZE. DB_HOT_READ_POOL_SIZE, its first name, is
    # still read.
    db_hot_pool_size: int = Field(
        default=4,
        ge=1,
        validation_alias=AliasChoices("DB_HOT_POOL_SIZE", "DB_HOT_READ_POOL_SIZE"),
    )
    # Check each connection as it is taken from the pool, rather than run a read that met
    # a dead one again (shared.read_retry): one round trip more per request.
    db_pool_pre_ping: bool = Field(default=False, validation_alias="DB_POOL_PRE_PING")
    # Background workers (outbox delivery, expiry, reconciliation); tests switch them off.
    workers_enabled: bool = Field(default=True, validation_alias="WORKERS_ENABLED")
    # The shop's currency: prices, orders and payments are in it.
    store_currency: str = Field(
        default="KES", min_length=3, max_length=3, validation_alias="STORE_CURRENCY"
    )
    # Timeout of one service-to-service call, in seconds.
    service_timeout: float = Field(default=5.0, gt=0, validation_alias="SERVICE_TIMEOUT")
    # How long an Idempotency-Key is remembered (seconds); ORDER_IDEMPOTENCY_TTL was its name
    # when only orders had keys.
    idempotency_key_ttl: int = Field(
        default=86400,
        ge=60,
        validation_alias=AliasChoices("IDEMPOTENCY_KEY_TTL", "ORDER_IDEMPOTENCY_TTL"),
    )

    # Overload (shared.load_shedding): requests one process works on at once, how many more
    # may wait for a slot and for how long (seconds); beyond that a 503 with Retry-After.
    max_concurrent_requests: int = Field(
        default=64, ge=1, validation_alias="MAX_CONCURRENT_REQUESTS"
    )
    max_queued_requests: int = Field(default=192, ge=0, validation_alias="MAX_QUEUED_REQUESTS")
    max_queue_wait: float = Field(default=0.6, gt=0, validation_alias="MAX_QUEUE_WAIT")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @model_validator(mode="after")
    def _read_internal_keys(self) -> Self:
        """Read (and check) the keys now: a service without them does not start."""
        _ = self.internal_private_key, self.internal_public_keys
        return self

    @cached_property
    def internal_private_key(self) -> Ed25519PrivateKey:
        text = self.internal_private_key_text
        return private_key_setting(
            text.get_secret_value() if text else None,
            self.internal_private_key_file,
            "INTERNAL_PRIVATE_KEY",
            what="this service's own Ed25519 key for its calls to other services "
            "(`make run` generates one into .data/; docs/internal-api.md)",
        )

    @cached_property
    def internal_public_keys(self) -> dict[str, Ed25519PublicKey]:
        """The public key of each service that may call this one, by its name."""
        text = read_setting(
            self.internal_public_keys_text, self.internal_public_keys_file, "INTERNAL_PUBLIC_KEYS"
        )
        if text is None:
            raise ValueError(
                "INTERNAL_PUBLIC_KEYS (or INTERNAL_PUBLIC_KEYS_FILE) must be set: the public "
                'keys of the services that call this one, {"name": "-----BEGIN PUBLIC KEY..."}'
            )
        try:
            return load_public_key_map(text)
        except InvalidKey as exc:
            raise ValueError(f"INTERNAL_PUBLIC_KEYS: {exc}") from None

    def service_audiences(self) -> dict[str, str]:
        """Where each service is -> its name, the audience of an internal token for it."""
        return {
            self.auth_service_url: "auth",
            self.product_service_url: "product",
            self.order_service_url: "order",
            self.payment_service_url: "payment",
            self.cart_service_url: "cart",
        }

    @model_validator(mode="after")
    def _refuse_weak_secrets_in_production(self) -> Self:
        if not self.is_production:
            return self
        weak = [
            name
            for name, value in self.secrets_to_check().items()
            if value is not None
            and (
                len(value) < MIN_SECRET_LENGTH
                or any(marker in value.lower() for marker in PLACEHOLDER_MARKERS)
            )
        ]
        if weak:
            raise ValueError(
                f"{', '.join(weak)} must be a random value of at least {MIN_SECRET_LENGTH} "
                "characters in production (e.g. `openssl rand -hex 32`), not a placeholder"
            )
        development = [
            name for name, key in self.keys_to_check().items() if is_development_key(key)
        ]
        if development:
            raise ValueError(
                f"{', '.join(development)} is a development key (docker-compose.yml, the "
                "Kubernetes dev overlay): production needs its own "
                "(`openssl genpkey -algorithm ed25519`)"
            )
        return self

    def keys_to_check(self) -> dict[str, Ed25519PrivateKey]:
        """The private keys production must not take from the development files."""
        return {"INTERNAL_PRIVATE_KEY": self.internal_private_key}

    def secrets_to_check(self) -> dict[str, str | None]:
        """The secrets that must be strong in production; services add their own."""
        return {}


def database_url_for_asyncpg(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` forms and use the asyncpg driver."""
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
