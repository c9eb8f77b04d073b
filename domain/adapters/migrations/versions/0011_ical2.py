"""Calendar feeds: each task's component as a feed shows it, kept across restarts and replicas.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_renders",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("form", sa.String(8), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tzids", sa.Text(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=True),
        sa.Column("last_day", sa.Date(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("calendar_renders")
