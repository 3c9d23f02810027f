from functools import cached_property, lru_cache
from pathlib import Path
from typing import Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, SecretStr, model_validator

from shared.keys import (
    InvalidKey,
    load_public_keys,
    private_key_setting,
    read_setting,
    thumbprint,
)
from shared.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    port: int = Field(default=3001, validation_alias="AUTH_PORT")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/ecommerce_auth",
        validation_alias="AUTH_DATABASE_URL",
    )
    # The first admin, created at start when both are set (and never overwritten).
    admin_email: str | None = Field(default=None, validation_alias="ADMIN_EMAIL")
    admin_password: SecretStr | None = Field(default=None, validation_alias="ADMIN_PASSWORD")
    admin_name: str = Field(default="Administrator", validation_alias="ADMIN_NAME")
    # The one key user tokens are signed with (Ed25519, PEM): only this service holds it.
    # Rotation: a new key here, the old one's public half in JWT_PREVIOUS_PUBLIC_KEYS (one
    # PEM block after the other) until the tokens it signed have expired (JWT_EXPIRES_IN).
    jwt_private_key_text: SecretStr | None = Field(default=None, validation_alias="JWT_PRIVATE_KEY")
    jwt_private_key_file: Path | None = Field(default=None, validation_alias="JWT_PRIVATE_KEY_FILE")
    jwt_previous_public_keys_text: str | None = Field(
        default=None, validation_alias="JWT_PREVIOUS_PUBLIC_KEYS"
    )
    jwt_previous_public_keys_file: Path | None = Field(
        default=None, validation_alias="JWT_PREVIOUS_PUBLIC_KEYS_FILE"
    )

    @model_validator(mode="after")
    def _read_token_keys(self) -> Self:
        """Read (and check) the keys now: without a signing key the service does not start."""
        _ = self.jwt_signing_key, self.jwt_public_keys
        return self

    def keys_to_check(self) -> dict[str, Ed25519PrivateKey]:
        return {**super().keys_to_check(), "JWT_PRIVATE_KEY": self.jwt_signing_key}

    @cached_property
    def jwt_signing_key(self) -> Ed25519PrivateKey:
        text = self.jwt_private_key_text
        return private_key_setting(
            text.get_secret_value() if text else None,
            self.jwt_private_key_file,
            "JWT_PRIVATE_KEY",
            what="the Ed25519 key user tokens are signed with (`openssl genpkey -algorithm "
            "ed25519`; `make run` generates one into .data/)",
        )

    @cached_property
    def jwt_public_keys(self) -> dict[str, Ed25519PublicKey]:
        """kid -> key: the signing key's public half first, then the previous keys."""
        text = read_setting(
            self.jwt_previous_public_keys_text,
            self.jwt_previous_public_keys_file,
            "JWT_PREVIOUS_PUBLIC_KEYS",
        )
        try:
            previous = load_public_keys(text or "")
        except InvalidKey as exc:
            raise ValueError(f"JWT_PREVIOUS_PUBLIC_KEYS: {exc}") from None
        keys = [self.jwt_signing_key.public_key(), *previous]
        return {thumbprint(key): key for key in keys}

    @model_validator(mode="after")
    def _admin_password_is_a_password(self) -> Self:
        if self.admin_email and self.admin_password is not None:
            length = len(self.admin_password.get_secret_value())
            if not 8 <= length <= 128:
                raise ValueError("ADMIN_PASSWORD must be 8 to 128 characters")
        return self


@lru_cache
def get_settings() -> AuthSettings:
    return AuthSettings()
