"""idempotency keys as every service keeps them (shared.idempotency)

The key no longer points at its order: it is claimed before the order row exists and
freed by the mechanism itself when the request is refused. `request_hash` is the shared
table's `fingerprint`; keys are forgotten by age, hence the index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_order_id"), table_name="idempotency_keys")
    op.drop_constraint(
        op.f("fk_idempotency_keys_order_id_orders"), "idempotency_keys", type_="foreignkey"
    )
    op.drop_column("idempotency_keys", "order_id")
    op.alter_column("idempotency_keys", "request_hash", new_column_name="fingerprint")
    op.create_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.alter_column("idempotency_keys", "fingerprint", new_column_name="request_hash")
    # A key without its order cannot be given one back: the keys are forgotten.
    op.execute("DELETE FROM idempotency_keys")
    op.add_column("idempotency_keys", sa.Column("order_id", sa.Uuid(), nullable=False))
    op.create_foreign_key(
        op.f("fk_idempotency_keys_order_id_orders"),
        "idempotency_keys",
        "orders",
        ["order_id"],
        ["id"],
        ondelete="CASCADE",
        deferrable=True,
        initially="DEFERRED",
    )
    op.create_index(op.f("ix_idempotency_keys_order_id"), "idempotency_keys", ["order_id"])
