"""Listings: an index for a priority filter in creation order; task_tags kept by the database.

Revision ID: 0006
Revises: 0005

`task_tags` (one row per tag, which the tag filters search) is derived from `tasks.tags`. Until
now the repository wrote it with statements of its own after every insert and update; triggers
now keep it, so adding or changing a task is one statement fewer (two on update), and no writer
can leave the two out of step.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (one statement per execute: asyncpg prepares each one)
_PG_TRIGGERS = (
    """
    CREATE FUNCTION task_tags_follow_tasks() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF OLD.tags::text = NEW.tags::text THEN
                RETURN NULL;
            END IF;
            DELETE FROM task_tags WHERE task_id = OLD.id;
        END IF;
        INSERT INTO task_tags (task_id, tag, user_id)
            SELECT NEW.id, tag, NEW.user_id FROM json_array_elements_text(NEW.tags) AS tag;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER task_tags_follow_tasks AFTER INSERT OR UPDATE OF tags ON tasks
        FOR EACH ROW EXECUTE FUNCTION task_tags_follow_tasks()
    """,
)
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER task_tags_on_insert AFTER INSERT ON tasks
    BEGIN
        INSERT INTO task_tags (task_id, tag, user_id)
            SELECT NEW.id, value, NEW.user_id FROM json_each(NEW.tags);
    END
    """,
    """
    CREATE TRIGGER task_tags_on_update AFTER UPDATE OF tags ON tasks
        WHEN OLD.tags IS NOT NEW.tags
    BEGIN
        DELETE FROM task_tags WHERE task_id = OLD.id;
        INSERT INTO task_tags (task_id, tag, user_id)
            SELECT NEW.id, value, NEW.user_id FROM json_each(NEW.tags);
    END
    """,
)


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    # user_id, status and one priority: SQLite and PostgreSQL read the matches in creation order
    # straight off this index, where (user_id, status, created_at) made them skip the others
    op.create_index(
        "ix_tasks_user_status_priority_created",
        "tasks",
        ["user_id", "status", "priority_rank", "created_at", "id"],
    )
    op.drop_index("ix_tasks_user_status_priority", table_name="tasks")  # a prefix of the new one
    for statement in _PG_TRIGGERS if _postgres() else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if _postgres():
        op.execute("DROP TRIGGER task_tags_follow_tasks ON tasks")
        op.execute("DROP FUNCTION task_tags_follow_tasks()")
    else:
        op.execute("DROP TRIGGER task_tags_on_update")
        op.execute("DROP TRIGGER task_tags_on_insert")
    op.create_index(
        "ix_tasks_user_status_priority", "tasks", ["user_id", "status", "priority_rank"]
    )
    op.drop_index("ix_tasks_user_status_priority_created", table_name="tasks")
