"""The console's settings, from the environment and `.env` (documented in .env.example)."""

from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo, available_timezones

from babel import Locale, UnknownLocaleError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.keys import (
    is_development_key,
    private_key_setting,
)


class ConsoleSettings(BaseSettings):
    # A key or secret never appears in an error message (pydantic would show the input).
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    environment: Literal["development", "production", "test"] = Field(
        default="development", validation_alias=AliasChoices("ENVIRONMENT", "NODE_ENV")
    )
    # Behind the gateway: loopback (or the internal network), never published itself.
    host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("ADMIN_CONSOLE_HOST", "HOST")
    )
    port: int = Field(default=3006, validation_alias="ADMIN_CONSOLE_PORT")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    # Worker processes serving the port (shared.server).
    web_concurrency: int = Field(default=1, ge=1, le=64, validation_alias="WEB_CONCURRENCY")

    # The public API the pages are made of.
    gateway_url: str = Field(default="http://127.0.0.1:5000", validation_alias="GATEWAY_URL")
    # Seconds one API call may take before the page says the API does not answer.
    api_timeout: float = Field(default=15.0, gt=0, validation_alias="ADMIN_CONSOLE_API_TIMEOUT")
    # The console's own Ed25519 key (PEM, or a file): proves to the gateway that a call
    # comes from the console (identity `admin-console`), so that the gateway counts it
    # against the signed-in person's address (rate limits), not the console's.
    internal_private_key_text: SecretStr | None = Field(
        default=None, validation_alias="INTERNAL_PRIVATE_KEY"
    )
    internal_private_key_file: Path | None = Field(
        default=None, validation_alias="INTERNAL_PRIVATE_KEY_FILE"
    )

    # How the shop shows money and time.
    store_currency: str = Field(
        default="KES", min_length=3, max_length=3, validation_alias="STORE_CURRENCY"
    )
    shop_timezone: str = Field(default="Africa/Nairobi", validation_alias="SHOP_TIMEZONE")
    shop_locale: str = Field(default="en_KE", validation_alias="SHOP_LOCALE")
    # The overview lists active products with at most this many in stock.
    low_stock_threshold: int = Field(default=5, ge=0, validation_alias="LOW_STOCK_THRESHOLD")

    @field_validator("shop_timezone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Africa/Nairobi)")
        return value

    @field_validator("shop_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        try:
            Locale.parse(value)
        except (ValueError, UnknownLocaleError):
            raise ValueError(f"unknown locale {value!r} (e.g. en_KE, sw_KE)") from None
        return value

    @model_validator(mode="after")
    def _read_internal_key(self) -> Self:
        """Read (and check) the key now: without it the console does not start; production
        refuses the development one."""
        if self.is_production and is_development_key(self.internal_private_key):
            raise ValueError(
                "INTERNAL_PRIVATE_KEY is a development key (docker-compose.yml): production "
                "needs its own (`openssl genpkey -algorithm ed25519`)"
            )
        return self

    @cached_property
    def internal_private_key(self) -> Ed25519PrivateKey:
        text = self.internal_private_key_text
        return private_key_setting(
            text.get_secret_value() if text else None,
            self.internal_private_key_file,
            "INTERNAL_PRIVATE_KEY",
            what="the console's own Ed25519 key (`make run` generates one into .data/)",
        )

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def secure_cookies(self) -> bool:
        # Browsers keep a Secure cookie only from HTTPS (and http://localhost).
        return self.environment != "development"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.shop_timezone)


@lru_cache
def get_settings() -> ConsoleSettings:
    return ConsoleSettings()
