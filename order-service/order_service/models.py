"""The order service's tables (its own database; migrations in migrations/versions)."""

import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Sequence,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from order_service.lifecycle import ALL_STORED_STATUSES, PaymentStatus
from shared.db import Timestamps, UUIDPrimaryKey, new_metadata
from shared.idempotency import IdempotencyKeyMixin
from shared.outbox import OutboxMessageMixin


def _one_of(column: str, values: Iterable[object]) -> str:
    return f"{column} IN ({', '.join(repr(str(value)) for value in values)})"


PAYMENT_METHODS = ("mpesa", "stripe", "cash_on_delivery")


class Base(DeclarativeBase):
    metadata = new_metadata()


# Order numbers are made from this sequence: unique by construction, whatever the load.
order_number_sequence = Sequence("order_number_seq", metadata=Base.metadata)


class Order(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(_one_of("status", ALL_STORED_STATUSES), name="status"),
        CheckConstraint(_one_of("payment_status", PaymentStatus), name="payment_status"),
        CheckConstraint(
            f"payment_method IS NULL OR {_one_of('payment_method', PAYMENT_METHODS)}",
            name="payment_method",
        ),
        CheckConstraint("total_amount >= 0", name="total_amount"),
        # A customer's orders, newest first.
        Index("ix_orders_user_id_created_at", "user_id", "created_at"),
        # The workers: unpaid orders by age, and rows still being placed.
        Index("ix_orders_status_created_at", "status", "created_at"),
        # Reconciliation reads orders by creation time.
        Index("ix_orders_created_at", "created_at"),
        # The admin console's figures: orders paid per day.
        Index("ix_orders_paid_at", "paid_at"),
    )

    user_id: Mapped[uuid.UUID]
    order_number: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    payment_status: Mapped[str] = mapped_column(
        String(20), default=PaymentStatus.PENDING, server_default=PaymentStatus.PENDING
    )
    payment_method: Mapped[str | None] = mapped_column(String(20))
    total_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=0, server_default="0")
    currency: Mapped[str] = mapped_column(String(3))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB)
    notes: Mapped[str | None] = mapped_column(Text)
    # Every payment of the payment service that settled, failed or refunded this order.
    payment_ids: Mapped[list[str]] = mapped_column(
        ARRAY(String(100)), default=list, server_default="{}"
    )
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    items: Mapped[list["OrderItem"]] = relationship(
        back_populates="order",
        order_by="OrderItem.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    history: Mapped[list["OrderStatusChange"]] = relationship(
        order_by="OrderStatusChange.created_at",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class OrderItem(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity"),
        CheckConstraint("price >= 0", name="price"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    # The line's place in the order, as the client (or the cart) listed it.
    position: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[uuid.UUID]
    # As the product service named it when the stock was reserved (never the client's).
    product_name: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    subtotal: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    order: Mapped[Order] = relationship(back_populates="items")


class OrderStatusChange(UUIDPrimaryKey, Base):
    """The history: one row per change of an order's status or payment status."""

    __tablename__ = "order_status_history"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    payment_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    # clock_timestamp(), not now(): changes made in one transaction keep their order.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )


class IdempotencyKey(IdempotencyKeyMixin, Base):
    """`Idempotency-Key` of POST /api/orders (shared.idempotency)."""

    __tablename__ = "idempotency_keys"


class ProcessedEvent(Base):
    """Event ids of update-status calls already applied: the same event twice changes
    nothing the second time."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OutboxMessage(OutboxMessageMixin, Base):
    """Calls to the product and cart services that must happen (stock release, cart clear)."""

    __tablename__ = "outbox_messages"
