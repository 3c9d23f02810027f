"""create stock reservations (one per order) and their items

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stock_reservations",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column("caller", sa.String(length=50), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'released')", name=op.f("ck_stock_reservations_status")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_stock_reservations")),
    )
    op.create_table(
        "stock_reservation_items",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "quantity > 0", name=op.f("ck_stock_reservation_items_quantity_positive")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["stock_reservations.order_id"],
            name=op.f("fk_stock_reservation_items_order_id_stock_reservations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_stock_reservation_items_product_id_products"),
        ),
        sa.PrimaryKeyConstraint("order_id", "product_id", name=op.f("pk_stock_reservation_items")),
    )
    op.create_index(
        op.f("ix_stock_reservation_items_product_id"),
        "stock_reservation_items",
        ["product_id"],
    )


def downgrade() -> None:
    op.drop_table("stock_reservation_items")
    op.drop_table("stock_reservations")
