"""Alembic environment: runs on a connection handed over by domain.adapters.schema."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import domain.adapters.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `dueflow db upgrade` (domain.adapters.schema)")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
