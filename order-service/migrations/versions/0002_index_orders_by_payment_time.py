"""index orders by the time they were paid (the admin console's revenue per day)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_paid_at", "orders", ["paid_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_paid_at", table_name="orders")
