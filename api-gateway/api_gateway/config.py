import ipaddress
from functools import lru_cache
from typing import Self

from pydantic import AliasChoices, Field, model_validator

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    port: int = Field(default=5000, validation_alias=AliasChoices("GATEWAY_PORT", "PORT"))
    # The gateway is the public entry point: it listens on every interface by
    # default (a phone on the same network can reach it). Services stay on loopback.
    host: str = Field(default="0.0.0.0", validation_alias=AliasChoices("GATEWAY_HOST", "HOST"))

    # Seconds to wait for a service's answer before a 504.
    upstream_timeout: float = Field(default=10.0, gt=0, validation_alias="UPSTREAM_TIMEOUT")
    # Requests forwarded to one service at once, and how many more may wait for a slot
    # (MAX_QUEUE_WAIT seconds at most); beyond that a 503 with Retry-After, at once.
    upstream_max_concurrency: int = Field(
        default=64, ge=1, validation_alias="UPSTREAM_MAX_CONCURRENCY"
    )
    upstream_max_queue: int = Field(default=1024, ge=0, validation_alias="UPSTREAM_MAX_QUEUE")
    # Largest request body forwarded (bytes); larger is 413.
    max_body_size: int = Field(default=1_048_576, gt=0, validation_alias="MAX_BODY_SIZE")

    rate_limit_enabled: bool = Field(default=True, validation_alias="RATE_LIMIT_ENABLED")
    rate_limit_default: str = Field(default="300/minute", validation_alias="RATE_LIMIT_DEFAULT")
    rate_limit_auth: str = Field(default="10/minute", validation_alias="RATE_LIMIT_AUTH")
    rate_limit_webhook: str = Field(default="600/minute", validation_alias="RATE_LIMIT_WEBHOOK")
    # Rate-limit counters in Redis (shared by several gateway replicas); memory when unset.
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    # Comma-separated IPs or CIDRs of reverse proxies in front of the gateway. Only
    # when the direct peer is one of them is X-Forwarded-For believed.
    trusted_proxies: str = Field(default="", validation_alias="TRUSTED_PROXIES")
    # Where the admin console runs (the gateway serves it at /admin/).
    admin_console_url: str = Field(
        default="http://127.0.0.1:3006", validation_alias="ADMIN_CONSOLE_URL"
    )
    # Seconds the services' OpenAPI documents are kept before /docs asks them again.
    api_docs_cache_seconds: float = Field(
        default=30.0, ge=0, validation_alias="API_DOCS_CACHE_SECONDS"
    )
    # GET /metrics on the gateway's own port. Off where that port is the world's and no
    # scraper sits beside it (docker-compose.prod.yml); Kubernetes scrapes the pod while
    # the Ingress passes only /api and /health.
    metrics_enabled: bool = Field(default=True, validation_alias="METRICS_ENABLED")
    # The cache of anonymous reads (api_gateway/response_cache.py): answers a service marked
    # `Cache-Control: public, max-age=N` with N <= GATEWAY_CACHE_MAX_AGE seconds are kept
    # (per gateway process), at most GATEWAY_CACHE_MAX_ENTRIES answers and
    # GATEWAY_CACHE_MAX_BYTES bytes of bodies, least recently used out first.
    gateway_cache_enabled: bool = Field(default=True, validation_alias="GATEWAY_CACHE_ENABLED")
    gateway_cache_max_entries: int = Field(
        default=1024, ge=1, validation_alias="GATEWAY_CACHE_MAX_ENTRIES"
    )
    gateway_cache_max_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1, validation_alias="GATEWAY_CACHE_MAX_BYTES"
    )
    gateway_cache_max_age: int = Field(
        default=5, ge=1, le=60, validation_alias="GATEWAY_CACHE_MAX_AGE"
    )
    # Comma-separated origins allowed by CORS; "*" for any (refused in production).
    cors_origins: str = Field(default="*", validation_alias="CORS_ORIGINS")

    @model_validator(mode="after")
    def _refuse_memory_rate_limits_in_several_workers(self) -> Self:
        # Counters in memory are each process's own: N workers would let a client make
        # N times its limit.
        if self.web_concurrency > 1 and self.rate_limit_enabled and not self.redis_url:
            raise ValueError(
                f"WEB_CONCURRENCY={self.web_concurrency} needs REDIS_URL for the rate "
                "limits: in memory each worker process would count on its own, and a "
                "client could make WEB_CONCURRENCY times its limit (set REDIS_URL, or "
                "WEB_CONCURRENCY=1, or RATE_LIMIT_ENABLED=false)"
            )
        return self

    @model_validator(mode="after")
    def _refuse_any_origin_in_production(self) -> Self:
        if self.is_production and "*" in self.cors_origin_list:
            raise ValueError(
                "CORS_ORIGINS must list the shop's front-end origins in production "
                "(e.g. CORS_ORIGINS=https://shop.example.com), not *: any web site could "
                "otherwise call the API from its visitors' browsers"
            )
        return self

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(item.strip(), strict=False)
            for item in self.trusted_proxies.split(",")
            if item.strip()
        ]

    @property
    def cors_origin_list(self) -> list[str]:
        return [item.strip() for item in self.cors_origins.split(",") if item.strip()]

    def service_urls(self) -> dict[str, str]:
        return {
            "auth": self.auth_service_url,
            "product": self.product_service_url,
            "cart": self.cart_service_url,
            "order": self.order_service_url,
            "payment": self.payment_service_url,
        }


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
