"""The payment service's tables (its own database; migrations in migrations/versions)."""

import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from payment_service.lifecycle import IN_FLIGHT, EventOutcome, PaymentStatus, Provider, RefundStatus
from shared.db import Timestamps, UUIDPrimaryKey, new_metadata
from shared.idempotency import IdempotencyKeyMixin
from shared.outbox import OutboxMessageMixin


def _in(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


# In the order of PaymentStatus (the statuses of in-flight payments, in that order too,
# are the partial index's predicate: its text must stay as the migration wrote it).
IN_FLIGHT_PREDICATE = f"status IN ({_in(s for s in PaymentStatus if s in IN_FLIGHT)})"


class Base(DeclarativeBase):
    metadata = new_metadata()


class Payment(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "payments"
    # Timestamps set by the database come back with RETURNING: readable after commit.
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        CheckConstraint(f"provider IN ({_in(Provider)})", name="provider"),
        CheckConstraint(f"status IN ({_in(PaymentStatus)})", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= amount", name="refund_within_amount"
        ),
        # One attempt in flight per order, whatever the concurrency.
        Index(
            "uq_payments_order_in_flight",
            "order_id",
            unique=True,
            postgresql_where=text(IN_FLIGHT_PREDICATE),
        ),
        # A provider's reference (CheckoutRequestID, PaymentIntent id) names one payment.
        Index(
            "uq_payments_provider_reference",
            "provider",
            "external_reference",
            unique=True,
            postgresql_where=text("external_reference IS NOT NULL"),
        ),
        # The reconciliation worker's query.
        Index(
            "ix_payments_open",
            "provider",
            "created_at",
            postgresql_where=text(IN_FLIGHT_PREDICATE),
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    provider: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(
        String(20), default=PaymentStatus.PENDING, server_default=PaymentStatus.PENDING
    )
    # CheckoutRequestID (M-Pesa) or PaymentIntent id (Stripe).
    external_reference: Mapped[str | None] = mapped_column(String(255))
    # MpesaReceiptNumber (M-Pesa) or the charge id (Stripe): one payment each.
    transaction_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    phone_number: Mapped[str | None] = mapped_column(String(12))
    # "metadata" is the column's name (the original's); the attribute cannot be.
    details: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    error_message: Mapped[str | None] = mapped_column(Text)
    refunded_amount: Mapped[Decimal] = mapped_column(
        Numeric(12, 2), default=Decimal("0.00"), server_default="0"
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # M-Pesa status poller: not looked at again before this moment (lease and pacing).
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Refund(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "refunds"
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(RefundStatus)})", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    payment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(
        String(20), default=RefundStatus.PENDING, server_default=RefundStatus.PENDING
    )
    reason: Mapped[str | None] = mapped_column(String(500))
    # Stripe's refund id (re_...).
    provider_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Made outside this system (the M-Pesa portal) and recorded here.
    manual: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reference: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    error_message: Mapped[str | None] = mapped_column(Text)


class ProviderEvent(UUIDPrimaryKey, Base):
    """Every webhook and callback received, as received: Stripe event ids are processed
    once (the unique index), and M-Pesa callbacks are kept for audit, unknown ones too."""

    __tablename__ = "provider_events"
    __table_args__ = (
        Index(
            "uq_provider_events_event",
            "provider",
            "event_id",
            unique=True,
            postgresql_where=text("event_id IS NOT NULL"),
        ),
    )

    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str | None] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    # CheckoutRequestID or PaymentIntent id, when there is one.
    reference: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_id: Mapped[uuid.UUID | None] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # What was done with it ("completed", "duplicate", "unknown payment", ...).
    outcome: Mapped[str] = mapped_column(String(255), default=EventOutcome.RECEIVED)
    source_ip: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class IdempotencyKey(IdempotencyKeyMixin, Base):
    """`Idempotency-Key` of the payment and refund POSTs (shared.idempotency)."""

    __tablename__ = "idempotency_keys"


class OutboxMessage(OutboxMessageMixin, Base):
    __tablename__ = "outbox_messages"
