"""tenants: storage quota override and the bytes their assets and outputs take (backfilled);
indexes for retention: assets by creation, jobs with an output by when they finished

Revision ID: e7a1c5d93b20
Revises: d4b8e2f1a7c3
Create Date: 2026-11-30 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7a1c5d93b20"
down_revision: str | None = "d4b8e2f1a7c3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("storage_quota_bytes", sa.BigInteger(), nullable=True))
    op.add_column(
        "tenants",
        sa.Column("storage_used_bytes", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_index("ix_assets_created", "assets", ["created_at"])
    op.create_index(
        "ix_jobs_output_finished",
        "jobs",
        ["finished_at"],
        postgresql_where=sa.text("output IS NOT NULL"),
    )
    # What is already stored: every asset, and every job's video (older rows have no poster
    # size recorded; `nemo-batch tenant usage --recount` counts them the same way).
    op.execute(
        """
        UPDATE tenants SET storage_used_bytes = COALESCE((
            SELECT SUM(size) FROM assets WHERE assets.tenant_id = tenants.id), 0)
          + COALESCE((
            SELECT SUM(COALESCE((output->>'stored_bytes')::bigint, (output->>'size')::bigint, 0))
            FROM jobs WHERE jobs.tenant_id = tenants.id AND output ? 'path'), 0)
        """
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_output_finished", table_name="jobs")
    op.drop_index("ix_assets_created", table_name="assets")
    op.drop_column("tenants", "storage_used_bytes")
    op.drop_column("tenants", "storage_quota_bytes")
