"""The cart service's tables (its own database; migrations in migrations/versions).

A cart belongs to one user (unique `user_id`: concurrent first visits make one cart).
A line holds one product once (unique `(cart_id, product_id)`); its name, price and
image are the product service's at the line's last change, and `subtotal` is always
`price * quantity` (a CHECK, so no code path can store anything else).
"""

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import Timestamps, UUIDPrimaryKey, new_metadata

MONEY = Numeric(12, 2)


class Base(DeclarativeBase):
    metadata = new_metadata()


class Cart(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "carts"
    __table_args__ = (
        CheckConstraint("total_amount >= 0", name="total_amount_not_negative"),
        CheckConstraint("item_count >= 0", name="item_count_not_negative"),
        # The expiry purge's query.
        Index("ix_carts_expires_at", "expires_at"),
    )
    # Server-set columns (updated_at) come back with the write: the response needs them.
    __mapper_args__ = {"eager_defaults": True}

    user_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    # Sum of the lines' subtotals and of their quantities, at the stored prices.
    total_amount: Mapped[Decimal] = mapped_column(
        MONEY, default=Decimal("0.00"), server_default="0"
    )
    item_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Moved forward by every change; an expired cart is emptied (see docs/cart.md).
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CartItem(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "cart_items"
    __table_args__ = (
        UniqueConstraint("cart_id", "product_id", name="uq_cart_items_cart_id_product_id"),
        CheckConstraint("quantity BETWEEN 1 AND 1000", name="quantity_range"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("subtotal = price * quantity", name="subtotal_is_price_times_quantity"),
    )
    __mapper_args__ = {"eager_defaults": True}

    cart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID]
    product_name: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(MONEY)
    quantity: Mapped[int] = mapped_column(Integer)
    subtotal: Mapped[Decimal] = mapped_column(MONEY)
    image_url: Mapped[str | None] = mapped_column(Text)
