"""Audit history: who and why on each entry, extra payload details, an append-only guard, leases.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from domain.adapters.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_COLUMNS = ("causation_id", "source", "task_title", "details")

# Entries are never rewritten: the database refuses an UPDATE whoever asks. DELETE stays possible
# for the retention policy, the one path that removes entries.
# (one statement per execute: asyncpg prepares each one)
_PG_GUARD = (
    """
    CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: entries are never updated';
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
    """,
)
_SQLITE_GUARD = (
    """
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN
        SELECT RAISE(ABORT, 'audit_log is append-only: entries are never updated');
    END
    """,
)


def upgrade() -> None:
    # plain ADD COLUMNs, done in place on SQLite too
    op.add_column("audit_log", sa.Column("causation_id", sa.String(64), nullable=True))
    op.add_column("audit_log", sa.Column("source", sa.String(100), nullable=True))
    op.add_column("audit_log", sa.Column("task_title", sa.String(500), nullable=True))
    op.add_column("audit_log", sa.Column("details", sa.JSON(), nullable=True))
    # retention deletes by age across all users
    op.create_index("ix_audit_occurred", "audit_log", ["occurred_at", "id"])
    for statement in _PG_GUARD if op.get_bind().dialect.name == "postgresql" else _SQLITE_GUARD:
        op.execute(statement)
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.execute("DROP TRIGGER audit_log_no_update" + _on_table())
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_index("ix_audit_occurred", table_name="audit_log")
    for column in reversed(NEW_COLUMNS):
        op.drop_column("audit_log", column)  # SQLite >= 3.35 drops columns in place


def _on_table() -> str:
    return " ON audit_log" if op.get_bind().dialect.name == "postgresql" else ""
