import uuid
from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, Field, StrictBool, StringConstraints, WithJsonSchema

from shared.phone import KENYAN_PHONE_PATTERN, normalize_kenyan_phone
from shared.schemas import CamelModel, RequestModel, without_null


def normalize_email(value: str) -> str:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"must be a valid email address ({exc})") from None
    return result.normalized.lower()


def _normalize_phone(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    return normalize_kenyan_phone(value)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254),
    AfterValidator(normalize_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
# Passwords are taken exactly as typed: no stripping.
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
# Optional: "" or null is no number.
Phone = Annotated[
    str | None,
    AfterValidator(_normalize_phone),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": f"^$|{KENYAN_PHONE_PATTERN}"}, {"type": "null"}]}
    ),
]


class RegisterRequest(RequestModel):
    name: Name
    email: Email
    password: Password
    phone_number: Phone = None


class LoginRequest(RequestModel):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class ProfileUpdate(RequestModel):
    # A name may be left out, not sent as null (accounts.update_profile refuses it).
    model_config = RequestModel.model_config | {
        "json_schema_extra": lambda schema, _: without_null(schema, {"name"})
    }

    name: Name | None = None
    phone_number: Phone = None


class ChangePasswordRequest(RequestModel):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: Password


class AdminUserUpdate(RequestModel):
    role: Literal["customer", "admin"] | None = None
    # JSON true or false only (0, 1, "yes" are not booleans: the document says boolean).
    is_active: StrictBool | None = None


class UserOut(CamelModel):
    id: uuid.UUID
    name: str
    email: str
    role: str
    phone_number: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class AuthResponse(CamelModel):
    message: str
    token: str
    user: UserOut


class UserEnvelope(CamelModel):
    user: UserOut


class MessageWithUser(CamelModel):
    message: str
    user: UserOut


class PasswordChanged(CamelModel):
    message: str
    token: str = Field(description="A new token; tokens issued before the change no longer work.")


class UserList(CamelModel):
    users: list[UserOut]
    total_pages: int
    current_page: int
    total_users: int


class VerifiedClaims(CamelModel):
    id: uuid.UUID
    email: str
    role: str
    iat: int
    exp: int


class VerifyResponse(CamelModel):
    user: VerifiedClaims


class UserStatusOut(CamelModel):
    id: uuid.UUID
    role: str
    is_active: bool
    tokens_valid_after: int


class UserStatusEnvelope(CamelModel):
    user: UserStatusOut


class JsonWebKey(BaseModel):
    """An Ed25519 public key (RFC 8037), named by its RFC 7638 thumbprint."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    use: Literal["sig"]
    alg: Literal["EdDSA"]


class Jwks(BaseModel):
    keys: list[JsonWebKey]
