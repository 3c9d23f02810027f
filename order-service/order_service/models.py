"""The order service's tables (its own database; migrations in migrations/versions)."""

from sqlalchemy.orm import DeclarativeBase

from shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()
