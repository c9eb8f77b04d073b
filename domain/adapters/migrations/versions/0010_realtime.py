"""The realtime gateway's per-user change feed and its tickets, sessions and sign-in links.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from domain.adapters.tables import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "realtime_changes",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("position", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_realtime_task", "realtime_changes", ["task_id", "topic", "sequence"])
    op.create_table(
        "realtime_heads",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "realtime_grants",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("token_id", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_realtime_grants_expiry", "realtime_grants", ["expires_at"])


def downgrade() -> None:
    op.drop_table("realtime_grants")
    op.drop_table("realtime_heads")
    op.drop_table("realtime_changes")
