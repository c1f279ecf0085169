"""Blobs owned by namespaces; metric values may be NULL (NaN).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "namespace_blobs",
        sa.Column("namespace", sa.String(length=63), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "digest", name=op.f("pk_namespace_blobs")),
    )
    # Blobs already in use belong to the namespaces that use them.
    op.execute(
        "INSERT INTO namespace_blobs (namespace, digest, size, created_at, created_by) "
        "SELECT DISTINCT runs.namespace, run_artifacts.digest, run_artifacts.size, 0, 'migration' "
        "FROM run_artifacts JOIN runs ON runs.id = run_artifacts.run_id"
    )
    op.execute(
        "INSERT INTO namespace_blobs (namespace, digest, size, created_at, created_by) "
        "SELECT DISTINCT mv.namespace, mv.artifact_digest, mv.artifact_size, 0, 'migration' FROM model_versions mv "
        "WHERE NOT EXISTS (SELECT 1 FROM namespace_blobs nb WHERE nb.namespace = mv.namespace AND nb.digest = mv.artifact_digest)"
    )
    with op.batch_alter_table("metrics") as batch:
        batch.alter_column("value", existing_type=sa.Float(), nullable=True)
    with op.batch_alter_table("latest_metrics") as batch:
        batch.alter_column("value", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM metrics WHERE value IS NULL")
    op.execute("DELETE FROM latest_metrics WHERE value IS NULL")
    with op.batch_alter_table("latest_metrics") as batch:
        batch.alter_column("value", existing_type=sa.Float(), nullable=False)
    with op.batch_alter_table("metrics") as batch:
        batch.alter_column("value", existing_type=sa.Float(), nullable=False)
    op.drop_table("namespace_blobs")
