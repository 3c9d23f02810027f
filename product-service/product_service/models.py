"""The product service's tables (its own database; migrations in migrations/versions)."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db import Timestamps, UUIDPrimaryKey, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


# The public catalogue only ever reads active products, so the indexes behind its filters
# and sort orders are partial (`WHERE is_active`): smaller, and exactly what it asks.
_ACTIVE = text("is_active")


class Product(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("weight >= 0", name="weight_not_negative"),
        # Sort orders, each ending in `id` so that equal keys still have one order.
        Index(
            "ix_products_active_newest",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=_ACTIVE,
        ),
        Index("ix_products_active_price", "price", "id", postgresql_where=_ACTIVE),
        Index("ix_products_active_name", func.lower(text("name")), "id", postgresql_where=_ACTIVE),
        # Lowest stock first: the admin console's low-stock list (maxStock, stock_asc).
        Index("ix_products_active_stock", "stock", "id", postgresql_where=_ACTIVE),
        Index(
            "ix_products_active_category",
            "category",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=_ACTIVE,
        ),
        # Substring search (ILIKE '%...%') over name and description: trigram GIN indexes,
        # one per column; the planner ORs their bitmaps.
        Index(
            "ix_products_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index(
            "ix_products_description_trgm",
            "description",
            postgresql_using="gin",
            postgresql_ops={"description": "gin_trgm_ops"},
        ),
        # Admins list inactive products too (includeInactive=true).
        Index("ix_products_newest", text("created_at DESC"), text("id DESC")),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    stock: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    category: Mapped[str | None] = mapped_column(String(100))
    image_url: Mapped[str | None] = mapped_column(String(2048))
    images: Mapped[list[str]] = mapped_column(
        ARRAY(String(2048)), default=list, server_default="{}"
    )
    # Unique when set (PostgreSQL lets many rows have none).
    sku: Mapped[str | None] = mapped_column(String(100), unique=True)
    # Kilograms.
    weight: Mapped[Decimal | None] = mapped_column(Numeric(10, 3))
    dimensions: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class ReservationStatus(StrEnum):
    ACTIVE = "active"  # the order holds the stock
    RELEASED = "released"  # given back (or released before any reservation came)


class StockReservation(Base):
    """What one order took from the stock: at most one per order (the order id is the key,
    so a retried reservation finds the first one instead of taking stock again). Released
    reservations stay, so a late retry of the reservation cannot take the stock again."""

    __tablename__ = "stock_reservations"
    __table_args__ = (
        CheckConstraint(
            f"status IN ({', '.join(repr(str(s)) for s in ReservationStatus)})", name="status"
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(
        String(20), default=ReservationStatus.ACTIVE, server_default=ReservationStatus.ACTIVE
    )
    # The service that made the row (the issuer of its internal token).
    caller: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    items: Mapped[list["StockReservationItem"]] = relationship(
        order_by="StockReservationItem.position", lazy="raise"
    )


class StockReservationItem(Base):
    """One product of a reservation: how many were taken, at what unit price and name."""

    __tablename__ = "stock_reservation_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stock_reservations.order_id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id"), primary_key=True, index=True
    )
    # The item's place in the request, so a repeated call answers the same body.
    position: Mapped[int] = mapped_column(SmallInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    product_name: Mapped[str] = mapped_column(String(200))
