from functools import lru_cache
from typing import Self

from pydantic import Field, SecretStr, model_validator

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
