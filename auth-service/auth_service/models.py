from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, String, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import Timestamps, UUIDPrimaryKey, new_metadata

ROLES = ("customer", "admin")


class Base(DeclarativeBase):
    metadata = new_metadata()


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('customer', 'admin')", name="role"),)

    name: Mapped[str] = mapped_column(String(100))
    # Stored lower-cased, so the unique constraint is case-insensitive in effect.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="customer", server_default="customer")
    phone_number: Mapped[str | None] = mapped_column(String(12))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Tokens issued before this moment are refused (set when the password changes).
    tokens_valid_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
