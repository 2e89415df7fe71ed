"""tenants: the previous webhook secret and until when it still signs (rotation overlap);
schedules: running_until, set while a run is in progress (one run at a time)

Revision ID: d4b8e2f1a7c3
Revises: 5d2b7e9c4f16
Create Date: 2026-11-30 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4b8e2f1a7c3"
down_revision: str | None = "5d2b7e9c4f16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "tenants", sa.Column("previous_webhook_secret", sa.String(length=100), nullable=True)
    )
    op.add_column(
        "tenants",
        sa.Column("previous_webhook_secret_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "schedules", sa.Column("running_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("schedules", "running_until")
    op.drop_column("tenants", "previous_webhook_secret_until")
    op.drop_column("tenants", "previous_webhook_secret")
