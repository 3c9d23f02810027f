"""one spelling of cancelled: a refund Stripe cancels is `cancelled`, as a payment is

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_refunds_status"), "refunds", type_="check")
    op.execute("UPDATE refunds SET status = 'cancelled' WHERE status = 'canceled'")
    op.create_check_constraint(
        op.f("ck_refunds_status"),
        "refunds",
        "status IN ('pending', 'succeeded', 'failed', 'cancelled')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_refunds_status"), "refunds", type_="check")
    op.execute("UPDATE refunds SET status = 'canceled' WHERE status = 'cancelled'")
    op.create_check_constraint(
        op.f("ck_refunds_status"),
        "refunds",
        "status IN ('pending', 'succeeded', 'failed', 'canceled')",
    )
