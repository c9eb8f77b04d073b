"""The schema revision read without Alembic: HEAD is the newest migration, and a database's
revision reads as Alembic records it."""

from __future__ import annotations

from pathlib import Path

from domain.adapters.schema import head_revision, upgrade
from domain.adapters.schema_revision import HEAD, current_revision
from domain.adapters.sql import make_engine


def test_head_names_the_newest_migration() -> None:
    assert head_revision() == HEAD


async def test_a_database_reads_as_never_migrated_then_at_each_revision_it_is_brought_to(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'dueflow.db'}")
    try:
        assert await current_revision(engine) is None
        await upgrade(engine, "0005")
        assert await current_revision(engine) == "0005"
        await upgrade(engine)
        assert await current_revision(engine) == HEAD
    finally:
        await engine.dispose()


async def test_a_migrated_database_is_at_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)  # the PostgreSQL test database is migrated already: a no-op there
        assert await current_revision(engine) == HEAD
    finally:
        await engine.dispose()
