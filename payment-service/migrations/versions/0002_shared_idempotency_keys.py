"""idempotency keys as every service keeps them (shared.idempotency): `status_code` is
the shared table's `response_status`

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
    op.alter_column("idempotency_keys", "status_code", new_column_name="response_status")


def downgrade() -> None:
    op.alter_column("idempotency_keys", "response_status", new_column_name="status_code")
