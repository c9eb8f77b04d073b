"""iCalendar: the UIDs imported per user and the private calendar feeds.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from domain.adapters.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_links",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("uid", sa.String(255), primary_key=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("last_modified", UTCDateTime(), nullable=True),
        sa.Column("task_version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_calendar_links_task", "calendar_links", ["user_id", "task_id"])
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("events", sa.Boolean(), nullable=False),
        sa.Column("token_id", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_calendar_feeds_user", "calendar_feeds", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("calendar_feeds")
    op.drop_table("calendar_links")
