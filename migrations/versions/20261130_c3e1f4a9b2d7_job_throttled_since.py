"""jobs: throttled_since, since when a job has been waiting on the backend's 429s

Revision ID: c3e1f4a9b2d7
Revises: a6a83637468b
Create Date: 2026-11-30 10:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3e1f4a9b2d7"
down_revision: str | None = "a6a83637468b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("throttled_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "throttled_since")
