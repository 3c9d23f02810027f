"""create products, with the indexes of the catalogue's filters and its text search

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Trigram indexes make ILIKE '%...%' searches use an index. A trusted extension since
    # PostgreSQL 13: the database's owner may create it, no superuser needed.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("stock", sa.Integer(), server_default="0", nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "images", postgresql.ARRAY(sa.String(length=2048)), server_default="{}", nullable=False
        ),
        sa.Column("sku", sa.String(length=100), nullable=True),
        sa.Column("weight", sa.Numeric(precision=10, scale=3), nullable=True),
        sa.Column("dimensions", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_products_price_not_negative")),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_products_stock_not_negative")),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_products_weight_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_products_sku")),
    )
    active = sa.text("is_active")
    op.create_index(
        "ix_products_active_newest",
        "products",
        [sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=active,
    )
    op.create_index(
        "ix_products_active_price", "products", ["price", "id"], postgresql_where=active
    )
    op.create_index(
        "ix_products_active_name",
        "products",
        [sa.text("lower(name)"), "id"],
        postgresql_where=active,
    )
    op.create_index(
        "ix_products_active_category",
        "products",
        ["category", sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=active,
    )
    op.create_index(
        "ix_products_name_trgm",
        "products",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_products_description_trgm",
        "products",
        ["description"],
        postgresql_using="gin",
        postgresql_ops={"description": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_products_newest", "products", [sa.text("created_at DESC"), sa.text("id DESC")]
    )


def downgrade() -> None:
    op.drop_table("products")  # its indexes go with it; pg_trgm may serve others: kept
