"""Settings common to every service, read from the environment and `.env`.

Each service subclasses `ServiceSettings` in its own `config.py` and adds what
only it reads (its database URL, its port, provider keys). The names are the
original system's (`JWT_SECRET`, `AUTH_SERVICE_URL`, ...), so an existing
`.env` keeps working.
"""

from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets have no default in code. `make run` generates development secrets
# into `.data/dev-secrets.env` when none are set. In production a service also
# refuses short secrets and the placeholders of `.env.example` and the seed README.
MIN_SECRET_LENGTH = 32
PLACEHOLDER_MARKERS = ("change-me", "change_me", "changeme", "your-super-secret", "your_")


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

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

    jwt_secret: SecretStr = Field(validation_alias="JWT_SECRET")
    jwt_expires_in: str = Field(default="7d", validation_alias="JWT_EXPIRES_IN")
    internal_service_secret: SecretStr = Field(validation_alias="INTERNAL_SERVICE_SECRET")
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
    max_queue_wait: float = Field(default=0.5, gt=0, validation_alias="MAX_QUEUE_WAIT")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

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
        return self

    def secrets_to_check(self) -> dict[str, str | None]:
        """The secrets that must be strong in production; services add their own."""
        return {
            "JWT_SECRET": self.jwt_secret.get_secret_value(),
            "INTERNAL_SERVICE_SECRET": self.internal_service_secret.get_secret_value(),
        }


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
