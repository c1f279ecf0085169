"""Model versions may carry an ONNX export beside their main artifact.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("onnx_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("onnx_size", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("onnx_size")
        batch.drop_column("onnx_digest")
