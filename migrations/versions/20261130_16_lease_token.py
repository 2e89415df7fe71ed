"""jobs: lease_token, the fencing token of a step's lease

Revision ID: 5d2b7e9c4f16
Revises: c3e1f4a9b2d7
Create Date: 2026-11-30 11:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d2b7e9c4f16"
down_revision: str | None = "c3e1f4a9b2d7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_token", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "lease_token")
