from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from shared.client_address import Network, parse_networks
from shared.settings import ServiceSettings

DARAJA_BASE_URLS = {
    "sandbox": "https://sandbox.safaricom.co.ke",
    "production": "https://api.safaricom.co.ke",
    # The local simulator of mpesa-simulator/ (`make run` starts it on this port).
    "simulator": "http://127.0.0.1:3010",
}


def _comma_separated(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable):
        return list(value)  # a list already (from the constructor): pydantic checks its items
    raise ValueError("must be a comma-separated list")


CommaList = Annotated[list[str], NoDecode]


class PaymentSettings(ServiceSettings):
    port: int = Field(default=3004, validation_alias="PAYMENT_PORT")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/ecommerce_payment",
        validation_alias="PAYMENT_DATABASE_URL",
    )

    # --- M-Pesa (Daraja) ---------------------------------------------------------
    mpesa_environment: Literal["sandbox", "production", "simulator"] = Field(
        default="sandbox", validation_alias="MPESA_ENVIRONMENT"
    )
    # Overrides the environment's base URL (a proxy, or the simulator elsewhere).
    mpesa_base_url: str | None = Field(default=None, validation_alias="MPESA_BASE_URL")
    mpesa_consumer_key: SecretStr | None = Field(
        default=None, validation_alias="MPESA_CONSUMER_KEY"
    )
    mpesa_consumer_secret: SecretStr | None = Field(
        default=None, validation_alias="MPESA_CONSUMER_SECRET"
    )
    mpesa_shortcode: str | None = Field(default=None, validation_alias="MPESA_SHORTCODE")
    mpesa_passkey: SecretStr | None = Field(default=None, validation_alias="MPESA_PASSKEY")
    mpesa_transaction_type: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"] = Field(
        default="CustomerPayBillOnline", validation_alias="MPESA_TRANSACTION_TYPE"
    )
    # The till number for CustomerBuyGoodsOnline; the shortcode when unset.
    mpesa_party_b: str | None = Field(default=None, validation_alias="MPESA_PARTY_B")
    # Public URL of the callback route, without the secret (the gateway's
    # .../api/payments/webhook/mpesa); the secret is appended as the last segment.
    mpesa_callback_url: str | None = Field(default=None, validation_alias="MPESA_CALLBACK_URL")
    mpesa_callback_secret: SecretStr | None = Field(
        default=None, validation_alias="MPESA_CALLBACK_SECRET"
    )
    mpesa_max_amount: Decimal = Field(
        default=Decimal("150000"), gt=0, validation_alias="MPESA_MAX_AMOUNT"
    )
    # Ask Daraja (STK Query) before believing a success callback.
    mpesa_verify_callbacks: bool = Field(default=True, validation_alias="MPESA_VERIFY_CALLBACKS")
    # IPs / CIDRs callbacks may come from (empty: any; the secret is still required).
    mpesa_callback_allowed_ips: CommaList = Field(
        default_factory=list, validation_alias="MPESA_CALLBACK_ALLOWED_IPS"
    )
    # IPs / CIDRs of the proxies in front of this service (the gateway): only when the
    # direct peer is one of them are its X-Real-IP / X-Forwarded-For believed as the
    # caller's address (what MPESA_CALLBACK_ALLOWED_IPS judges); otherwise the peer's.
    trusted_proxies: CommaList = Field(default_factory=list, validation_alias="TRUSTED_PROXIES")
    # Reconciliation: ask STK Query about a payment still processing after this many
    # seconds; cancel it after MPESA_EXPIRE_AFTER seconds without a result.
    mpesa_query_after: float = Field(default=60, ge=0, validation_alias="MPESA_QUERY_AFTER")
    mpesa_expire_after: float = Field(default=300, gt=0, validation_alias="MPESA_EXPIRE_AFTER")
    mpesa_reconcile_interval: float = Field(
        default=15, gt=0, validation_alias="MPESA_RECONCILE_INTERVAL"
    )
    # Seconds to wait for Daraja on one call.
    mpesa_timeout: float = Field(default=30, gt=0, validation_alias="MPESA_TIMEOUT")

    # --- Stripe -------------------------------------------------------------------
    stripe_secret_key: SecretStr | None = Field(default=None, validation_alias="STRIPE_SECRET_KEY")
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="STRIPE_WEBHOOK_SECRET"
    )
    # Overrides https://api.stripe.com (a local fake such as stripe-mock).
    stripe_api_base: str | None = Field(default=None, validation_alias="STRIPE_API_BASE")
    # e.g. "card" or "card,link"; unset: automatic_payment_methods.
    stripe_payment_method_types: CommaList = Field(
        default_factory=list, validation_alias="STRIPE_PAYMENT_METHOD_TYPES"
    )
    stripe_timeout: float = Field(default=30, gt=0, validation_alias="STRIPE_TIMEOUT")

    # --- Background work ------------------------------------------------------------
    outbox_interval: float = Field(default=1.0, gt=0, validation_alias="PAYMENT_OUTBOX_INTERVAL")
    # The money reconciliation worker (docs/reconciliation.md): how often it compares
    # payments, orders and providers and repairs what is safe, over how many past days.
    reconciliation_interval: float = Field(
        default=300, gt=0, validation_alias="RECONCILIATION_INTERVAL"
    )
    reconciliation_window_days: float = Field(
        default=7, gt=0, le=366, validation_alias="RECONCILIATION_WINDOW_DAYS"
    )

    _split_lists = field_validator(
        "mpesa_callback_allowed_ips",
        "stripe_payment_method_types",
        "trusted_proxies",
        mode="before",
    )(_comma_separated)

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _networks_only(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # ValueError: "... does not appear to be an IPv4 or IPv6 network"
        return value

    @property
    def trusted_proxy_networks(self) -> list[Network]:
        return parse_networks(self.trusted_proxies)

    @field_validator("store_currency", mode="after")
    @classmethod
    def _upper_currency(cls, value: str) -> str:
        return value.upper()

    @property
    def daraja_base_url(self) -> str:
        return (self.mpesa_base_url or DARAJA_BASE_URLS[self.mpesa_environment]).rstrip("/")

    @property
    def mpesa_configured(self) -> bool:
        return all(
            (
                self.mpesa_consumer_key,
                self.mpesa_consumer_secret,
                self.mpesa_shortcode,
                self.mpesa_passkey,
                self.mpesa_callback_url,
                self.mpesa_callback_secret,
            )
        )

    def secrets_to_check(self) -> dict[str, str | None]:
        secrets = super().secrets_to_check()
        if self.mpesa_callback_secret is not None:
            secrets["MPESA_CALLBACK_SECRET"] = self.mpesa_callback_secret.get_secret_value()
        return secrets


@lru_cache
def get_settings() -> PaymentSettings:
    return PaymentSettings()
