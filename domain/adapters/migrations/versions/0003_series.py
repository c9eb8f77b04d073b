"""Recurring series: the series start and exdates, and the links between occurrences.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs: SQLite does them in place (a batch copy of `tasks` would cascade-delete
    # its tags when the old table is dropped with foreign keys on)
    op.add_column("tasks", sa.Column("recurrence_start", sa.String(32), nullable=True))
    op.add_column(
        "tasks", sa.Column("recurrence_exdates", sa.JSON(), nullable=False, server_default="[]")
    )
    op.add_column("tasks", sa.Column("recurred_from", sa.String(36), nullable=True))
    op.add_column("tasks", sa.Column("recurred_to", sa.String(36), nullable=True))
    op.add_column(
        "tasks",
        sa.Column("series_ended", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # at most one next occurrence per completed occurrence, however often completion is delivered
    op.create_index(
        "ux_tasks_recurred_from",
        "tasks",
        ["recurred_from"],
        unique=True,
        postgresql_where=sa.text("recurred_from IS NOT NULL"),
        sqlite_where=sa.text("recurred_from IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ux_tasks_recurred_from", table_name="tasks")
    for column in (
        "series_ended",
        "recurred_to",
        "recurred_from",
        "recurrence_exdates",
        "recurrence_start",
    ):
        op.drop_column("tasks", column)  # SQLite >= 3.35 drops columns in place
