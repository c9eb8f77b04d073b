"""The reminder schedule and the notification deliveries.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from domain.adapters.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reminder_schedule",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("spec", sa.String(64), nullable=False),
        sa.Column("fire_at", UTCDateTime(), nullable=False),
        sa.Column("task_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_reminder_due", "reminder_schedule", ["state", "fire_at"])
    op.create_index("ix_reminder_user_due", "reminder_schedule", ["user_id", "state", "fire_at"])
    op.create_index("ix_reminder_task", "reminder_schedule", ["task_id"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("reminder_id", sa.String(120), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(36), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("event_id", "channel", name="uq_delivery_event_channel"),
    )
    op.create_index("ix_delivery_pending", "notification_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_delivery_user", "notification_deliveries", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("notification_deliveries")
    op.drop_table("reminder_schedule")
