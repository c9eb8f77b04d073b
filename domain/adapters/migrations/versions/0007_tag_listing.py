"""Tag listings read the tag index in creation order.

Revision ID: 0007
Revises: 0006

A listing filtered by a tag read the user's tasks in creation order and looked each one up in
`task_tags` until it had a page: with a tag on a fifth of them, 250 lookups for 50 tasks. The
tag rows now carry their task's status, priority and creation time (the triggers keep them),
and one index orders them so: a listing by tag (and status and a priority) reads its page off
that index and fetches just those tasks. The index replaces (user_id, tag, task_id), whose
lookups it serves as well.
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

from domain.adapters.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LISTING = ["user_id", "tag", "status", "priority_rank", "created_at", "task_id"]
_COPIED = "NEW.status, NEW.priority_rank, NEW.created_at"

# (one statement per execute: asyncpg prepares each one)
_PG_DROP = ("DROP TRIGGER task_tags_follow_tasks ON tasks",)
_PG_TRIGGERS = (
    f"""
    CREATE OR REPLACE FUNCTION task_tags_follow_tasks() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF OLD.tags::text = NEW.tags::text THEN
                IF OLD.status IS DISTINCT FROM NEW.status
                        OR OLD.priority_rank IS DISTINCT FROM NEW.priority_rank THEN
                    UPDATE task_tags SET status = NEW.status, priority_rank = NEW.priority_rank
                        WHERE task_id = NEW.id;
                END IF;
                RETURN NULL;
            END IF;
            DELETE FROM task_tags WHERE task_id = OLD.id;
        END IF;
        INSERT INTO task_tags (task_id, tag, user_id, status, priority_rank, created_at)
            SELECT NEW.id, tag, NEW.user_id, {_COPIED}
            FROM json_array_elements_text(NEW.tags) AS tag;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER task_tags_follow_tasks
        AFTER INSERT OR UPDATE OF tags, status, priority_rank ON tasks
        FOR EACH ROW EXECUTE FUNCTION task_tags_follow_tasks()
    """,
    """
    UPDATE task_tags SET status = tasks.status, priority_rank = tasks.priority_rank,
        created_at = tasks.created_at
    FROM tasks WHERE tasks.id = task_tags.task_id
    """,
)
_SQLITE_DROP = ("DROP TRIGGER task_tags_on_insert", "DROP TRIGGER task_tags_on_update")
_SQLITE_TRIGGERS = (
    f"""
    CREATE TRIGGER task_tags_on_insert AFTER INSERT ON tasks
    BEGIN
        INSERT INTO task_tags (task_id, tag, user_id, status, priority_rank, created_at)
            SELECT NEW.id, value, NEW.user_id, {_COPIED} FROM json_each(NEW.tags);
    END
    """,
    f"""
    CREATE TRIGGER task_tags_on_update AFTER UPDATE OF tags ON tasks
        WHEN OLD.tags IS NOT NEW.tags
    BEGIN
        DELETE FROM task_tags WHERE task_id = OLD.id;
        INSERT INTO task_tags (task_id, tag, user_id, status, priority_rank, created_at)
            SELECT NEW.id, value, NEW.user_id, {_COPIED} FROM json_each(NEW.tags);
    END
    """,
    """
    CREATE TRIGGER task_tags_on_state AFTER UPDATE OF status, priority_rank ON tasks
        WHEN OLD.tags IS NEW.tags
            AND (OLD.status IS NOT NEW.status OR OLD.priority_rank IS NOT NEW.priority_rank)
    BEGIN
        UPDATE task_tags SET status = NEW.status, priority_rank = NEW.priority_rank
            WHERE task_id = NEW.id;
    END
    """,
    """
    UPDATE task_tags SET
        status = (SELECT status FROM tasks WHERE tasks.id = task_tags.task_id),
        priority_rank = (SELECT priority_rank FROM tasks WHERE tasks.id = task_tags.task_id),
        created_at = (SELECT created_at FROM tasks WHERE tasks.id = task_tags.task_id)
    """,
)
# 0006's triggers, which downgrade() restores (a revision's file name starts with its number)
_0006 = importlib.import_module("domain.adapters.migrations.versions.0006_listing")


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    op.add_column("task_tags", sa.Column("status", sa.String(16), nullable=True))
    op.add_column("task_tags", sa.Column("priority_rank", sa.Integer(), nullable=True))
    op.add_column("task_tags", sa.Column("created_at", UTCDateTime(), nullable=True))
    for statement in _PG_DROP + _PG_TRIGGERS if _postgres() else _SQLITE_DROP + _SQLITE_TRIGGERS:
        op.execute(statement)
    op.create_index("ix_task_tags_listing", "task_tags", LISTING)
    op.drop_index("ix_task_tags_user_tag", table_name="task_tags")


def downgrade() -> None:
    # the triggers go first: SQLite rebuilds task_tags to drop its columns, and a trigger that
    # names it would fail that rebuild
    drops: tuple[str, ...]
    if _postgres():
        drops = (*_PG_DROP, "DROP FUNCTION task_tags_follow_tasks()")
    else:
        drops = (*_SQLITE_DROP, "DROP TRIGGER task_tags_on_state")
    for statement in drops:
        op.execute(statement)
    op.create_index("ix_task_tags_user_tag", "task_tags", ["user_id", "tag", "task_id"])
    op.drop_index("ix_task_tags_listing", table_name="task_tags")
    with op.batch_alter_table("task_tags") as batch:
        batch.drop_column("created_at")
        batch.drop_column("priority_rank")
        batch.drop_column("status")
    for statement in _0006._PG_TRIGGERS if _postgres() else _0006._SQLITE_TRIGGERS:
        op.execute(statement)
